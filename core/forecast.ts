/**
 * A campaign's bill before it is run: each stage's calls, tokens, cost and wall time measured on a
 * sample of the questions (a forecast run, `meteorctl campaign plan`) and scaled to the whole, with
 * the spread the sample allows (a bootstrap 95% interval of the per-question mean, times the
 * question count). Pure: client/forecast.ts gathers the sample's figures.
 */
import { bootstrapMeanCi } from './evaluation/stats';

/** One question's share of a stage in the sample: the calls its records name. */
export interface QuestionFigures {
  calls: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

/** An endpoint's calls in one stage of the sample, and the limits the full run would meet. */
export interface RoleSample {
  role: string;
  calls: number;
  meanLatencyMs: number;
  concurrency: number;
  requestsPerMinute: number | null;
  /**
   * An endpoint in batch mode: the rounds of provider batches the stage needed. Its time is then
   * the rounds' turnaround (the calls' latency is their batch's), whatever the number of calls.
   */
  batchRounds?: number;
}

export interface StageSample {
  stage: string;
  /** Questions the sample ran the stage on, and how many the full campaign would (per iteration). */
  sampleQuestions: number;
  fullQuestions: number;
  /** All of the stage's calls in the sample (also those of failed questions, and retries). */
  total: QuestionFigures;
  /** Per sampled question, from the call ids its records name: the spread. */
  perQuestion: QuestionFigures[];
  roles: RoleSample[];
}

export interface Range {
  lo: number;
  hi: number;
}

export interface StageForecast {
  stage: string;
  questions: number;
  calls: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  costRange: Range;
  callsRange: Range;
  /** At the endpoints' concurrency and requests per minute, at the sample's latencies. */
  wallSeconds: number;
}

export interface Forecast {
  sample: { train: number; eval: number };
  /** Whether the sample run fine-tuned as the campaign does (else: base model throughout). */
  trained?: boolean;
  /** Some endpoint ran in batch mode: its time is the provider's turnaround. */
  batchMode?: boolean;
  of: { train: number; eval: number };
  stages: StageForecast[];
  total: Omit<StageForecast, 'stage' | 'questions'>;
}

const RESAMPLES = 2000;

/** The full run's figures from the sample's: scaled by questions, with the sample's spread. */
export function forecastFrom(
  samples: readonly StageSample[],
  counts: { sample: Forecast['sample']; of: Forecast['of'] },
  seed = 1,
): Forecast {
  const stages = samples.map((s): StageForecast => {
    const scale = s.sampleQuestions > 0 ? s.fullQuestions / s.sampleQuestions : 0;
    const scaled = (v: number) => v * scale;
    return {
      stage: s.stage,
      questions: s.fullQuestions,
      calls: Math.round(scaled(s.total.calls)),
      inputTokens: Math.round(scaled(s.total.inputTokens)),
      outputTokens: Math.round(scaled(s.total.outputTokens)),
      costUsd: scaled(s.total.costUsd),
      costRange: spread(s, (q) => q.costUsd, s.total.costUsd, scale, seed),
      callsRange: spread(s, (q) => q.calls, s.total.calls, scale, seed),
      // Online endpoints work side by side; rounds of provider batches wait for each other and them.
      wallSeconds:
        Math.max(0, ...s.roles.filter((r) => r.batchRounds === undefined).map((r) => roleSeconds(r, scale))) +
        s.roles.filter((r) => r.batchRounds !== undefined).reduce((a, r) => a + roleSeconds(r, scale), 0),
    };
  });
  const sum = (f: (s: StageForecast) => number) => stages.reduce((a, s) => a + f(s), 0);
  return {
    ...counts,
    stages,
    total: {
      calls: sum((s) => s.calls),
      inputTokens: sum((s) => s.inputTokens),
      outputTokens: sum((s) => s.outputTokens),
      costUsd: sum((s) => s.costUsd),
      // Stages' intervals added end to end: a conservative interval of the sum.
      costRange: { lo: sum((s) => s.costRange.lo), hi: sum((s) => s.costRange.hi) },
      callsRange: { lo: sum((s) => s.callsRange.lo), hi: sum((s) => s.callsRange.hi) },
      wallSeconds: sum((s) => s.wallSeconds),
    },
  };
}

/**
 * The scaled total's interval: the bootstrap interval of the per-question mean, as a share of that
 * mean, applied to the stage's scaled total (which also holds calls no record names, e.g. retries).
 */
function spread(
  s: StageSample,
  figure: (q: QuestionFigures) => number,
  total: number,
  scale: number,
  seed: number,
): Range {
  const values = s.perQuestion.map(figure);
  const ci = bootstrapMeanCi(values, { resamples: RESAMPLES, seed });
  const m = values.reduce((a, v) => a + v, 0) / (values.length || 1);
  if (!ci || m === 0) return { lo: total * scale, hi: total * scale };
  return { lo: (total * scale * ci.lo) / m, hi: (total * scale * ci.hi) / m };
}

/**
 * An endpoint's share of a stage: its calls through its concurrency, or its rate limit if slower;
 * in batch mode, its rounds of batches.
 */
function roleSeconds(r: RoleSample, scale: number): number {
  if (r.batchRounds !== undefined) return (r.batchRounds * r.meanLatencyMs) / 1000;
  const calls = r.calls * scale;
  const byConcurrency = (calls * r.meanLatencyMs) / 1000 / Math.max(1, r.concurrency);
  const byRate = r.requestsPerMinute ? (calls / r.requestsPerMinute) * 60 : 0;
  return Math.max(byConcurrency, byRate);
}

/** Every LLM call id an audit line names (under `llmCallIds`, `callId`, … at any depth). */
export function callIdsOf(line: unknown, into: Set<string> = new Set()): Set<string> {
  if (Array.isArray(line)) {
    for (const v of line) callIdsOf(v, into);
  } else if (line && typeof line === 'object') {
    for (const [key, v] of Object.entries(line)) {
      if (/callids?$/i.test(key)) leaves(v, into);
      else callIdsOf(v, into);
    }
  }
  return into;
}

function leaves(v: unknown, into: Set<string>): void {
  if (typeof v === 'string' || typeof v === 'number') into.add(String(v));
  else if (Array.isArray(v)) for (const x of v) leaves(x, into);
  else if (v && typeof v === 'object') for (const x of Object.values(v)) leaves(x, into);
}
