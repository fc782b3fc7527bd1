/**
 * A training stage's dataset, as lines of a trainer's format: SFT for distill and assess,
 * preference pairs for contrast. The export activity and `meteorctl dataset export` both read
 * through here, so the file a fine-tune got and the file a user exports are the same.
 */
import type { Db } from './db/connection';
import { PREFERENCE_FORMATS, preferenceLine, SFT_FORMATS, sftLine } from './dataset-formats';
import { assessSftExamples, contrastPreferenceExamples, distillSftExamples } from './records';
import type { CampaignSpec } from './spec';
import type { TrainingStage } from '../workflows/types';

export const TRAINING_FORMATS = SFT_FORMATS;
export type TrainingFormat = (typeof SFT_FORMATS)[number];
export const TRAINING_STAGES = ['distill', 'assess', 'contrast'] as const satisfies readonly TrainingStage[];

// Both kinds name their formats alike; keep it so, since the CLI offers one list.
const _sameFormats: readonly TrainingFormat[] = PREFERENCE_FORMATS;
void _sameFormats;

export function datasetKind(stage: TrainingStage): 'sft' | 'preference' {
  return stage === 'contrast' ? 'preference' : 'sft';
}

export async function* trainingLines(
  db: Db,
  spec: CampaignSpec,
  campaignId: string,
  stage: TrainingStage,
  iteration: number,
  format: TrainingFormat,
): AsyncGenerator<Record<string, unknown>> {
  switch (stage) {
    case 'distill':
      for await (const ex of distillSftExamples(
        db,
        campaignId,
        spec.domain,
        iteration,
        spec.stages.distill.includeGuidelineInSft,
      )) {
        yield sftLine(format, ex);
      }
      return;
    case 'assess':
      for await (const ex of assessSftExamples(db, campaignId, spec.domain, iteration, spec.stages.assess)) {
        yield sftLine(format, ex);
      }
      return;
    case 'contrast':
      for await (const ex of contrastPreferenceExamples(db, campaignId, spec.domain, iteration)) {
        yield preferenceLine(format, ex);
      }
      return;
  }
}
