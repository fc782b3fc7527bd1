/** `stages.evolve` in the campaign spec. */
import { z } from 'zod';
import { batching, positiveInt } from '../options';

export const EvolveStageSchema = z
  .strictObject({
    ...batching,
    enabled: z
      .boolean()
      .default(false)
      .describe('Write new training questions from the given ones before distill (off by default)'),
    // One batch at a time: a batch's novelty check reads every question kept before it, so which
    // rewrite is kept does not depend on which batch finished first, and a retried batch decides
    // the same. The calls inside a batch still run at once (batchSize of them).
    parallelBatches: z
      .literal(1)
      .default(1)
      .describe(
        'Always 1: each batch checks its rewrites against the questions kept by the batches before it',
      ),
    maxSimilarity: z
      .number()
      .gt(0)
      .max(1)
      .default(0.8)
      .describe(
        'A rewrite whose token Jaccard similarity to any question of the campaign (training, held-out, ' +
          'evolved) is at or above this is dropped; one near a held-out question never joins training',
      ),
    seeds: z
      .union([z.literal('all'), positiveInt])
      .default('all')
      .describe(
        'Training questions rewritten, one new question each: all of them, or the first N in file order',
      ),
    attempts: positiveInt
      .max(5)
      .default(3)
      .describe('Asks of the strong model per seed before its reply counts as unparseable'),
  })
  .default({
    enabled: false,
    batchSize: 100,
    parallelBatches: 1,
    maxSimilarity: 0.8,
    seeds: 'all',
    attempts: 3,
  })
  .describe(
    'Task evolution (Evol-Instruct style): the strong model rewrites training questions into new or ' +
      'harder ones, kept when novel; they join the training split, marked synthetic in the audit',
  );
export type EvolveStageSpec = z.infer<typeof EvolveStageSchema>;
