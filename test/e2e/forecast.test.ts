/**
 * `meteorctl campaign plan` (issue 12, part 1): the campaign's stages run on a sample of its
 * questions against the simulator (fine-tunes on the sample included), marked as a forecast, and
 * scaled to the whole; `campaign launch` then shows that forecast, refuses a budget below it (creating nothing)
 * unless `--yes`, and the full run's calls and cost land inside the forecast's ranges.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Forecast } from '../../core/forecast';
import { countRows, meteorctl, startHarness, waitDone, writeSpec, type Harness } from '../support/harness';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ latencyMs: 10 });
});

afterAll(async () => {
  await h?.close();
});

async function campaignCount(): Promise<number> {
  const r = await h.clients.db
    .selectFrom('campaigns')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('task_queue', '=', h.taskQueue)
    .executeTakeFirstOrThrow();
  return r.n;
}

describe('campaign plan', () => {
  it('forecasts calls, tokens, cost and time from a sample, and launch holds the budget to it', async () => {
    // The example's first two stages with their iterations and fine-tunes (a run of the whole
    // example is in the README's figures: evaluate's calls depend on how good the final model is,
    // which a model trained on a sample is not).
    const overrides = { name: 'forecast', stages: { assess: { enabled: true } } };
    const specPath = await writeSpec(h, overrides);
    const planned = await meteorctl(h, ['campaign', 'plan', '-f', specPath, '--sample', '8', '--json']);
    expect(planned.stderr).toBe('');
    expect(planned.code).toBe(0);
    const { campaignId: forecastId, forecast } = JSON.parse(planned.stdout) as {
      campaignId: string;
      forecast: Forecast;
    };
    expect(forecast.sample).toEqual({ train: 8, eval: 8 });
    expect(forecast.of).toEqual({ train: 48, eval: 16 });
    expect(forecast.stages.map((s) => s.stage)).toEqual(['distill', 'assess']);
    // The forecast run is marked and sampled, and trains on its sample as the campaign would.
    const row = await h.clients.db
      .selectFrom('campaigns')
      .select('forecast')
      .where('id', '=', forecastId)
      .executeTakeFirstOrThrow();
    expect(row.forecast).toMatchObject({ of: { train: 48, eval: 16 }, train: true });
    // distill, and assess twice
    expect(await countRows(h, 'finetune_jobs', forecastId)).toBe(3);
    expect(await countRows(h, 'distill_records', forecastId)).toBe(8);

    // A budget under the forecast: refused with the figures, nothing created.
    const cheap = await writeSpec(h, { ...overrides, budget: { maxCostUsd: forecast.total.costUsd / 2 } });
    const before = await campaignCount();
    const refused = await meteorctl(h, ['campaign', 'launch', '-f', cheap]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`The forecast of this campaign (${forecastId}) is $`);
    expect(refused.stderr).toContain('over budget.maxCostUsd');
    expect(await campaignCount()).toBe(before);

    // The full run: its calls and cost fall inside the forecast's ranges.
    const launched = await meteorctl(h, ['campaign', 'launch', '-f', specPath, '--json']);
    expect(launched.code).toBe(0);
    const { campaignId, forecast: shown } = JSON.parse(launched.stdout) as {
      campaignId: string;
      forecast: { campaignId: string };
    };
    expect(shown.campaignId).toBe(forecastId);
    h.launched.push(`campaign-${campaignId}`);
    expect((await waitDone(h, campaignId, 120_000)).state).toBe('completed');
    const actual = await h.clients.db
      .selectFrom('llm_calls')
      .select([
        'stage',
        sql<number>`count(*)::int`.as('calls'),
        sql<number>`sum(cost_usd)::float8`.as('cost'),
      ])
      .where('campaign_id', '=', campaignId)
      .where('status', '!=', 'duplicate')
      .groupBy('stage')
      .execute();
    const lines: string[] = [];
    for (const s of forecast.stages) {
      const a = actual.find((r) => r.stage === s.stage);
      lines.push(
        `${s.stage}: calls ${s.calls} [${s.callsRange.lo.toFixed(0)}, ${s.callsRange.hi.toFixed(0)}] vs ${a?.calls}; ` +
          `cost $${s.costUsd.toFixed(4)} [${s.costRange.lo.toFixed(4)}, ${s.costRange.hi.toFixed(4)}] vs $${a?.cost.toFixed(4)}`,
      );
    }
    process.stderr.write(`[forecast] ${lines.join('\n[forecast] ')}\n`);
    for (const s of forecast.stages) {
      const a = actual.find((r) => r.stage === s.stage);
      expect(a?.calls).toBeGreaterThanOrEqual(Math.floor(s.callsRange.lo));
      expect(a?.calls).toBeLessThanOrEqual(Math.ceil(s.callsRange.hi));
      expect(a?.cost).toBeGreaterThanOrEqual(s.costRange.lo * 0.999);
      expect(a?.cost).toBeLessThanOrEqual(s.costRange.hi * 1.001);
    }

    // --no-train: the base model throughout, no fine-tune; its assess (the model never improves)
    // is an upper bound of the trained forecast's.
    const untrained = await meteorctl(h, [
      'campaign',
      'plan',
      '-f',
      specPath,
      '--sample',
      '4',
      '--no-train',
      '--json',
    ]);
    expect(untrained.code).toBe(0);
    const base = JSON.parse(untrained.stdout) as { campaignId: string; forecast: Forecast };
    expect(base.forecast.trained).toBe(false);
    expect(await countRows(h, 'finetune_jobs', base.campaignId)).toBe(0);
    const assessCalls = (f: Forecast) => f.stages.find((s) => s.stage === 'assess')?.calls ?? 0;
    expect(assessCalls(base.forecast)).toBeGreaterThan(assessCalls(forecast));
  });
});
