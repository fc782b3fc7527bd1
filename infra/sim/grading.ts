/**
 * Simulated critic and judge. Both compare answers with the reference the simulation knows
 * (content-word recall), so they are consistent with each other and position-independent.
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
import { contentWords, keyTerms, recall, sentences } from './text';

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

export function judge(question: string, reference: string, answerA: string, answerB: string): Judgment {
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
