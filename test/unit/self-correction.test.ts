/** SCoRe's self-correction metrics (core/evaluation/self-correction.ts) on hand-counted attempts. */
import { describe, expect, it } from 'vitest';
import {
  selfCorrectionRates,
  selfCorrectionStats,
  type TwoAttempts,
} from '../../core/evaluation/self-correction';

const opts = { resamples: 2000, seed: 7 };
const times = (n: number, a: TwoAttempts): TwoAttempts[] => Array.from({ length: n }, () => ({ ...a }));

describe('self-correction metrics', () => {
  // 10 questions: 4 right twice, 2 fixed (i→c), 1 broken (c→i), 3 wrong twice; 2 left out.
  const attempts = [
    ...times(4, { t1: true, t2: true }),
    ...times(2, { t1: false, t2: true }),
    ...times(1, { t1: true, t2: false }),
    ...times(3, { t1: false, t2: false }),
    { t1: null, t2: true },
    { t1: false, t2: null },
  ];

  it('counts Acc@t1, Acc@t2, Δ, Δi→c and Δc→i over the questions with both verdicts', () => {
    const r = selfCorrectionRates(attempts)!;
    expect(r.n).toBe(10);
    expect(r.excluded).toBe(2);
    expect(r.accT1).toBeCloseTo(0.5, 12);
    expect(r.accT2).toBeCloseTo(0.6, 12);
    expect(r.delta).toBeCloseTo(0.1, 12);
    expect(r.deltaIC).toBeCloseTo(0.2, 12);
    expect(r.deltaCI).toBeCloseTo(0.1, 12);
    // Δ is what the two flips add up to.
    expect(r.delta).toBeCloseTo(r.deltaIC - r.deltaCI, 12);
  });

  it('gives each metric a reproducible bootstrap CI that brackets it', () => {
    const s = selfCorrectionStats(attempts, opts)!;
    const again = selfCorrectionStats(attempts, opts)!;
    for (const m of ['accT1', 'accT2', 'delta', 'deltaIC', 'deltaCI'] as const) {
      expect(s.ci[m].lo, m).toBeLessThanOrEqual(s[m]);
      expect(s.ci[m].hi, m).toBeGreaterThanOrEqual(s[m]);
      expect(s.ci[m].hi, m).toBeGreaterThan(s.ci[m].lo);
      expect(again.ci[m]).toEqual(s.ci[m]);
    }
    expect(s.ci.delta.lo).toBeGreaterThanOrEqual(-1);
    expect(s.ci.accT2.hi).toBeLessThanOrEqual(1);
  });

  it('is null when no question has both verdicts', () => {
    expect(selfCorrectionStats([{ t1: null, t2: true }], opts)).toBeNull();
    expect(selfCorrectionRates([])).toBeNull();
  });
});
