/**
 * Stage 1, weak-to-strong guideline distillation (DESIGN §1): the weak model writes a guideline,
 * the strong model answers with it (correcting it where wrong); SFT on question → answer.
 */
import { defineStage } from '../stage';
import { distillActivities } from './batch';
import { DistillStageSchema } from './options';
import { distillAudit, distillMetrics, distillRecordCount, distillSftExamples } from './records';
import { STRONG_ANSWER_SCHEMA } from './prompts';

export const distillStage = defineStage({
  name: 'distill',
  questions: 'train',
  options: DistillStageSchema,
  activities: distillActivities,
  records: { count: distillRecordCount, metrics: distillMetrics, audit: distillAudit },
  dataset: {
    kind: 'sft',
    examples: ({ db, campaignId, domain, iteration, options, questionIds }) =>
      distillSftExamples(db, campaignId, domain, iteration, options.includeGuidelineInSft, questionIds),
  },
  requests: () => [
    { role: 'weak', purpose: 'guideline' },
    { role: 'strong', purpose: 'strong-answer', jsonSchema: STRONG_ANSWER_SCHEMA, temperature: 0 },
  ],
});
