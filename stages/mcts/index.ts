/**
 * `mcts`, SRA-MCTS as a stage (REFERENCE §7): per training question, Monte Carlo tree search over
 * natural-language reasoning steps with the current model as policy and self-evaluating critic;
 * SFT on question → the chosen reasoning and its final answer. Off by default (`enabled: true` to
 * run it): worth its calls in reasoning-heavy domains.
 */
import { defineStage } from '../stage';
import { mctsActivities } from './batch';
import { MctsStageSchema } from './options';
import { mctsAudit, mctsMetrics, mctsRecordCount, mctsSftExamples } from './records';
import { MCTS_REFLECTION_SCHEMA, MCTS_SCORE_SCHEMA } from './prompts';

export const mctsStage = defineStage({
  name: 'mcts',
  questions: 'train',
  options: MctsStageSchema,
  activities: mctsActivities,
  records: { count: mctsRecordCount, metrics: mctsMetrics, audit: mctsAudit },
  dataset: {
    kind: 'sft',
    examples: ({ db, campaignId, domain, iteration, questionIds }) =>
      mctsSftExamples(db, campaignId, domain, iteration, questionIds),
  },
  requests: (options) => [
    { role: 'weak', purpose: 'mcts-propose', temperature: options.proposalTemperature },
    { role: 'weak', purpose: 'mcts-reflect', jsonSchema: MCTS_REFLECTION_SCHEMA, temperature: 0 },
    { role: 'weak', purpose: 'mcts-score', jsonSchema: MCTS_SCORE_SCHEMA, temperature: 0 },
  ],
});
