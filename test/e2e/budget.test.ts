/**
 * The budget stops a campaign inside the running stage: once the estimated spend passes
 * maxCostUsd no new batch starts, the campaign fails with a message that says so, and no
 * fine-tune is submitted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRows, launch, startHarness, waitDone, writeSpec, type Harness } from '../support/harness';

describe('budget', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('stops starting batches once the spend passes maxCostUsd, and fails the campaign', async () => {
    const spec = await writeSpec(h, {
      stages: { distill: { batchSize: 4, parallelBatches: 1 } },
      budget: { maxCostUsd: 0.01 }, // one batch of 4 strong answers costs about $0.012 at these prices
    });
    const { campaignId } = await launch(h, spec);
    const final = await waitDone(h, campaignId, 60_000);

    expect(final.state).toBe('failed');
    expect(final.error).toMatch(/budget exceeded: estimated spend \$0\.0\d > maxCostUsd \$0\.01/);
    expect(await countRows(h, 'distill_records', campaignId)).toBe(4);
    expect(await countRows(h, 'finetune_jobs', campaignId)).toBe(0);
    const run = await h.clients.db
      .selectFrom('stage_runs')
      .select(['status'])
      .where('campaign_id', '=', campaignId)
      .executeTakeFirstOrThrow();
    expect(run.status).toBe('failed');
  });
});
