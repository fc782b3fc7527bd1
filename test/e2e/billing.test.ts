/**
 * What a campaign is billed (issue 12, part 3): a distill-only campaign whose questions share a
 * long beginning (a runbook in front of each, as a retrieval-augmented prompt has), so that the
 * simulator's prompt cache serves it, as OpenAI's does, to every guideline request after the
 * first. Its call log records each call's cached tokens as the server reported them, online; each
 * call's cost is its prompt at the input price less the cached part's discount; and status, the
 * report and the budget's running spend sum exactly those costs. Simulated models throughout.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReport, renderReportText } from '../../client/report';
import { campaignStatus } from '../../client/status';
import { getCampaign } from '../../core/campaigns';
import { callCost } from '../../core/llm/pricing';
import type { Role } from '../../core/spec';
import { CACHE_MIN_TOKENS, CACHE_STEP_TOKENS } from '../../infra/sim/prompt-cache';
import {
  exampleQuestions,
  launch,
  startHarness,
  waitDone,
  writeQuestions,
  writeSpec,
  type Harness,
} from '../support/harness';

const QUESTIONS = 8;
/** About 1,300 simulated tokens in front of every question: past OpenAI's 1024-token minimum. */
const RUNBOOK =
  'Context from the on-call runbook of the cluster: start from kubectl describe and the events, compare the ' +
  'spec with what the controller reports, and change one thing at a time. ';
const PREAMBLE = RUNBOOK.repeat(Math.ceil(5200 / RUNBOOK.length));
const WEAK_PRICE = { inputPerMTok: 0.2, cachedInputPerMTok: 0.05, outputPerMTok: 0.8 };
const STRONG_PRICE = { inputPerMTok: 2.5, cachedInputPerMTok: 1.25, outputPerMTok: 10 };

let h: Harness;
let campaignId: string;

beforeAll(async () => {
  h = await startHarness({ latencyMs: 20 });
  // No titles: the question text comes first in the prompt, so the runbook is a shared prefix.
  const questions = (await exampleQuestions(QUESTIONS)).map((q) => ({
    id: q.id,
    question: `${PREAMBLE}\n\n${q.question}`,
    reference: q.reference,
  }));
  const specPath = await writeSpec(h, {
    name: 'billing',
    questions: { train: await writeQuestions(h.tmp, 'train.jsonl', questions) },
    models: {
      weak: { concurrency: 4, pricing: WEAK_PRICE },
      strong: { concurrency: 4, pricing: STRONG_PRICE },
    },
    stages: { distill: { batchSize: 4 } },
  });
  ({ campaignId } = await launch(h, specPath));
  const done = await waitDone(h, campaignId, 60_000);
  expect(done.error).toBeNull();
  expect(done.state).toBe('completed');
}, 90_000);

afterAll(async () => {
  await h?.close();
});

interface CallRow {
  role: string;
  purpose: string;
  status: string;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number | null;
  billing_mode: string;
  cost_usd: number;
  reported: number | null;
}

async function paidCalls(): Promise<CallRow[]> {
  const { rows } = await sql<CallRow>`
    select role, purpose, status, prompt_tokens, completion_tokens, cached_tokens, billing_mode, cost_usd,
      (response->'usage'->'prompt_tokens_details'->>'cached_tokens')::int as reported
    from llm_calls where campaign_id = ${campaignId} and status in ('ok', 'duplicate')
    order by id`.execute(h.clients.db);
  return rows;
}

describe('billing a campaign', () => {
  it('records the cached tokens the simulator reported, online, on every paid call', async () => {
    const calls = await paidCalls();
    expect(calls.length).toBe(QUESTIONS * 2);
    for (const c of calls) {
      expect(c.billing_mode).toBe('online');
      expect(c.cached_tokens).toBe(c.reported);
      expect(c.cached_tokens).not.toBeNull();
      const cached = c.cached_tokens ?? 0;
      expect(cached).toBeLessThanOrEqual(c.prompt_tokens);
      if (cached > 0) {
        expect(cached).toBeGreaterThanOrEqual(CACHE_MIN_TOKENS);
        expect(cached % CACHE_STEP_TOKENS).toBe(0);
      }
    }
    // The guideline requests share system prompt, "Question:" and runbook: of the weak model's
    // requests, only the first to reach the server missed the cache.
    const guidelines = calls.filter((c) => c.role === 'weak');
    expect(guidelines).toHaveLength(QUESTIONS);
    expect(guidelines.filter((c) => (c.cached_tokens ?? 0) === 0)).toHaveLength(1);
    // At least the runbook's whole 128-token steps (more where two questions begin alike).
    const runbookSteps = Math.floor(PREAMBLE.length / 4 / CACHE_STEP_TOKENS) * CACHE_STEP_TOKENS;
    for (const c of guidelines.filter((g) => (g.cached_tokens ?? 0) > 0)) {
      expect(c.cached_tokens).toBeGreaterThanOrEqual(runbookSteps);
    }
  });

  it('bills each call at the cached price for its cached tokens; status, report and budget sum those bills', async () => {
    const { spec } = await getCampaign(h.clients.db, campaignId);
    const pricing = (role: string) =>
      spec.models[role as Role]?.pricing ?? { inputPerMTok: 0, outputPerMTok: 0 };
    const calls = await paidCalls();
    let billed = 0;
    let listPrice = 0;
    let discount = 0;
    for (const c of calls) {
      const usage = {
        promptTokens: c.prompt_tokens,
        cachedTokens: c.cached_tokens,
        completionTokens: c.completion_tokens,
      };
      const cost = callCost(pricing(c.role), 'online', usage);
      expect(c.cost_usd).toBeCloseTo(cost, 15);
      billed += cost;
      const p = pricing(c.role);
      listPrice += (c.prompt_tokens * p.inputPerMTok + c.completion_tokens * p.outputPerMTok) / 1e6;
      discount +=
        ((c.cached_tokens ?? 0) * (p.inputPerMTok - (p.cachedInputPerMTok ?? p.inputPerMTok))) / 1e6;
    }
    // The cache made a difference, and exactly the stated one.
    expect(discount).toBeGreaterThan(0);
    expect(billed).toBeCloseTo(listPrice - discount, 12);

    const status = await campaignStatus(h.clients, campaignId);
    expect(status.costUsd).toBeCloseTo(billed, 12);
    // The budget reads campaign_spend, kept from cost_usd by a trigger.
    const { rows } = await sql<{ usd: number }>`select coalesce(sum(cost_usd), 0)::float8 as usd
      from campaign_spend where campaign_id = ${campaignId}`.execute(h.clients.db);
    expect(rows[0]?.usd).toBeCloseTo(billed, 12);

    const report = await buildReport(h.clients.db, campaignId);
    const cachedTotal = calls.reduce((s, c) => s + (c.cached_tokens ?? 0), 0);
    expect(report.totals.costUsd).toBeCloseTo(billed, 12);
    expect(report.totals.cachedTokens).toBe(cachedTotal);
    expect(report.stages.map((s) => [s.stage, s.cachedTokens])).toEqual([['distill', cachedTotal]]);
    const text = renderReportText(report);
    expect(text).toMatch(/tokens in +cached +tokens out +cost/);
    expect(text).toContain(report.costMethod);
    process.stderr.write(
      `[billing] ${calls.length} calls, ${cachedTotal} of ${report.totals.promptTokens} prompt tokens cached: ` +
        `billed $${billed.toFixed(6)}, $${listPrice.toFixed(6)} without the cache discount\n` +
        text.slice(text.indexOf('stages')),
    );
  });
});
