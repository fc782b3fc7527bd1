/** Exporting a stage's training set to the artifact store, in every format, with checksums. */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { createArtifactStores } from '../core/artifacts';
import { getCampaign } from '../core/campaigns';
import { writeJsonl } from '../core/jsonl';
import type { ReplayPick } from '../core/replay';
import { datasetKind, TRAINING_FORMATS, trainingLines, type TrainingFormat } from '../core/training-data';
import type { DatasetRef, TrainingStage } from '../workflows/types';
import type { ActivityDeps } from './context';

/** A stage's datasets in the artifact store: `<campaign>/<stage>-<iteration>/<kind>.<format>.jsonl`. */
export function datasetKey(campaignId: string, stage: string, iteration: number, file: string): string {
  return `${campaignId}/${stage}-${iteration}/${file}`;
}

export function datasetActivities(deps: ActivityDeps) {
  const { db, artifactsDir } = deps;
  const stores = deps.artifacts ?? createArtifactStores(deps);
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
      const store = await stores.forCampaign(spec);
      const kind = datasetKind(stage);
      const refs: Partial<Record<TrainingFormat, DatasetRef>> = {};
      let replayed: ReplayPick[] = [];
      for (const format of TRAINING_FORMATS) {
        const key = datasetKey(campaignId, stage, iteration, `${kind}.${format}.jsonl`);
        // A filesystem store is written in place; an object store gets a file staged here first.
        const local = store.localPath(key);
        const file = local ?? path.join(artifactsDir, '.staging', ...key.split('/'));
        const written = await writeJsonl(
          file,
          trainingLines(db, spec, campaignId, stage, iteration, format, (picks) => {
            replayed = picks;
          }),
        );
        let uri: string;
        if (local) uri = store.uri(key);
        else {
          uri = await store.putFile(key, written.path);
          await rm(written.path, { force: true });
        }
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
