/**
 * The evaluation's statistics (DESIGN §1, REFERENCE §5), as pure functions of the judgment rows:
 *
 * - Each (candidate, question) pair is judged twice with the answers' positions swapped. Per
 *   dimension the two verdicts combine by the MT-Bench rule: the candidate wins (or loses) only
 *   when both verdicts say so; a disagreement, a tie in either, or an unparseable judgment is a tie.
 * - Per candidate and dimension: wins, ties, losses, n, win rate = wins / n, tie-adjusted win rate
 *   = (wins + 0.5·ties) / n, and a percentile-bootstrap 95% CI of the tie-adjusted win rate that
 *   resamples questions with a seeded PRNG (mulberry32), so a report is reproducible.
 * - Per candidate: the judge's 1–10 overall score of the candidate and of the base (mean over
 *   every parsed judgment, both positions), and the mean answer length in words of both.
 *
 * A question counts once both of its judgments are recorded; one with a position still missing (a
 * stage in progress) is reported as pending.
 */

export const EVAL_DIMENSIONS = ['accuracy', 'completeness', 'relevance', 'coherence', 'reliability'] as const;
export type EvalDimension = (typeof EVAL_DIMENSIONS)[number];

export const JUDGMENT_POSITIONS = ['model-first', 'base-first'] as const;
export type JudgmentPosition = (typeof JUDGMENT_POSITIONS)[number];

/** One judge verdict on one dimension, from the candidate's side. */
export type Side = 'model' | 'base' | 'tie';
export type Outcome = 'win' | 'tie' | 'loss';

/** What the statistics read of a `judgments` row. */
export interface JudgmentInput {
  modelLabel: string;
  questionId: string;
  position: JudgmentPosition;
  status: 'ok' | 'unparseable';
  /** Per dimension, from the candidate's side; null when unparseable. */
  verdicts: Partial<Record<string, Side>> | null;
  /** The judge's 1–10 scores (per dimension and `overall`) of the candidate and of the base. */
  scores: { model: Record<string, number>; base: Record<string, number> } | null;
}

/** The length of one evaluation answer. */
export interface AnswerLength {
  modelLabel: string;
  questionId: string;
  words: number;
}

export interface Interval {
  lo: number;
  hi: number;
}

export interface DimensionStats {
  dimension: EvalDimension;
  wins: number;
  ties: number;
  losses: number;
  n: number;
  /** wins / n; null when n = 0. */
  winRate: number | null;
  /** (wins + 0.5·ties) / n; null when n = 0. */
  tieAdjustedWinRate: number | null;
  /** Bootstrap CI of the tie-adjusted win rate; null when n = 0. */
  ci: Interval | null;
}

export interface ModelEvaluation {
  modelLabel: string;
  /** Questions with both judgments recorded (the n of every dimension). */
  questions: number;
  /** Questions with one judgment still missing (left out). */
  pendingQuestions: number;
  judgments: number;
  unparseableJudgments: number;
  dimensions: DimensionStats[];
  /** Mean of the judge's 1–10 overall scores over parsed judgments (both positions); null when none. */
  overallScore: { model: number | null; base: number | null };
  /** Mean answer length in words over the counted questions; null when no answer is known. */
  meanLength: { model: number | null; base: number | null };
}

export interface EvaluationOptions {
  baseLabel: string;
  resamples: number;
  seed: number;
  /** Confidence level of the CI (default 0.95). */
  level?: number;
}

/** Words of an answer: maximal runs of non-whitespace characters. */
export function wordCount(text: string): number {
  const trimmed = text.trim();
  return trimmed === '' ? 0 : trimmed.split(/\s+/).length;
}

/** The MT-Bench rule for one dimension of a position-swapped pair; null = unparseable or missing. */
export function combineVerdicts(first: Side | null | undefined, second: Side | null | undefined): Outcome {
  if (first === 'model' && second === 'model') return 'win';
  if (first === 'base' && second === 'base') return 'loss';
  return 'tie';
}

/** Score of an outcome in the tie-adjusted win rate. */
export function outcomeValue(o: Outcome): number {
  return o === 'win' ? 1 : o === 'tie' ? 0.5 : 0;
}

/** mulberry32: a small, fast, seeded PRNG; floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Linear-interpolation quantile (type 7) of sorted values. */
export function quantile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new Error('quantile of no values');
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  const a = sorted[lo] as number;
  const b = sorted[Math.min(lo + 1, sorted.length - 1)] as number;
  return a + (h - lo) * (b - a);
}

export function mean(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

/**
 * Percentile bootstrap CI of the mean of `values`: `resamples` resamples of n values drawn with
 * replacement by mulberry32(seed). Same inputs and seed → same interval. Null for no values.
 */
export function bootstrapMeanCi(
  values: readonly number[],
  opts: { resamples: number; seed: number; level?: number },
): Interval | null {
  const n = values.length;
  if (n === 0) return null;
  if (!Number.isInteger(opts.resamples) || opts.resamples < 1) {
    throw new Error(`bootstrap resamples must be a positive integer, got ${opts.resamples}`);
  }
  const level = opts.level ?? 0.95;
  const rand = mulberry32(opts.seed);
  const means = new Float64Array(opts.resamples);
  for (let r = 0; r < opts.resamples; r++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += values[Math.floor(rand() * n)] as number;
    means[r] = sum / n;
  }
  means.sort();
  const sorted = Array.from(means);
  const tail = (1 - level) / 2;
  return { lo: quantile(sorted, tail), hi: quantile(sorted, 1 - tail) };
}

/** Counts and rates of one dimension from its per-question outcomes. */
export function dimensionStats(
  dimension: EvalDimension,
  outcomes: readonly Outcome[],
  opts: { resamples: number; seed: number; level?: number },
): DimensionStats {
  const wins = outcomes.filter((o) => o === 'win').length;
  const ties = outcomes.filter((o) => o === 'tie').length;
  const losses = outcomes.filter((o) => o === 'loss').length;
  const n = outcomes.length;
  return {
    dimension,
    wins,
    ties,
    losses,
    n,
    winRate: n === 0 ? null : wins / n,
    tieAdjustedWinRate: n === 0 ? null : (wins + 0.5 * ties) / n,
    ci: bootstrapMeanCi(outcomes.map(outcomeValue), opts),
  };
}

function sideOf(j: JudgmentInput | undefined, dim: EvalDimension): Side | null {
  if (!j || j.status !== 'ok' || !j.verdicts) return null;
  return j.verdicts[dim] ?? null;
}

/**
 * The evaluation of every candidate (each model label in the judgments, sorted) against the base.
 * `answers` gives the answer lengths (candidates' and base's) for the mean lengths.
 */
export function evaluateModels(
  judgments: readonly JudgmentInput[],
  answers: readonly AnswerLength[],
  opts: EvaluationOptions,
): ModelEvaluation[] {
  const byModel = new Map<string, Map<string, Partial<Record<JudgmentPosition, JudgmentInput>>>>();
  for (const j of judgments) {
    let questions = byModel.get(j.modelLabel);
    if (!questions) byModel.set(j.modelLabel, (questions = new Map()));
    const pair = questions.get(j.questionId) ?? {};
    pair[j.position] = j;
    questions.set(j.questionId, pair);
  }
  const lengths = new Map<string, number>();
  for (const a of answers) lengths.set(`${a.modelLabel}\u0000${a.questionId}`, a.words);

  const labels = [...byModel.keys()].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  return labels.map((modelLabel): ModelEvaluation => {
    const questions = byModel.get(modelLabel) as Map<
      string,
      Partial<Record<JudgmentPosition, JudgmentInput>>
    >;
    const complete = [...questions.entries()]
      .filter(([, p]) => p['model-first'] && p['base-first'])
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const dimensions = EVAL_DIMENSIONS.map((dim) =>
      dimensionStats(
        dim,
        complete.map(([, p]) => combineVerdicts(sideOf(p['model-first'], dim), sideOf(p['base-first'], dim))),
        opts,
      ),
    );
    const all = [...questions.values()].flatMap((p) => JUDGMENT_POSITIONS.flatMap((pos) => p[pos] ?? []));
    const parsedScores = all.flatMap((j) => (j.status === 'ok' && j.scores ? [j.scores] : []));
    const overall = (side: 'model' | 'base') =>
      mean(
        parsedScores.flatMap((s) => {
          const v = s[side].overall;
          return typeof v === 'number' && Number.isFinite(v) ? [v] : [];
        }),
      );
    const meanWords = (label: string) =>
      mean(complete.flatMap(([q]) => lengths.get(`${label}\u0000${q}`) ?? []));
    return {
      modelLabel,
      questions: complete.length,
      pendingQuestions: questions.size - complete.length,
      judgments: all.length,
      unparseableJudgments: all.filter((j) => j.status !== 'ok').length,
      dimensions,
      overallScore: { model: overall('model'), base: overall('base') },
      meanLength: { model: meanWords(modelLabel), base: meanWords(opts.baseLabel) },
    };
  });
}
