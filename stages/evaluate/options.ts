/** `stages.evaluate` in the campaign spec. */
import { z } from 'zod';
import { batching, positiveInt } from '../options';

export const EvaluateStageSchema = z
  .strictObject({
    ...batching,
    batchSize: positiveInt.max(500).default(8).describe('Held-out questions per batch activity'),
    bootstrapResamples: positiveInt.min(100).max(100_000).default(2000),
    seed: z.number().int().default(20241118).describe('Seed of the bootstrap resampling'),
    judgeAttempts: positiveInt
      .max(5)
      .default(3)
      .describe('Asks of the judge before a judgment counts as unparseable'),
    selfCorrection: z
      .boolean()
      .default(true)
      .describe(
        "SCoRe's self-correction probe: each model revises its answer to every held-out question after an " +
          'instruction that does not say whether it was right, and the strong model judges both attempts ' +
          '(Acc@t1, Acc@t2, Δ, Δi→c, Δc→i in the report); 3 calls per model and question',
      ),
  })
  .default({
    enabled: true,
    batchSize: 8,
    bootstrapResamples: 2000,
    seed: 20241118,
    judgeAttempts: 3,
    selfCorrection: true,
  })
  .describe(
    "Pairwise evaluation of each stage's final model against the base model on the held-out questions",
  );
export type EvaluateStageSpec = z.infer<typeof EvaluateStageSchema>;
