/** `stages.assess` in the campaign spec. */
import { z } from 'zod';
import { batching, positiveInt, training } from '../options';

export const AssessStageSchema = z
  .strictObject({
    ...batching,
    ...training,
    batchSize: positiveInt.max(500).default(10).describe('Questions per batch activity'),
    iterations: positiveInt
      .max(20)
      .default(1)
      .describe('Assess → fine-tune rounds; each uses the model the last one made'),
    maxRounds: positiveInt
      .max(10)
      .default(3)
      .describe("Answers per question at most: the first, then re-answers after the critic's feedback"),
    includeCritiques: z
      .boolean()
      .default(false)
      .describe(
        'Also train on critique examples (answer → verdict and feedback), the self-assessment ability',
      ),
    unsolved: z
      .enum(['drop', 'distilled-answer'])
      .default('drop')
      .describe('Questions never answered correctly: leave out, or train on the Stage-1 strong answer'),
    verdictAttempts: positiveInt
      .max(5)
      .default(3)
      .describe('Asks of the critic before a verdict counts as unparseable'),
  })
  .default({
    enabled: true,
    batchSize: 10,
    iterations: 1,
    maxRounds: 3,
    includeCritiques: false,
    unsolved: 'drop',
    verdictAttempts: 3,
  })
  .describe('Stage 2: self-assessment with the strong model as critic');
export type AssessStageSpec = z.infer<typeof AssessStageSchema>;
