/**
 * Task evolution (the self-evolution survey's knowledge-free task evolution, Evol-Instruct style;
 * REFERENCE §7), an optional stage before distill: the strong model rewrites training questions
 * into new or harder ones; a rewrite is kept only when it is no near-copy of any question the
 * campaign has — above all the held-out ones — and joins the training split, marked synthetic.
 * It trains nothing: the stages after it work on the given and the evolved questions.
 */
import { defineStage } from '../stage';
import { evolveActivities } from './batch';
import { EvolveStageSchema } from './options';
import { evolveAudit, evolveMetrics, evolveRecordCount } from './records';
import { EVOLVED_QUESTION_SCHEMA } from './prompts';

export const evolveStage = defineStage({
  name: 'evolve',
  questions: 'train',
  options: EvolveStageSchema,
  activities: evolveActivities,
  records: { count: evolveRecordCount, metrics: evolveMetrics, audit: evolveAudit },
  dataset: null,
  requests: () => [
    { role: 'strong', purpose: 'evolve-question', jsonSchema: EVOLVED_QUESTION_SCHEMA, temperature: 0.7 },
  ],
});
