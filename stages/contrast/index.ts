/**
 * Stage 3, self-improvement (DESIGN §1): a high-compute decode (beam search or best-of-N) is
 * preferred over the greedy one; preference fine-tune on the kept pairs.
 */
import { defineStage } from '../stage';
import { contrastActivities } from './batch';
import { ContrastStageSchema } from './options';
import { contrastAudit, contrastMetrics, contrastPreferenceExamples, contrastRecordCount } from './records';

export const contrastStage = defineStage({
  name: 'contrast',
  questions: 'train',
  options: ContrastStageSchema,
  activities: contrastActivities,
  records: { count: contrastRecordCount, metrics: contrastMetrics, audit: contrastAudit },
  dataset: {
    kind: 'preference',
    examples: ({ db, campaignId, domain, iteration, questionIds }) =>
      contrastPreferenceExamples(db, campaignId, domain, iteration, questionIds),
    loss: (options) => options.loss,
  },
});
