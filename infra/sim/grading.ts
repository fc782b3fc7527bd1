/**
 * Simulated critic and judge. Both compare answers with the reference the simulation knows, so
 * they are consistent with each other and position-independent. The critic goes by content-word
 * recall; the judge reads five aspects of each answer with a judge's noise and margin (judge()),
 * so close answers tie and win rates are not all-or-nothing.
 *
 * Verdict (json_schema `assessment_verdict`): `{correct: boolean, feedback: string}`; correct
 * when the answer covers at least CORRECT_RECALL of the reference's content words; the feedback
 * of an incorrect answer names up to two missing points after "It should also say:".
 *
 * Judge (json_schema `pairwise_judgment`), default document (a request's own schema wins when it
 * has properties; its fields are then filled by name, see judgeResolver):
 *   {
 *     "winner": "A" | "B" | "tie",                       // overall preference
 *     "dimensions": { "accuracy": "A"|"B"|"tie", "completeness": ..., "relevance": ...,
 *                     "coherence": ..., "reliability": ... },
 *     "scores": { "A": { "accuracy": 1-10, ..., "reliability": 1-10, "overall": 1-10 },
 *                 "B": { ...same } },
 *     "explanation": string
 *   }
 */
import type { Json, Resolver, Schema } from './structured';
import { squash, typesOf } from './structured';
import { contentWords, hash32, keyTerms, normalize, recall, sentences } from './text';

export const CORRECT_RECALL = 0.6;
export const DIMENSIONS = ['accuracy', 'completeness', 'relevance', 'coherence', 'reliability'] as const;
export type Dimension = (typeof DIMENSIONS)[number];
export type Side = 'A' | 'B' | 'tie';
export type Scores = Record<Dimension | 'overall', number>;

export interface Verdict {
  correct: boolean;
  feedback: string;
  coverage: number;
}

export function verdict(reference: string, candidate: string): Verdict {
  const coverage = recall(reference, candidate);
  if (coverage >= CORRECT_RECALL) {
    return {
      correct: true,
      feedback: `The answer is correct: it covers the key points (${keyTerms(reference, 3).join(', ')}).`,
      coverage,
    };
  }
  const missing = sentences(reference)
    .filter((s) => recall(s, candidate) < CORRECT_RECALL)
    .slice(0, 2);
  const pct = Math.round(coverage * 100);
  return {
    correct: false,
    feedback: `The answer is incomplete or partly wrong (it covers about ${pct}% of the key points). It should also say: ${missing.join(' ')}`,
    coverage,
  };
}

const clamp10 = (x: number) => Math.max(1, Math.min(10, Math.round(x)));
const clamp01 = (x: number) => Math.max(0, Math.min(1, x));

/** Scores from coverage of the reference (the self-critique's: see coverageJudgment). */
export function score(question: string, reference: string, answer: string): Scores {
  const q = recall(reference, answer);
  const refLen = Math.max(1, contentWords(reference).length);
  const lenRatio = Math.min(1, contentWords(answer).length / refLen);
  const onTopic = recall(question, answer);
  const sentenceCount = sentences(answer).length;
  const s = {
    accuracy: clamp10(1 + 9 * q),
    completeness: clamp10(1 + 9 * (0.75 * q + 0.25 * lenRatio)),
    relevance: clamp10(3 + 4 * onTopic + 3 * q),
    coherence: clamp10(5 + Math.min(3, sentenceCount / 2) + 2 * q),
    reliability: clamp10(2 + 8 * q),
  };
  const overall = clamp10((s.accuracy + s.completeness + s.relevance + s.coherence + s.reliability) / 5);
  return { ...s, overall };
}

export interface Judgment {
  winner: Side;
  dimensions: Record<Dimension, Side>;
  scores: { A: Scores; B: Scores };
  explanation: string;
}

const better = (a: number, b: number): Side => (a > b ? 'A' : b > a ? 'B' : 'tie');

/**
 * The contrast stage's pairwise self-critique (a model comparing two of its own answers): the
 * side covering clearly more of the reference wins, else the tally of the dimensions' scores.
 */
export function coverageJudgment(
  question: string,
  reference: string,
  answerA: string,
  answerB: string,
): Judgment {
  const A = score(question, reference, answerA);
  const B = score(question, reference, answerB);
  const dimensions = Object.fromEntries(DIMENSIONS.map((d) => [d, better(A[d], B[d])])) as Record<
    Dimension,
    Side
  >;
  const ra = recall(reference, answerA);
  const rb = recall(reference, answerB);
  // Overall: clear coverage difference first; otherwise the dimension tally.
  let winner: Side = Math.abs(ra - rb) >= 0.05 ? better(ra, rb) : 'tie';
  if (winner === 'tie') {
    const tally = DIMENSIONS.reduce(
      (n, d) => n + (dimensions[d] === 'A' ? 1 : dimensions[d] === 'B' ? -1 : 0),
      0,
    );
    winner = tally >= 2 ? 'A' : tally <= -2 ? 'B' : 'tie';
  }
  const explanation =
    winner === 'tie'
      ? `Both answers cover the reference to a similar degree (A ${Math.round(ra * 100)}%, B ${Math.round(rb * 100)}% of its key points); neither is clearly better.`
      : `Answer ${winner} is better: it covers ${Math.round((winner === 'A' ? ra : rb) * 100)}% of the key points against ${Math.round((winner === 'A' ? rb : ra) * 100)}% for answer ${winner === 'A' ? 'B' : 'A'}, and is more complete and reliable.`;
  return { winner, dimensions, scores: { A, B }, explanation };
}

/** Phrases of an answer that hedges or offers unverified folk remedies. */
const HEDGE =
  /\b(i think|i would|i am not sure|not sure|probably|possibly|maybe|might|it may|may also|depends on your|search for similar|try restarting|often resolves)\b/i;

/** Share of a sentence's content words that are in `words` (0 for a sentence without any). */
function shareIn(sentence: string, words: ReadonlySet<string>): number {
  const cw = contentWords(sentence);
  return cw.length === 0 ? 0 : cw.filter((w) => words.has(w)).length / cw.length;
}

/**
 * What the judge sees in one answer, per dimension, each 0..1 — each from a different aspect,
 * so that an answer can win on some dimensions and not on others:
 * - accuracy: the reference's content it states (recall), discounted for content foreign to both
 *   the question and the reference (claims nothing here supports);
 * - completeness: the reference's points covered (a point counts when half its sentence is there);
 * - relevance: the share of its sentences that are about the question (not filler or digression);
 * - coherence: length balance against the reference, and flow (each sentence following on from
 *   the one before it, sharing a word with it);
 * - reliability: few hedges and few claims the reference does not back.
 */
export function aspects(question: string, reference: string, answer: string): Record<Dimension, number> {
  const said = sentences(answer);
  const words = contentWords(answer);
  if (said.length === 0 || words.length === 0)
    return { accuracy: 0, completeness: 0, relevance: 0, coherence: 0, reliability: 0 };
  const refWords = new Set(contentWords(reference));
  const topic = new Set([...refWords, ...contentWords(question)]);
  const share = (pred: (s: string) => boolean) => said.filter(pred).length / said.length;

  const precision = words.filter((w) => topic.has(w)).length / words.length;
  const points = sentences(reference);
  const covered = points.filter((p) => recall(p, answer) >= 0.5).length / Math.max(1, points.length);
  const lengths = [words.length, Math.max(1, refWords.size)];
  const balance = Math.min(...lengths) / Math.max(...lengths);
  // said.slice(1)[i] follows said[i] when they share a content word.
  const follows = said.slice(1).filter((s, i) => {
    const prev = new Set(contentWords(said[i] ?? ''));
    return contentWords(s).some((w) => prev.has(w));
  });
  const flow = said.length === 1 ? 1 : follows.length / (said.length - 1);
  return {
    accuracy: recall(reference, answer) * (0.6 + 0.4 * precision),
    completeness: covered,
    relevance: share((s) => shareIn(s, topic) >= 0.5),
    coherence: 0.5 * balance + 0.5 * flow,
    reliability: 1 - 0.5 * share((s) => HEDGE.test(s)) - 0.5 * share((s) => shareIn(s, refWords) < 0.25),
  };
}

/** How much the judge's reading of one answer wanders, per dimension (± this, 0..1 scale). */
const NOISE: Record<Dimension, number> = {
  accuracy: 0.05,
  completeness: 0.08,
  relevance: 0.1,
  coherence: 0.12,
  reliability: 0.1,
};
/** The difference the judge needs before it prefers a side (scaled per question by 0.5..1.5). */
const MARGIN: Record<Dimension | 'overall', number> = {
  accuracy: 0.06,
  completeness: 0.1,
  relevance: 0.1,
  coherence: 0.08,
  reliability: 0.1,
  overall: 0.05,
};
/** The overall impression: correctness first. */
const WEIGHT: Record<Dimension, number> = {
  accuracy: 0.3,
  completeness: 0.25,
  relevance: 0.15,
  coherence: 0.1,
  reliability: 0.2,
};

/** A deterministic draw in [0, 1). */
const unit = (...parts: Array<string | number>) => hash32(...parts) / 2 ** 32;

/**
 * The evaluation's judge (json_schema `pairwise_judgment`). Per dimension it reads each answer's
 * aspect (aspects()) with a noise of its own that depends on the question and that answer's
 * text (not on its position, so swapping A and B mirrors the judgment), and prefers a side
 * only when the difference exceeds a per-question margin: close answers tie, and a slightly
 * better answer can lose a dimension. Deterministic: the same request gets the same judgment.
 */
export function judge(question: string, reference: string, answerA: string, answerB: string): Judgment {
  const q = normalize(question);
  const read = (answer: string): Record<Dimension, number> => {
    const raw = aspects(question, reference, answer);
    const a = normalize(answer);
    const seen = Object.fromEntries(
      DIMENSIONS.map((d) => [d, clamp01(raw[d] + NOISE[d] * (2 * unit('judge-noise', d, q, a) - 1))]),
    );
    return seen as Record<Dimension, number>;
  };
  const seenA = read(answerA);
  const seenB = read(answerB);
  const decide = (a: number, b: number, d: Dimension | 'overall'): Side => {
    const margin = MARGIN[d] * (0.5 + unit('judge-margin', d, q));
    return Math.abs(a - b) <= margin ? 'tie' : better(a, b);
  };
  const dimensions = Object.fromEntries(DIMENSIONS.map((d) => [d, decide(seenA[d], seenB[d], d)])) as Record<
    Dimension,
    Side
  >;
  const overallOf = (seen: Record<Dimension, number>) =>
    DIMENSIONS.reduce((s, d) => s + WEIGHT[d] * seen[d], 0);
  const winner = decide(overallOf(seenA), overallOf(seenB), 'overall');
  const scoresOf = (seen: Record<Dimension, number>): Scores => {
    const s = Object.fromEntries(DIMENSIONS.map((d) => [d, clamp10(1 + 9 * seen[d])]));
    return { ...(s as Record<Dimension, number>), overall: clamp10(1 + 9 * overallOf(seen)) };
  };
  const pct = (answer: string) => `${Math.round(recall(reference, answer) * 100)}%`;
  const ahead = DIMENSIONS.filter((d) => dimensions[d] === winner);
  const explanation =
    `Answer A covers ${pct(answerA)} and answer B ${pct(answerB)} of the reference's key points. ` +
    (winner === 'tie'
      ? 'Neither is clearly better overall.'
      : `Answer ${winner} is better overall${ahead.length > 0 ? `, on ${ahead.join(', ')}` : ''}.`);
  return { winner, dimensions, scores: { A: scoresOf(seenA), B: scoresOf(seenB) }, explanation };
}

/**
 * A position-biased judge (SimOptions.judgeBias): `side` wins overall and on every dimension
 * whatever the answers; its scores are the higher of the two on each dimension (and strictly
 * higher: a tie is broken by one point), so numeric fields agree with the verdict.
 */
export function biasedJudgment(j: Judgment, side: 'A' | 'B'): Judgment {
  const other = side === 'A' ? 'B' : 'A';
  const hi = {} as Scores;
  const lo = {} as Scores;
  for (const d of [...DIMENSIONS, 'overall'] as const) {
    const x = Math.max(j.scores.A[d], j.scores.B[d]);
    const y = Math.min(j.scores.A[d], j.scores.B[d]);
    hi[d] = x === y ? (x < 10 ? x + 1 : x) : x;
    lo[d] = x === y && x === 10 ? 9 : y;
  }
  const dimensions = Object.fromEntries(DIMENSIONS.map((d) => [d, side])) as Record<Dimension, Side>;
  return {
    winner: side,
    dimensions,
    scores: side === 'A' ? { A: hi, B: lo } : { A: lo, B: hi },
    explanation: `Answer ${side} is better: it is more accurate, complete and reliable than answer ${other}.`,
  };
}

export function judgmentJson(j: Judgment): Json {
  return {
    winner: j.winner,
    dimensions: { ...j.dimensions },
    scores: { A: { ...j.scores.A }, B: { ...j.scores.B } },
    explanation: j.explanation,
  };
}

function sideIn(path: readonly string[]): 'A' | 'B' | undefined {
  for (let i = path.length - 2; i >= 0; i--) {
    const p = squash(path[i] ?? '');
    if (/^(a|1|answera|responsea|assistanta|modela|outputa|scoresa|scorea)$/.test(p)) return 'A';
    if (/^(b|2|answerb|responseb|assistantb|modelb|outputb|scoresb|scoreb)$/.test(p)) return 'B';
  }
  const last = squash(path[path.length - 1] ?? '');
  if (/(^|score|answer|response)a$/.test(last) && last.length > 1) return 'A';
  if (/(^|score|answer|response)b$/.test(last) && last.length > 1) return 'B';
  return undefined;
}

/** Scale a 1–10 score into the schema's own range when it declares one (e.g. 1–5). */
function scaled(s: number, schema: Schema | undefined): number {
  const min = typeof schema?.['minimum'] === 'number' ? schema['minimum'] : 1;
  const max = typeof schema?.['maximum'] === 'number' ? schema['maximum'] : 10;
  if (min === 1 && max === 10) return s;
  return min + ((s - 1) / 9) * (max - min);
}

/**
 * Fills a request's own judge schema by property name: dimension names give the side's score when
 * the property is numeric and inside an A/B object (the winner's score when flat), else the
 * dimension's winner; winner/preferred/better/choice give the overall winner; overall/score/rating
 * give the overall score; explanation/reason/rationale/analysis give the explanation.
 */
export function judgeResolver(j: Judgment): Resolver {
  return (path, schema) => {
    const last = squash(path[path.length - 1] ?? '');
    const numeric = schema ? typesOf(schema).some((t) => t === 'number' || t === 'integer') : false;
    const side = sideIn(path) ?? (j.winner === 'tie' ? 'A' : j.winner);
    const dim = DIMENSIONS.find((d) => last === d || last === `${d}score`);
    if (dim) return numeric ? scaled(j.scores[side][dim], schema) : j.dimensions[dim];
    if (/^(winner|preferred|better|choice|preference|decision|result|verdict|overallwinner)$/.test(last))
      return j.winner;
    if (/^(overall|score|rating|overallscore|total)$/.test(last) || /^score[ab]$/.test(last))
      return numeric ? scaled(j.scores[side].overall, schema) : j.winner;
    if (
      /^(explanation|reason|reasoning|rationale|analysis|comment|comments|justification|feedback)$/.test(last)
    )
      return j.explanation;
    return undefined;
  };
}

export function verdictResolver(v: Verdict): Resolver {
  return (path, schema) => {
    const last = squash(path[path.length - 1] ?? '');
    const isString = schema ? typesOf(schema).includes('string') || Array.isArray(schema['enum']) : false;
    if (/^(correct|iscorrect|passed|pass|accepted|verdict|result)$/.test(last))
      return isString ? (v.correct ? 'correct' : 'incorrect') : v.correct;
    if (/^(feedback|critique|advice|explanation|reason|reasoning|rationale|comment)$/.test(last))
      return v.feedback;
    if (/^(score|rating)$/.test(last)) return clamp10(1 + 9 * v.coverage);
    if (/^(confidence)$/.test(last)) return 0.8;
    return undefined;
  };
}
