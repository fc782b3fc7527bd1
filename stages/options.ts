/**
 * Options every batched stage has (`stages.<name>` in the spec); a stage's own options extend these
 * in its folder (stages/<name>/options.ts).
 */
import { z } from 'zod';

export const positiveInt = z.number().int().positive();

/** Share of a stage's questions that may fail for good before the stage fails (`maxFailedFraction`). */
export const DEFAULT_MAX_FAILED_FRACTION = 0.02;

/** Options every batched stage has. */
export const batching = {
  enabled: z.boolean().default(true),
  // 100 for distill: per-batch orchestration (activity task, heartbeats, history events) is then
  // spread over enough calls to be small beside them; pause still lands between batches.
  batchSize: positiveInt.max(500).default(100).describe('Questions per batch activity'),
  parallelBatches: positiveInt
    .max(200)
    .optional()
    .describe(
      "Batch activities in flight at once; the default holds four times the busiest endpoint's concurrency in questions, plus two batches",
    ),
  maxCostUsd: z
    .number()
    .positive()
    .optional()
    .describe(
      'Budget of this stage in USD (all its iterations): no new call starts once its spend reaches this ' +
        'and the campaign pauses; raise it with `meteorctl campaign resume ID --max-cost-usd N --stage S`',
    ),
  maxFailedFraction: z
    .number()
    .min(0)
    .max(1)
    // Optional rather than defaulted, so the stages' own defaults need not repeat it.
    .optional()
    .describe(
      "Share of the stage's questions that may be given up on (rejected 400/413/422, retries exhausted, " +
        'replies that never parse) before the stage fails; default 0.02',
    ),
};

/** `filter` of a training stage: the survey's metric-based filtering of training rows. */
export const RowFilterSchema = z
  .strictObject({
    by: z
      .enum(['judge', 'self'])
      .default('judge')
      .describe('Who scores each row: the judge model (models.judge), or the model being trained'),
    minScore: z
      .number()
      .min(1)
      .max(10)
      .describe('Rows scored below this (1–10) are left out of the dataset; the audit keeps every score'),
    attempts: positiveInt
      .max(5)
      .default(3)
      .describe("Asks of the scorer before a row's score is unparseable"),
  })
  .describe(
    "Score every training row (1–10) after the stage's batch and train only on rows scoring at least " +
      'minScore; one call per row; unparseable scores leave the row out',
  );
export type RowFilterSpec = z.infer<typeof RowFilterSchema>;

/** Options every training stage has. */
export const training = { filter: RowFilterSchema.optional() };
