/**
 * The budget is checked as spend happens: no call starts once the campaign's spend reaches
 * `budget.maxCostUsd`, so what the model server answered past the budget is at most the calls
 * that were in flight; the campaign then pauses with the reason, and raising the budget with
 * `campaign resume --max-cost-usd` lets it complete.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  campaignForCalls,
  countRows,
  launch,
  meteorctl,
  startHarness,
  waitDone,
  waitFor,
  writeSpec,
  type Harness,
} from '../support/harness';
import { campaignStatus } from '../../client/status';
import { databaseBudgetGuard } from '../../core/llm/budget-guard';
import { LlmGateway, type Endpoint } from '../../core/llm/gateway';
import { EndpointLimiter } from '../../core/llm/limiter';

const STRONG_CONCURRENCY = 4;
const PRICE = { inputPerMTok: 2.5, outputPerMTok: 10 };
const BUDGET_USD = 0.01;

/** Waits for the campaign to pause (never to fail) on a budget; returns that status. */
function pausedOnBudget(h: Harness, campaignId: string, which: string) {
  return waitFor(
    `the campaign to pause on ${which}`,
    async () => {
      const s = await campaignStatus(h.clients, campaignId);
      expect(s.state).not.toBe('failed');
      return s.state === 'paused' ? s : null;
    },
    60_000,
  );
}

describe('budget', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ latencyMs: 30 });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('stops new calls at maxCostUsd, overshoots by at most the calls in flight, pauses, and completes once raised', async () => {
    const spec = await writeSpec(h, {
      models: {
        weak: { concurrency: 8 },
        strong: { concurrency: STRONG_CONCURRENCY, pricing: PRICE },
      },
      stages: { distill: { batchSize: 4 } },
      // One strong answer costs about $0.003 at these prices: the budget lasts a few calls.
      budget: { maxCostUsd: BUDGET_USD },
    });
    const { campaignId } = await launch(h, spec);
    const paused = await pausedOnBudget(h, campaignId, 'its budget');
    expect(paused.pauseReason).toMatch(
      /^budget reached: \$0\.0\d+ of \$0\.01; raise budget\.maxCostUsd and resume/,
    );
    expect(await countRows(h, 'finetune_jobs', campaignId)).toBe(0);

    // At the server: what it answered the strong model, priced, against the budget.
    const strong = h.sim.stats().byModel['sim-strong'];
    if (!strong) throw new Error('the simulator saw no strong request');
    const serverSpend =
      (strong.promptTokens * PRICE.inputPerMTok + strong.completionTokens * PRICE.outputPerMTok) / 1e6;
    const calls = await h.clients.db
      .selectFrom('llm_calls')
      .select([
        sql<number>`count(*)::int`.as('n'),
        sql<number>`coalesce(max(cost_usd), 0)::float8`.as('maxCost'),
      ])
      .where('campaign_id', '=', campaignId)
      .where('role', '=', 'strong')
      .where('status', '=', 'ok')
      .executeTakeFirstOrThrow();
    process.stderr.write(
      `[budget] server answered ${strong.served} strong calls worth $${serverSpend.toFixed(5)} against a ` +
        `$${BUDGET_USD} budget (max call $${calls.maxCost.toFixed(5)}, ${STRONG_CONCURRENCY} in flight at most); ` +
        `${calls.n} logged\n`,
    );
    expect(serverSpend).toBeGreaterThanOrEqual(BUDGET_USD);
    expect(serverSpend - BUDGET_USD).toBeLessThanOrEqual(STRONG_CONCURRENCY * calls.maxCost);
    // Every answer the server gave was logged (and so counted against the budget).
    expect(strong.served).toBe(calls.n);

    // The campaign list says why, too.
    const list = await meteorctl(h, ['campaign', 'list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`${campaignId}\\s+paused .*budget reached`));

    const resumed = await meteorctl(h, ['campaign', 'resume', campaignId, '--max-cost-usd', '100']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/budget of the campaign raised to \$100/);

    const final = await waitDone(h, campaignId, 90_000);
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    expect(final.pauseReason).toBeNull();
    expect(await countRows(h, 'distill_records', campaignId)).toBe(48);
    expect(await countRows(h, 'finetune_jobs', campaignId)).toBe(1);
    // The spend the guard reads (kept by a trigger) is the call log's sum.
    const sums = await sql<{ logged: number; kept: number }>`
      select (select sum(cost_usd) from llm_calls where campaign_id = ${campaignId})::float8 as logged,
             (select sum(cost_usd) from campaign_spend where campaign_id = ${campaignId})::float8 as kept`.execute(
      h.clients.db,
    );
    expect(sums.rows[0]?.kept).toBeCloseTo(sums.rows[0]?.logged ?? -1, 9);
  });

  it("pauses on a stage's own budget, and --stage raises that one", async () => {
    const spec = await writeSpec(h, {
      models: { strong: { concurrency: STRONG_CONCURRENCY, pricing: PRICE } },
      stages: { distill: { batchSize: 4, maxCostUsd: BUDGET_USD } },
    });
    const { campaignId } = await launch(h, spec);
    const paused = await pausedOnBudget(h, campaignId, 'the stage budget');
    expect(paused.pauseReason).toMatch(
      /^budget of stage distill reached: \$0\.0\d+ of \$0\.01; raise stages\.distill\.maxCostUsd and resume/,
    );
    const resumed = await meteorctl(h, [
      'campaign',
      'resume',
      campaignId,
      '--max-cost-usd',
      '100',
      '--stage',
      'distill',
    ]);
    expect(resumed.code, resumed.stderr).toBe(0);
    const final = await waitDone(h, campaignId, 90_000);
    expect(final.state).toBe('completed');
    expect(await countRows(h, 'distill_records', campaignId)).toBe(48);
    const row = await h.clients.db
      .selectFrom('campaigns')
      .select('budget_override')
      .where('id', '=', campaignId)
      .executeTakeFirstOrThrow();
    expect(row.budget_override).toEqual({ stages: { distill: 100 } });
  });

  // A call whose slot was passed on by the process's last call of the endpoint starts on the budget
  // as that call's answer log read it (budget-guard.ts): these pin what that reading must be.
  it("starts a call on the budget its slot's last answer was logged with: that answer's cost included, its own campaign's only, a reached one read again", async () => {
    const db = h.clients.db;
    // One slot, kept by this process between calls: each call gets the last one's reading.
    const limiter = new EndpointLimiter(db, { handoverMs: 60_000 });
    const gateway = new LlmGateway(db, {}, null, limiter, { budget: databaseBudgetGuard(db) });
    const campaign = async (name: string, maxCostUsd: number) => {
      const made = await campaignForCalls(h, {
        name,
        // No per-minute rate: a rated endpoint's slot goes back to Postgres after every call.
        models: { strong: { concurrency: 1, pricing: PRICE, requestsPerMinute: undefined } },
        budget: { maxCostUsd },
      });
      const ep: Endpoint = { ...made.spec.models.strong, role: 'strong' };
      const call = (question: string) =>
        gateway.chat({ campaignId: made.campaignId, stage: 'distill', iteration: 0 }, ep, {
          purpose: 'budget-reading-test',
          promptVersion: 'v1',
          messages: [{ role: 'user', content: `${name}: ${question}` }],
        });
      return { campaignId: made.campaignId, call };
    };
    const served = () => h.sim.stats().byModel['sim-strong']?.served ?? 0;
    try {
      // One answer (about $0.003) passes a budget of $0.001.
      const small = await campaign('small-budget', 0.001);
      const roomy = await campaign('roomy-budget', 100);
      let before = served();
      await small.call('How do I drain a node before maintenance?');
      expect(served()).toBe(before + 1);
      // The slot comes with a reading that counts the answer just logged: no second call goes out.
      await expect(small.call('How do I cordon a node?')).rejects.toThrow(
        /^budget reached: \$0\.00\d+ of \$0\.001/,
      );
      expect(served()).toBe(before + 1);

      // Another campaign's reading (within its budget) admits none of this one's calls.
      await roomy.call('How do I list the pods of a node?');
      before = served();
      await expect(small.call('How do I evict a pod?')).rejects.toThrow(/^budget reached/);
      expect(served()).toBe(before);

      // A reading that says "reached" is read again: raised meanwhile (as resume does), the call goes.
      const raising = await campaign('raised-budget', 0.001);
      await raising.call('How do I taint a node?');
      await db
        .updateTable('campaigns')
        .set({ budget_override: JSON.stringify({ maxCostUsd: 100 }) })
        .where('id', '=', raising.campaignId)
        .execute();
      before = served();
      await raising.call('How do I remove a taint?');
      expect(served()).toBe(before + 1);
    } finally {
      await limiter.close();
    }
  });

  it('refuses a budget that is not a positive number', async () => {
    const r = await meteorctl(h, ['campaign', 'resume', 'no-such-campaign', '--max-cost-usd', 'lots']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--max-cost-usd must be a positive number of USD, got "lots"/);
  });
});
