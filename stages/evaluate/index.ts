/**
 * The evaluation (DESIGN §1): each training stage's final model against the base model on the
 * held-out questions, by a pairwise judge, with the self-correction probe. It trains nothing.
 */
import { defineStage } from '../stage';
import { evaluateActivities } from './batch';
import { EvaluateStageSchema } from './options';
import { evaluateAudit, evaluateMetrics, evaluateRecordCount } from './records';
import { ASSESSMENT_VERDICT_SCHEMA } from '../assess/prompts';
import { PAIRWISE_JUDGMENT_SCHEMA } from './prompts';

export const evaluateStage = defineStage({
  name: 'evaluate',
  questions: 'eval',
  options: EvaluateStageSchema,
  activities: evaluateActivities,
  records: { count: evaluateRecordCount, metrics: evaluateMetrics, audit: evaluateAudit },
  dataset: null,
  requests: (options) => [
    { role: 'weak', purpose: 'eval-answer', temperature: 0 },
    { role: 'judge', purpose: 'pairwise-judgment', jsonSchema: PAIRWISE_JUDGMENT_SCHEMA, temperature: 0 },
    ...(options.selfCorrection
      ? [
          {
            role: 'strong' as const,
            purpose: 'self-correction-verdict',
            jsonSchema: ASSESSMENT_VERDICT_SCHEMA,
            temperature: 0,
            option: 'selfCorrection',
          },
        ]
      : []),
  ],
});
