/**
 * Cancel stops the campaign and the running fine-tune command: the job's process group is
 * killed, the job is recorded as cancelled, and the campaign ends `cancelled` without M1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignStatus } from '../../client/status';
import {
  countRows,
  isAlive,
  launch,
  startHarness,
  waitDone,
  waitFor,
  writeSpec,
  type Harness,
} from '../support/harness';

describe('campaign cancel', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('cancels the campaign and kills the fine-tune command it is running', async () => {
    // A long simulated training, so the cancel lands while the command runs.
    const spec = await writeSpec(h, { fineTune: { env: { METEOR_SIM_TRAIN_SECONDS: '120' } } });
    const { campaignId, workflowId } = await launch(h, spec);

    const job = await waitFor(
      'the fine-tune command to be running',
      async () => {
        const row = await h.clients.db
          .selectFrom('finetune_jobs')
          .selectAll()
          .where('campaign_id', '=', campaignId)
          .executeTakeFirst();
        return row?.external_id ? row : undefined;
      },
      60_000,
    );
    const pid = Number(job.external_id?.replace(/^local:/, ''));
    expect(isAlive(pid)).toBe(true);

    await h.clients.temporal.workflow.getHandle(workflowId).cancel();
    const final = await waitDone(h, campaignId, 60_000);

    expect(final.state).toBe('cancelled');
    await waitFor('the fine-tune process to exit', async () => !isAlive(pid), 15_000);
    const after = await h.clients.db
      .selectFrom('finetune_jobs')
      .select(['status'])
      .where('id', '=', job.id)
      .executeTakeFirstOrThrow();
    expect(after.status).toBe('cancelled');
    expect(await countRows(h, 'model_versions', campaignId)).toBe(1); // M0 only
    const row = await h.clients.db
      .selectFrom('campaigns')
      .select(['state'])
      .where('id', '=', campaignId)
      .executeTakeFirstOrThrow();
    expect(row.state).toBe('cancelled');
    expect((await campaignStatus(h.clients, campaignId)).lineage.map((m) => m.label)).toEqual(['M0']);
  });
});
