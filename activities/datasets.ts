/** Exporting a stage's training set to the artifact store, in every format, with checksums. */
import path from 'node:path';
import { getCampaign } from '../core/campaigns';
import { writeJsonl } from '../core/jsonl';
import type { ReplayPick } from '../core/replay';
import { datasetKind, TRAINING_FORMATS, trainingLines, type TrainingFormat } from '../core/training-data';
import type { DatasetRef, TrainingStage } from '../workflows/types';
import type { ActivityDeps } from './context';

export function stageArtifactDir(
  artifactsDir: string,
  campaignId: string,
  stage: string,
  iteration: number,
): string {
  return path.join(artifactsDir, campaignId, `${stage}-${iteration}`);
}

export function datasetActivities({ db, artifactsDir }: ActivityDeps) {
  return {
    /**
     * Writes <kind>.{openai,trl,llamafactory}.jsonl for one iteration of a training stage and
     * records each file's sha256 and rows; returns the OpenAI-format file the trainer reads.
     */
    async exportStageDataset({
      campaignId,
      stage,
      iteration,
    }: {
      campaignId: string;
      stage: TrainingStage;
      iteration: number;
    }): Promise<DatasetRef> {
      const { spec } = await getCampaign(db, campaignId);
      const dir = stageArtifactDir(artifactsDir, campaignId, stage, iteration);
      const kind = datasetKind(stage);
      const refs: Partial<Record<TrainingFormat, DatasetRef>> = {};
      let replayed: ReplayPick[] = [];
      for (const format of TRAINING_FORMATS) {
        const written = await writeJsonl(
          path.join(dir, `${kind}.${format}.jsonl`),
          trainingLines(db, spec, campaignId, stage, iteration, format, (picks) => {
            replayed = picks;
          }),
        );
        const uri = `file://${written.path}`;
        const row = await db
          .insertInto('datasets')
          .values({
            campaign_id: campaignId,
            stage,
            iteration,
            kind,
            format,
            uri,
            sha256: written.sha256,
            rows: written.rows,
            bytes: written.bytes,
          })
          .onConflict((oc) =>
            oc.columns(['campaign_id', 'stage', 'iteration', 'format']).doUpdateSet({
              uri,
              sha256: written.sha256,
              rows: written.rows,
              bytes: written.bytes,
              created_at: new Date(),
            }),
          )
          .returning('id')
          .executeTakeFirstOrThrow();
        refs[format] = { datasetId: row.id, rows: written.rows, sha256: written.sha256, uri };
      }
      // Each replayed row, recorded as replay with where it came from.
      for (let i = 0; i < replayed.length; i += 1000) {
        await db
          .insertInto('dataset_replay')
          .values(
            replayed.slice(i, i + 1000).map((p) => ({
              campaign_id: campaignId,
              stage,
              iteration,
              source_campaign_id: p.sourceCampaignId,
              source_iteration: p.sourceIteration,
              source_row: p.row,
            })),
          )
          .onConflict((oc) => oc.doNothing())
          .execute();
      }
      return refs.openai as DatasetRef;
    },
  };
}
