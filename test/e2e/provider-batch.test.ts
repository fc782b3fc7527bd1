/**
 * Batch mode (issue 12, part 2): the strong and judge models' calls sent through the provider's Batch API
 * (the simulator's /v1/files and /v1/batches, a simulation of OpenAI's) instead of online. The
 * same campaign, distill, assess and the evaluation, once online and once in batch mode, on one simulator: the
 * records and judgments are the same, the strong and judge calls are billed at the batch price, every provider
 * batch was created once and no request was paid for twice (both counted at the simulator), and
 * the batches' files are deleted at the provider once their answers are logged.
 */
import { readFile } from 'node:fs/promises';
import { sql } from 'kysely';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callCost } from '../../core/llm/pricing';
import {
  EXAMPLE_EVAL,
  exampleQuestions,
  launch,
  startHarness,
  waitDone,
  writeQuestions,
  writeSpec,
  type CampaignStatusView,
  type Harness,
} from '../support/harness';
import { paidTwice } from '../support/paid-twice';

const QUESTIONS = 10;
const EVAL_QUESTIONS = 4;
const STRONG_PRICE = { inputPerMTok: 2.5, outputPerMTok: 10 };

let h: Harness;
const runs: Record<'online' | 'batch', { campaignId: string; final: CampaignStatusView; seconds: number }> =
  {} as never;

beforeAll(async () => {
  h = await startHarness({ latencyMs: 5 });
  const train = await writeQuestions(h.tmp, 'train.jsonl', await exampleQuestions(QUESTIONS));
  const evalLines = (await readFile(EXAMPLE_EVAL, 'utf8')).split('\n').filter((l) => l.trim() !== '');
  const evalFile = await writeQuestions(h.tmp, 'eval.jsonl', evalLines.slice(0, EVAL_QUESTIONS));
  for (const mode of ['online', 'batch'] as const) {
    const batch = { pollInterval: '300ms' };
    const spec = await writeSpec(h, {
      name: `batch-${mode}`,
      questions: { train, eval: evalFile },
      models: {
        strong: { mode, batch, pricing: STRONG_PRICE },
        judge: { mode, batch, pricing: STRONG_PRICE },
      },
      stages: {
        distill: { batchSize: 4 },
        assess: { enabled: true, batchSize: 4 },
        evaluate: { enabled: true, batchSize: 4 },
      },
    });
    const started = Date.now();
    const { campaignId } = await launch(h, spec);
    runs[mode] = {
      campaignId,
      final: await waitDone(h, campaignId, 120_000),
      seconds: (Date.now() - started) / 1000,
    };
  }
}, 240_000);

afterAll(async () => {
  await h?.close();
});

async function distillRecords(campaignId: string) {
  return h.clients.db
    .selectFrom('distill_records')
    .select(['question_id', 'guideline', 'answer', 'guideline_corrected', 'correction'])
    .where('campaign_id', '=', campaignId)
    .orderBy('question_id')
    .execute();
}

async function judgments(campaignId: string) {
  return h.clients.db
    .selectFrom('judgments')
    .select(['model_label', 'question_id', 'position', 'status', 'verdicts', 'scores'])
    .where('campaign_id', '=', campaignId)
    .orderBy('model_label')
    .orderBy('question_id')
    .orderBy('position')
    .execute();
}

async function assessRounds(campaignId: string) {
  return h.clients.db
    .selectFrom('assess_rounds')
    .select(['question_id', 'round', 'answer', 'verdict', 'feedback'])
    .where('campaign_id', '=', campaignId)
    .orderBy('question_id')
    .orderBy('round')
    .execute();
}

interface PaidCall {
  stage: string;
  role: string;
  request_hash: string;
  billing_mode: string;
  prompt_tokens: number;
  completion_tokens: number;
  cost_usd: number;
}

async function paidCalls(campaignId: string): Promise<PaidCall[]> {
  const { rows } = await sql<PaidCall>`
    select stage, role, request_hash, billing_mode, prompt_tokens, completion_tokens, cost_usd from llm_calls
    where campaign_id = ${campaignId} and status = 'ok'`.execute(h.clients.db);
  return rows;
}

describe('strong model in batch mode', () => {
  it('completes with the same records as online', async () => {
    for (const { final } of Object.values(runs)) {
      expect(final.error).toBeNull();
      expect(final.state).toBe('completed');
    }
    const online = runs.online.campaignId;
    const batch = runs.batch.campaignId;
    const distilled = await distillRecords(batch);
    expect(distilled).toHaveLength(QUESTIONS);
    expect(distilled).toEqual(await distillRecords(online));
    const assessed = await assessRounds(batch);
    expect(assessed.length).toBeGreaterThanOrEqual(QUESTIONS);
    expect(assessed).toEqual(await assessRounds(online));
    // The judge in batch mode too: M1 and M2 each against M0, both orders, per held-out question.
    const judged = await judgments(batch);
    expect(judged).toHaveLength(2 * 2 * EVAL_QUESTIONS);
    expect(judged).toEqual(await judgments(online));
  });

  it('sends every strong call through provider batches, each created once, and bills them at the batch price', async () => {
    const batch = runs.batch.campaignId;
    const calls = await paidCalls(batch);
    const strong = calls.filter((c) => c.role === 'strong' || c.role === 'judge');
    expect(strong.length).toBeGreaterThan(0);
    expect(strong.every((c) => c.billing_mode === 'batch')).toBe(true);
    expect(calls.filter((c) => c.role === 'weak').every((c) => c.billing_mode === 'online')).toBe(true);
    for (const c of strong) {
      expect(c.cost_usd).toBeCloseTo(
        callCost(STRONG_PRICE, 'batch', {
          promptTokens: c.prompt_tokens,
          cachedTokens: null,
          completionTokens: c.completion_tokens,
        }),
        10,
      );
    }
    // At the simulator: the batches this campaign created, by their metadata, once each.
    const created = Object.entries(h.sim.stats().batches.createdByMetadata).filter(([meta]) =>
      meta.includes(batch),
    );
    expect(created.length).toBeGreaterThanOrEqual(3); // distill's, assess's and evaluate's rounds
    for (const [, n] of created) expect(n).toBe(1);
    expect(await paidTwice(h, [batch])).toEqual([]);
    // The same requests as online, with the same tokens, at half the price (pricing.batch's default).
    const online = new Map(
      (await paidCalls(runs.online.campaignId))
        .filter((c) => c.role === 'strong' || c.role === 'judge')
        .map((c) => [c.request_hash, c]),
    );
    const hashes = (cs: Iterable<PaidCall>) =>
      // The self-correction probe's verdicts are left out: a reply the judge must be asked again
      // for (unparseable, a simulated fault) adds a salted request in one run and not the other.
      new Set([...cs].filter((c) => c.stage !== 'evaluate' || c.role === 'judge').map((c) => c.request_hash));
    expect(hashes(strong)).toEqual(hashes(online.values()));
    let onlineCost = 0;
    let batchCost = 0;
    for (const c of strong) {
      const o = online.get(c.request_hash);
      if (!o) continue;
      expect([c.prompt_tokens, c.completion_tokens]).toEqual([o.prompt_tokens, o.completion_tokens]);
      expect(c.cost_usd).toBeCloseTo(o.cost_usd / 2, 12);
      onlineCost += o.cost_usd;
      batchCost += c.cost_usd;
    }
    console.log(
      `[batch] strong and judge calls ${strong.length}: online $${onlineCost.toFixed(6)}, batch $${batchCost.toFixed(6)}; ` +
        `campaign $${runs.online.final.costUsd.toFixed(6)} in ${runs.online.seconds} s online vs ` +
        `$${runs.batch.final.costUsd.toFixed(6)} in ${runs.batch.seconds} s batch`,
    );
  });

  it('leaves no files at the provider once the answers are logged: inputs, outputs and errors', async () => {
    expect(h.sim.stats().batches.filesUploaded).toBeGreaterThan(0);
    const client = new OpenAI({ baseURL: h.sim.url, apiKey: 'none' });
    const left: string[] = [];
    for await (const f of client.files.list()) left.push(`${f.filename} (${f.purpose})`);
    expect(left).toEqual([]);
  });
});
