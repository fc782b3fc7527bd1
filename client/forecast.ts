/**
 * `meteorctl campaign plan`: the campaign run on a seeded sample of its questions, against the real
 * endpoints and fine-tune backend, recorded like any campaign but marked as a forecast
 * (`campaigns.forecast`); then its calls, tokens, cost and time scaled to the whole
 * (core/forecast.ts). Later stages' calls depend on how good the fine-tuned model is (an answer
 * right the first time needs no feedback round), so the forecast trains on the sample as the
 * campaign would; `--no-train` skips that and prices later stages with the base model (an upper
 * bound when training helps). `campaign launch` reads the latest forecast of the
 * same spec and questions to show the bill, and refuses one over `budget.maxCostUsd`.
 */
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { compositeKey } from '../core/composite-key';
import type { Db } from '../core/db/connection';
import type { ForecastMarker } from '../core/db/types';
import { mulberry32 } from '../core/evaluation/stats';
import { UserError } from '../core/errors';
import {
  callIdsOf,
  forecastFrom,
  type Forecast,
  type QuestionFigures,
  type RoleSample,
  type StageSample,
} from '../core/forecast';
import type { Question } from '../core/questions';
import { auditRecords } from '../core/records';
import type { CampaignSpec } from '../core/spec';
import type { LoadedSpec } from '../core/spec-file';
import { registeredStages } from '../stages/registry';
import type { Clients } from './connect';
import { launchCampaign } from './launch';
import type { LoadedQuestions } from './preflight';
import type { CampaignStatusView } from './status';
import { waitForCampaign } from './wait';

export const DEFAULT_FORECAST_SAMPLE = 8;

/**
 * What a forecast stands for: the spec as loaded and every question's content — but not its
 * budget, which changes no call (raising it must not need a new forecast).
 */
export function specHash(spec: CampaignSpec, questions: LoadedQuestions): string {
  const { budget: _budget, ...calls } = spec;
  const h = createHash('sha256').update(JSON.stringify(calls));
  for (const q of [...questions.train, ...questions.eval]) h.update(`\u0000${q.split}:${q.contentHash}`);
  return h.digest('hex');
}

/**
 * `n` of `questions`, drawn by a seeded shuffle (the same sample for the same seed), in file order
 * and numbered 0… again: stages take their batches by ordinal.
 */
export function sampleQuestions(questions: readonly Question[], n: number, seed: number): Question[] {
  const rand = mulberry32(seed);
  const order = questions.map((q) => ({ q, key: rand() }));
  order.sort((a, b) => a.key - b.key);
  return order
    .slice(0, Math.min(n, questions.length))
    .map((o) => o.q)
    .sort((a, b) => a.ordinal - b.ordinal)
    .map((q, ordinal) => ({ ...q, ordinal }));
}

export interface ForecastRun {
  campaignId: string;
  forecast: Forecast;
}

export async function runForecast(
  clients: Clients,
  loaded: LoadedSpec,
  questions: LoadedQuestions,
  opts: {
    sample: number;
    seed: number;
    /** Fine-tune on the sample as the campaign would (default true). */
    train?: boolean;
    preflight?: boolean;
    env?: NodeJS.ProcessEnv;
    onStatus?: (s: CampaignStatusView) => void;
  },
): Promise<ForecastRun> {
  if (!Number.isInteger(opts.sample) || opts.sample < 1) {
    throw new UserError(`--sample: '${opts.sample}' is not a positive whole number of questions`);
  }
  const sample: LoadedQuestions = {
    train: sampleQuestions(questions.train, opts.sample, opts.seed),
    eval: sampleQuestions(questions.eval, opts.sample, opts.seed),
  };
  const marker: ForecastMarker = {
    of: { train: questions.train.length, eval: questions.eval.length },
    specHash: specHash(loaded.spec, questions),
    train: opts.train ?? true,
  };
  const { campaignId } = await launchCampaign(clients, loaded, {
    ...(opts.preflight === undefined ? {} : { preflight: opts.preflight }),
    ...(opts.env ? { env: opts.env } : {}),
    forecast: { questions: sample, marker },
  });
  const done = await waitForCampaign(clients, campaignId, opts.onStatus);
  if (done.state !== 'completed') {
    throw new UserError(
      `The forecast run ${campaignId} ${done.state}${done.error ? `: ${done.error}` : ''}; see \`meteorctl campaign status ${campaignId}\``,
    );
  }
  const forecast = await forecastOf(clients.db, campaignId, loaded.spec, marker, {
    train: sample.train.length,
    eval: sample.eval.length,
  });
  await clients.db
    .updateTable('campaigns')
    .set({ forecast: JSON.stringify({ ...marker, result: forecast }) })
    .where('id', '=', campaignId)
    .execute();
  return { campaignId, forecast };
}

/** The forecast from a finished forecast run's calls and records. */
async function forecastOf(
  db: Db,
  campaignId: string,
  spec: CampaignSpec,
  marker: ForecastMarker,
  sample: Forecast['sample'],
): Promise<Forecast> {
  const calls = await db
    .selectFrom('llm_calls')
    .select(['id', 'stage', 'role', 'prompt_tokens', 'completion_tokens', 'cost_usd', 'latency_ms'])
    .where('campaign_id', '=', campaignId)
    .where('status', '!=', 'duplicate')
    .execute();
  const byId = new Map(calls.map((c) => [String(c.id), c]));
  // Rounds of provider batches per stage and role (endpoints in batch mode).
  const roundRows = await db
    .selectFrom('llm_batches')
    .select(['stage', 'role', sql<number>`count(distinct cycle)::int`.as('rounds')])
    .where('campaign_id', '=', campaignId)
    .groupBy(['stage', 'role'])
    .execute();
  const rounds = new Map(roundRows.map((r) => [compositeKey(r.stage, r.role), r.rounds]));
  const samples: StageSample[] = [];
  for (const def of registeredStages()) {
    const ofStage = calls.filter((c) => c.stage === def.name);
    if (ofStage.length === 0) continue;
    const split = def.questions === 'eval' ? 'eval' : 'train';
    const perQuestion = new Map<string, QuestionFigures>();
    for await (const line of auditRecords(db, campaignId, def.name)) {
      const qid = typeof line.questionId === 'string' ? line.questionId : null;
      if (!qid) continue;
      const f = perQuestion.get(qid) ?? { calls: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 };
      for (const id of callIdsOf(line)) {
        const c = byId.get(id);
        if (!c || c.stage !== def.name) continue;
        f.calls += 1;
        f.inputTokens += c.prompt_tokens;
        f.outputTokens += c.completion_tokens;
        f.costUsd += c.cost_usd;
      }
      perQuestion.set(qid, f);
    }
    const roles = [...new Set(ofStage.map((c) => c.role))].map((role): RoleSample => {
      const mine = ofStage.filter((c) => c.role === role);
      const ep = spec.models[role as keyof CampaignSpec['models']];
      return {
        role,
        calls: mine.length,
        meanLatencyMs: mine.reduce((a, c) => a + c.latency_ms, 0) / mine.length,
        concurrency: ep?.concurrency ?? 1,
        requestsPerMinute: ep?.requestsPerMinute ?? null,
        ...(ep?.mode === 'batch' ? { batchRounds: rounds.get(compositeKey(def.name, role)) ?? 0 } : {}),
      };
    });
    samples.push({
      stage: def.name,
      sampleQuestions: sample[split],
      fullQuestions: marker.of[split],
      total: {
        calls: ofStage.length,
        inputTokens: ofStage.reduce((a, c) => a + c.prompt_tokens, 0),
        outputTokens: ofStage.reduce((a, c) => a + c.completion_tokens, 0),
        costUsd: ofStage.reduce((a, c) => a + c.cost_usd, 0),
      },
      perQuestion: [...perQuestion.values()],
      roles,
    });
  }
  const batchMode = samples.some((st) => st.roles.some((r) => r.batchRounds !== undefined));
  return { ...forecastFrom(samples, { sample, of: marker.of }), trained: marker.train, batchMode };
}

/** The latest finished forecast of this spec and these questions, if any. */
export async function latestForecast(
  db: Db,
  hash: string,
): Promise<{ campaignId: string; forecast: Forecast } | null> {
  const row = await db
    .selectFrom('campaigns')
    .select(['id', 'forecast'])
    .where(sql<boolean>`forecast->>'specHash' = ${hash} and forecast ? 'result'`)
    .orderBy('created_at', 'desc')
    .limit(1)
    .executeTakeFirst();
  const result = (row?.forecast as (ForecastMarker & { result?: Forecast }) | null | undefined)?.result;
  return row && result ? { campaignId: row.id, forecast: result } : null;
}

const usd = (v: number) => `$${v < 10 ? v.toFixed(4) : v.toFixed(2)}`;
const duration = (s: number) =>
  s < 120 ? `${Math.round(s)} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;

export function renderForecast(f: Forecast, campaignId: string): string[] {
  const lines = [
    `forecast from ${campaignId}: a sample of ${f.sample.train} of ${f.of.train} training and ${f.sample.eval} of ${f.of.eval} held-out questions${f.trained ? '' : ', base model throughout (--no-train)'}`,
    `  ${'stage'.padEnd(10)} ${'calls'.padStart(9)} ${'input tok'.padStart(11)} ${'output tok'.padStart(11)} ${'cost'.padStart(10)}  95% range             time`,
  ];
  const row = (name: string, s: Forecast['total']) =>
    `  ${name.padEnd(10)} ${String(s.calls).padStart(9)} ${String(s.inputTokens).padStart(11)} ${String(s.outputTokens).padStart(11)} ${usd(s.costUsd).padStart(10)}  ${`${usd(s.costRange.lo)}–${usd(s.costRange.hi)}`.padEnd(21)} ${duration(s.wallSeconds)}`;
  for (const s of f.stages) lines.push(row(s.stage, s));
  lines.push(row('total', f.total));
  lines.push(
    '  time: LLM calls at the endpoints’ concurrency and limits, at the sample’s latencies; fine-tunes not included',
  );
  if (f.batchMode) {
    lines.push(
      '  endpoints in batch mode: each round of provider batches as long as the sample’s took; a provider may take up to 24 h a round',
    );
  }
  return lines;
}
