/**
 * The evolution line spec (LINE.yaml): a campaign run again on a Temporal Schedule, each
 * iteration starting from the line's champion, on the questions that arrived since, with a
 * share of earlier training rows replayed, promoted only past the pairwise judge's gate.
 * `npm run schema` writes `schemas/line.schema.json` from here.
 */
import { z } from 'zod';
import { DURATION_PATTERN } from './duration';
import { EVAL_DIMENSIONS } from './evaluation/stats';
import { unstorableStrings } from './db/storable-text';

const duration = z.string().regex(DURATION_PATTERN, 'a duration like "30s", "5m", "2h" or "1d"');

export const LINE_OVERLAP = ['skip', 'buffer-one', 'buffer-all', 'cancel-other', 'allow-all'] as const;

export const LineScheduleSchema = z
  .union([
    z.strictObject({
      every: duration.describe('Start an iteration this often, e.g. 24h'),
      offset: duration.optional().describe('Shift of the interval, e.g. 2h for 02:00 UTC with every: 24h'),
      jitter: duration.optional().describe('Random delay of each start, up to this much'),
    }),
    z.strictObject({
      cron: z
        .string()
        .regex(/^\S+(\s+\S+){4,6}$/, 'a cron expression such as "0 2 * * *"')
        .describe('Cron expression (minute hour day-of-month month day-of-week)'),
      timezone: z.string().min(1).default('UTC').describe('IANA time zone of the cron expression'),
      jitter: duration.optional().describe('Random delay of each start, up to this much'),
    }),
  ])
  .describe('When iterations start: `every: 24h` or `cron` with a `timezone`');

export const LineSpecSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,39}$/, 'lower-case letters, digits and dashes, at most 40 characters')
      .describe('Line name; its Temporal Schedule is line-<name>'),
    description: z.string().optional(),
    campaign: z
      .string()
      .min(1)
      .describe(
        'The campaign spec each iteration runs (relative to this file); its question files are read again at every iteration',
      ),
    schedule: LineScheduleSchema,
    overlap: z
      .enum(LINE_OVERLAP)
      .default('skip')
      .describe(
        'An iteration due while the previous one still runs: skip it (default), buffer, cancel the other, or allow both',
      ),
    catchupWindow: duration
      .default('1h')
      .describe('Iterations missed while the server was down are started if at most this late'),
    pauseOnFailure: z.boolean().default(false).describe('Pause the schedule when an iteration fails'),
    promotion: z
      .strictObject({
        dimensions: z
          .array(z.enum(EVAL_DIMENSIONS))
          .min(1)
          .default(['accuracy'])
          .describe('Dimensions the new model must win on'),
        threshold: z
          .number()
          .min(0)
          .max(1)
          .default(0.5)
          .describe(
            "The 95% CI's lower bound of the tie-adjusted win rate must exceed this on each gating dimension",
          ),
        minHeldOut: z.number().int().min(1).default(10).describe('Held-out questions needed to judge at all'),
      })
      .default({ dimensions: ['accuracy'], threshold: 0.5, minHeldOut: 10 }),
    replay: z
      .strictObject({
        fraction: z
          .number()
          .min(0)
          .max(0.9)
          .default(0)
          .describe(
            "Share of each training stage's dataset drawn from earlier iterations' rows (against forgetting)",
          ),
      })
      .default({ fraction: 0 }),
  })
  // Stored whole as jsonb (`lines.spec`), which takes neither of these: refused with the field named.
  .superRefine((spec, ctx) => {
    for (const issue of unstorableStrings(spec)) ctx.addIssue({ code: 'custom', ...issue });
  })
  .describe('An evolution line: scheduled campaign iterations with a champion and a promotion gate');

export type LineSpec = z.infer<typeof LineSpecSchema>;
export type LineSpecInput = z.input<typeof LineSpecSchema>;

/** Schedule id of a line (DESIGN §4). */
export function lineScheduleId(name: string): string {
  return `line-${name}`;
}
