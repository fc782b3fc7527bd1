/**
 * The evaluation (DESIGN §1): each training stage's final model against the base model on the
 * held-out questions, by a pairwise judge, with the self-correction probe. It trains nothing.
 */
import { defineStage } from '../stage';
import { evaluateActivities } from './batch';
import { EvaluateStageSchema } from './options';
import { evaluateAudit, evaluateMetrics, evaluateRecordCount } from './records';

export const evaluateStage = defineStage({
  name: 'evaluate',
  questions: 'eval',
  options: EvaluateStageSchema,
  activities: evaluateActivities,
  records: { count: evaluateRecordCount, metrics: evaluateMetrics, audit: evaluateAudit },
  dataset: null,
});
