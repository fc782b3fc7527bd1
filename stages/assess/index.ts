/**
 * Stage 2, self-assessment (DESIGN §1): the model answers, the strong model critiques, the model
 * answers again; SFT on the trajectories that end correct (and, optionally, on the critiques).
 */
import { defineStage } from '../stage';
import { assessActivities } from './batch';
import { AssessStageSchema } from './options';
import { assessAttempts, assessAudit, assessMetrics, assessRecordCount, assessSftExamples } from './records';
import { ASSESSMENT_VERDICT_SCHEMA } from './prompts';

export const assessStage = defineStage({
  name: 'assess',
  questions: 'train',
  options: AssessStageSchema,
  activities: assessActivities,
  records: {
    count: assessRecordCount,
    metrics: assessMetrics,
    audit: assessAudit,
    attempts: assessAttempts,
  },
  dataset: {
    kind: 'sft',
    examples: ({ db, campaignId, domain, iteration, options, questionIds }) =>
      assessSftExamples(db, campaignId, domain, iteration, options, questionIds),
  },
  requests: () => [
    { role: 'weak', purpose: 'answer' },
    { role: 'strong', purpose: 'verdict', jsonSchema: ASSESSMENT_VERDICT_SCHEMA, temperature: 0 },
  ],
});
