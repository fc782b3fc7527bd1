/**
 * SCoRe's self-correction metrics (Kumar et al., arXiv 2409.12917; REFERENCE §7), as pure
 * functions of per-question outcomes of two attempts:
 *
 * - Acc@t1, Acc@t2: the share of questions judged correct at the first and at the second attempt;
 * - Δ(t1,t2) = Acc@t2 − Acc@t1;
 * - Δi→c: the share wrong at t1 and right at t2 (fixed by the second attempt);
 * - Δc→i: the share right at t1 and wrong at t2 (broken by it).
 *
 * Each is the mean of a per-question value (0/1, or −1/0/1 for Δ), so each gets a percentile
 * bootstrap CI over questions, seeded like the evaluation's (stats.ts). A question with a verdict
 * that never parsed is left out of n and counted in `excluded`.
 */
import { bootstrapMeanCi, mean, type Interval } from './stats';

/** The verdicts of one question's two attempts; null where the verdict never parsed. */
export interface TwoAttempts {
  t1: boolean | null;
  t2: boolean | null;
}

export const SELF_CORRECTION_METRICS = ['accT1', 'accT2', 'delta', 'deltaIC', 'deltaCI'] as const;
export type SelfCorrectionMetric = (typeof SELF_CORRECTION_METRICS)[number];

export interface SelfCorrectionStats {
  /** Questions with both verdicts parsed (the n of every metric). */
  n: number;
  /** Questions left out: a verdict that never parsed. */
  excluded: number;
  accT1: number;
  accT2: number;
  delta: number;
  deltaIC: number;
  deltaCI: number;
  /** Bootstrap CI of each metric over questions. */
  ci: Record<SelfCorrectionMetric, Interval>;
}

const perQuestion: Record<SelfCorrectionMetric, (t1: boolean, t2: boolean) => number> = {
  accT1: (t1) => Number(t1),
  accT2: (_, t2) => Number(t2),
  delta: (t1, t2) => Number(t2) - Number(t1),
  deltaIC: (t1, t2) => Number(!t1 && t2),
  deltaCI: (t1, t2) => Number(t1 && !t2),
};

/** The five metrics without CIs (e.g. for `stage_runs.metrics`); null when no question has both verdicts. */
export function selfCorrectionRates(
  attempts: readonly TwoAttempts[],
): (Record<SelfCorrectionMetric, number> & { n: number; excluded: number }) | null {
  const judged = bothJudged(attempts);
  if (judged.length === 0) return null;
  const rates = Object.fromEntries(
    SELF_CORRECTION_METRICS.map((m) => [m, mean(judged.map((a) => perQuestion[m](a.t1, a.t2))) as number]),
  ) as Record<SelfCorrectionMetric, number>;
  return { n: judged.length, excluded: attempts.length - judged.length, ...rates };
}

/** The five metrics with their CIs; null when no question has both verdicts. */
export function selfCorrectionStats(
  attempts: readonly TwoAttempts[],
  opts: { resamples: number; seed: number; level?: number },
): SelfCorrectionStats | null {
  const rates = selfCorrectionRates(attempts);
  if (rates === null) return null;
  const judged = bothJudged(attempts);
  const ci = Object.fromEntries(
    SELF_CORRECTION_METRICS.map((m) => [
      m,
      bootstrapMeanCi(
        judged.map((a) => perQuestion[m](a.t1, a.t2)),
        opts,
      ) as Interval,
    ]),
  ) as Record<SelfCorrectionMetric, Interval>;
  return { ...rates, ci };
}

function bothJudged(attempts: readonly TwoAttempts[]): Array<{ t1: boolean; t2: boolean }> {
  return attempts.filter((a): a is { t1: boolean; t2: boolean } => a.t1 !== null && a.t2 !== null);
}

/** A recorded verdict as an attempt's outcome: null when it never parsed. */
export function attemptOutcome(verdict: 'correct' | 'incorrect' | 'unparseable'): boolean | null {
  return verdict === 'unparseable' ? null : verdict === 'correct';
}
