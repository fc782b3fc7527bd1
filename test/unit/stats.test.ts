/**
 * The evaluation's statistics on hand-computed cases: the MT-Bench tie rule, counts and rates,
 * scores and lengths, and the seeded bootstrap CI.
 */
import { describe, expect, it } from 'vitest';
import { toCandidateSide } from '../../stages/evaluate/batch';
import {
  bootstrapMeanCi,
  combineVerdicts,
  dimensionStats,
  EVAL_DIMENSIONS,
  evaluateModels,
  mulberry32,
  quantile,
  wordCount,
  type JudgmentInput,
  type Outcome,
  type Side,
} from '../../core/evaluation/stats';

const OPTS = { baseLabel: 'M0', resamples: 1000, seed: 7 };

/** A parsed judgment with the same verdict on every dimension. */
function judged(
  questionId: string,
  position: JudgmentInput['position'],
  side: Side,
  overall: { model: number; base: number } = { model: 7, base: 5 },
  modelLabel = 'M1',
): JudgmentInput {
  return {
    modelLabel,
    questionId,
    position,
    status: 'ok',
    verdicts: Object.fromEntries(EVAL_DIMENSIONS.map((d) => [d, side])),
    scores: { model: { overall: overall.model }, base: { overall: overall.base } },
  };
}

function unparseable(questionId: string, position: JudgmentInput['position']): JudgmentInput {
  return { modelLabel: 'M1', questionId, position, status: 'unparseable', verdicts: null, scores: null };
}

describe('combineVerdicts (MT-Bench rule)', () => {
  const cases: Array<[Side | null, Side | null, Outcome]> = [
    ['model', 'model', 'win'],
    ['base', 'base', 'loss'],
    ['model', 'base', 'tie'], // the two orders disagree: position bias, not a preference
    ['base', 'model', 'tie'],
    ['tie', 'model', 'tie'],
    ['model', 'tie', 'tie'],
    ['base', 'tie', 'tie'],
    ['tie', 'tie', 'tie'],
    [null, 'model', 'tie'], // unparseable on one side
    ['base', null, 'tie'],
    [null, null, 'tie'],
  ];
  it.each(cases)('%s + %s → %s', (a, b, want) => {
    expect(combineVerdicts(a, b)).toBe(want);
  });
});

describe('evaluateModels', () => {
  it('counts wins, ties and losses per question and computes the rates by hand', () => {
    const judgments: JudgmentInput[] = [
      judged('q1', 'model-first', 'model', { model: 8, base: 4 }),
      judged('q1', 'base-first', 'model', { model: 9, base: 5 }),
      judged('q2', 'model-first', 'model', { model: 7, base: 6 }), // disagreement → tie
      judged('q2', 'base-first', 'base', { model: 5, base: 7 }),
      judged('q3', 'model-first', 'base', { model: 3, base: 8 }),
      judged('q3', 'base-first', 'base', { model: 4, base: 8 }),
      judged('q4', 'model-first', 'tie', { model: 6, base: 6 }),
      judged('q4', 'base-first', 'model', { model: 7, base: 6 }),
      unparseable('q5', 'model-first'), // unparseable → tie
      judged('q5', 'base-first', 'model', { model: 8, base: 3 }),
      judged('q6', 'model-first', 'model'), // the other order not judged yet → pending
    ];
    const answers = [
      { modelLabel: 'M1', questionId: 'q1', words: 10 },
      { modelLabel: 'M1', questionId: 'q2', words: 20 },
      { modelLabel: 'M1', questionId: 'q3', words: 30 },
      { modelLabel: 'M1', questionId: 'q4', words: 40 },
      { modelLabel: 'M1', questionId: 'q5', words: 50 },
      { modelLabel: 'M1', questionId: 'q6', words: 1000 }, // pending: not counted
      { modelLabel: 'M0', questionId: 'q1', words: 5 },
      { modelLabel: 'M0', questionId: 'q2', words: 5 },
      { modelLabel: 'M0', questionId: 'q3', words: 5 },
      { modelLabel: 'M0', questionId: 'q4', words: 5 },
      { modelLabel: 'M0', questionId: 'q5', words: 10 },
    ];
    const [m] = evaluateModels(judgments, answers, OPTS);
    expect(m).toBeDefined();
    expect(m!.modelLabel).toBe('M1');
    expect(m!.questions).toBe(5);
    expect(m!.pendingQuestions).toBe(1);
    expect(m!.judgments).toBe(11);
    expect(m!.unparseableJudgments).toBe(1);
    expect(m!.dimensions.map((d) => d.dimension)).toEqual([...EVAL_DIMENSIONS]);
    for (const d of m!.dimensions) {
      // q1 win; q2, q4, q5 ties; q3 loss.
      expect(d).toMatchObject({ wins: 1, ties: 3, losses: 1, n: 5 });
      expect(d.winRate).toBeCloseTo(1 / 5, 12);
      expect(d.tieAdjustedWinRate).toBeCloseTo((1 + 0.5 * 3) / 5, 12);
    }
    // Overall scores: the 10 parsed judgments (q6 included: a parsed judgment is a score).
    expect(m!.overallScore.model).toBeCloseTo((8 + 9 + 7 + 5 + 3 + 4 + 6 + 7 + 8 + 7) / 10, 12);
    expect(m!.overallScore.base).toBeCloseTo((4 + 5 + 6 + 7 + 8 + 8 + 6 + 6 + 3 + 5) / 10, 12);
    expect(m!.meanLength.model).toBeCloseTo((10 + 20 + 30 + 40 + 50) / 5, 12);
    expect(m!.meanLength.base).toBeCloseTo((5 + 5 + 5 + 5 + 10) / 5, 12);
  });

  it('combines each dimension on its own', () => {
    const dims = (acc: Side, rest: Side) =>
      Object.fromEntries(EVAL_DIMENSIONS.map((d) => [d, d === 'accuracy' ? acc : rest]));
    const judgments: JudgmentInput[] = [
      { ...judged('q1', 'model-first', 'tie'), verdicts: dims('model', 'base') },
      { ...judged('q1', 'base-first', 'tie'), verdicts: dims('model', 'tie') },
    ];
    const [m] = evaluateModels(judgments, [], OPTS);
    const acc = m!.dimensions.find((d) => d.dimension === 'accuracy');
    const coh = m!.dimensions.find((d) => d.dimension === 'coherence');
    expect(acc).toMatchObject({ wins: 1, ties: 0, losses: 0, winRate: 1, tieAdjustedWinRate: 1 });
    expect(coh).toMatchObject({ wins: 0, ties: 1, losses: 0, winRate: 0, tieAdjustedWinRate: 0.5 });
    expect(m!.meanLength).toEqual({ model: null, base: null });
  });

  it('a judge that always prefers the first answer yields only ties', () => {
    const judgments = ['q1', 'q2', 'q3'].flatMap((q) => [
      judged(q, 'model-first', 'model'), // A = the model
      judged(q, 'base-first', 'base'), // A = the base
    ]);
    const [m] = evaluateModels(judgments, [], OPTS);
    for (const d of m!.dimensions) {
      expect(d).toMatchObject({ wins: 0, ties: 3, losses: 0, winRate: 0, tieAdjustedWinRate: 0.5 });
    }
  });

  it('reports every candidate separately, in label order', () => {
    const judgments = [
      judged('q1', 'model-first', 'model', undefined, 'M10'),
      judged('q1', 'base-first', 'model', undefined, 'M10'),
      judged('q1', 'model-first', 'base', undefined, 'M2'),
      judged('q1', 'base-first', 'base', undefined, 'M2'),
    ];
    const out = evaluateModels(judgments, [], OPTS);
    expect(out.map((m) => m.modelLabel)).toEqual(['M2', 'M10']);
    expect(out[0]!.dimensions[0]).toMatchObject({ wins: 0, losses: 1 });
    expect(out[1]!.dimensions[0]).toMatchObject({ wins: 1, losses: 0 });
  });

  it('gives null rates and no CI without complete pairs', () => {
    const [m] = evaluateModels([judged('q1', 'base-first', 'model')], [], OPTS);
    expect(m!.questions).toBe(0);
    expect(m!.dimensions[0]).toMatchObject({ n: 0, winRate: null, tieAdjustedWinRate: null, ci: null });
  });
});

describe('bootstrap CI', () => {
  const outcomes = (wins: number, ties: number, losses: number): Outcome[] => [
    ...Array<Outcome>(wins).fill('win'),
    ...Array<Outcome>(ties).fill('tie'),
    ...Array<Outcome>(losses).fill('loss'),
  ];

  it('mulberry32 is deterministic per seed and stays in [0, 1)', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const c = mulberry32(43);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(xs);
    expect(Array.from({ length: 1000 }, () => c())).not.toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    // Roughly uniform.
    const m = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(m).toBeGreaterThan(0.45);
    expect(m).toBeLessThan(0.55);
  });

  it('quantile interpolates linearly', () => {
    expect(quantile([1, 2, 3, 4, 5], 0.5)).toBe(3);
    expect(quantile([0, 10], 0.25)).toBe(2.5);
    expect(quantile([7], 0.975)).toBe(7);
  });

  it('contains the point estimate and lies within [0, 1]', () => {
    const d = dimensionStats('accuracy', outcomes(12, 5, 3), { resamples: 2000, seed: 1 });
    expect(d.tieAdjustedWinRate).toBeCloseTo(14.5 / 20, 12);
    expect(d.ci).not.toBeNull();
    expect(d.ci!.lo).toBeLessThanOrEqual(d.tieAdjustedWinRate!);
    expect(d.ci!.hi).toBeGreaterThanOrEqual(d.tieAdjustedWinRate!);
    expect(d.ci!.lo).toBeGreaterThanOrEqual(0);
    expect(d.ci!.hi).toBeLessThanOrEqual(1);
    expect(d.ci!.hi - d.ci!.lo).toBeGreaterThan(0.1);
  });

  it('narrows as n grows (same proportions)', () => {
    const width = (k: number) => {
      const ci = dimensionStats('accuracy', outcomes(6 * k, 2 * k, 2 * k), { resamples: 2000, seed: 3 }).ci!;
      return ci.hi - ci.lo;
    };
    const [w1, w10, w100] = [width(1), width(10), width(100)];
    expect(w10).toBeLessThan(w1);
    expect(w100).toBeLessThan(w10);
    // About 1/sqrt(n): ten times the questions, about a third of the width.
    expect(w100 / w10).toBeGreaterThan(0.2);
    expect(w100 / w10).toBeLessThan(0.5);
  });

  it('same seed → same CI; another seed → a slightly different one', () => {
    const values = outcomes(9, 7, 4).map((o) => (o === 'win' ? 1 : o === 'tie' ? 0.5 : 0));
    const a = bootstrapMeanCi(values, { resamples: 1000, seed: 20241118 });
    const b = bootstrapMeanCi(values, { resamples: 1000, seed: 20241118 });
    const c = bootstrapMeanCi(values, { resamples: 1000, seed: 99 });
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    expect(Math.abs(c!.lo - a!.lo)).toBeLessThan(0.08);
  });

  it('is degenerate when every question has the same outcome', () => {
    expect(bootstrapMeanCi([1, 1, 1], { resamples: 500, seed: 1 })).toEqual({ lo: 1, hi: 1 });
    expect(bootstrapMeanCi([0.5], { resamples: 500, seed: 1 })).toEqual({ lo: 0.5, hi: 0.5 });
    expect(bootstrapMeanCi([], { resamples: 500, seed: 1 })).toBeNull();
  });
});

describe('wordCount', () => {
  it('counts runs of non-whitespace', () => {
    expect(wordCount('')).toBe(0);
    expect(wordCount('   \n\t ')).toBe(0);
    expect(wordCount('one')).toBe(1);
    expect(wordCount('  kubectl get pods -n  kube-system\n\nthen  describe ')).toBe(7);
  });
});

describe("the judge's reply, from the candidate's side", () => {
  const reply = {
    explanation: 'A is better',
    dimensions: {
      accuracy: 'A',
      completeness: 'B',
      relevance: 'tie',
      coherence: 'A',
      reliability: 'A',
    } as const,
    winner: 'A' as const,
    scores: {
      A: { accuracy: 9, completeness: 6, relevance: 8, coherence: 8, reliability: 9, overall: 8 },
      B: { accuracy: 5, completeness: 7, relevance: 8, coherence: 6, reliability: 5, overall: 6 },
    },
  };

  it('model-first: A is the candidate', () => {
    const m = toCandidateSide(reply, 'model-first');
    expect(m.verdicts).toMatchObject({
      accuracy: 'model',
      completeness: 'base',
      relevance: 'tie',
      overall: 'model',
    });
    expect(m.scores.model.overall).toBe(8);
    expect(m.scores.base.overall).toBe(6);
  });

  it('base-first: A is the base model', () => {
    const m = toCandidateSide(reply, 'base-first');
    expect(m.verdicts).toMatchObject({
      accuracy: 'base',
      completeness: 'model',
      relevance: 'tie',
      overall: 'base',
    });
    expect(m.scores.model.overall).toBe(6);
    expect(m.scores.base.overall).toBe(8);
  });
});
