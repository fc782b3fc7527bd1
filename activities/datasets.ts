/** Exporting a stage's training set to the artifact store, in every format, with checksums. */
import path from 'node:path';
import { getCampaign } from '../core/campaigns';
import { SFT_FORMATS, sftLine } from '../core/dataset-formats';
import { writeJsonl } from '../core/jsonl';
import { distillSftExamples } from '../core/records';
import type { DatasetRef } from '../workflows/types';
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
    /** Writes sft.{openai,trl,llamafactory}.jsonl; returns the OpenAI-format file the trainer reads. */
    async exportDistillDataset({
      campaignId,
      iteration,
    }: {
      campaignId: string;
      iteration: number;
    }): Promise<DatasetRef> {
      const { spec } = await getCampaign(db, campaignId);
      const dir = stageArtifactDir(artifactsDir, campaignId, 'distill', iteration);
      const refs: Record<string, DatasetRef> = {};
      for (const format of SFT_FORMATS) {
        const examples = distillSftExamples(
          db,
          campaignId,
          spec.domain,
          iteration,
          spec.stages.distill.includeGuidelineInSft,
        );
        const written = await writeJsonl(
          path.join(dir, `sft.${format}.jsonl`),
          (async function* () {
            for await (const ex of examples) yield sftLine(format, ex);
          })(),
        );
        const uri = `file://${written.path}`;
        const row = await db
          .insertInto('datasets')
          .values({
            campaign_id: campaignId,
            stage: 'distill',
            iteration,
            kind: 'sft',
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
      return refs.openai as DatasetRef;
    },
  };
}
