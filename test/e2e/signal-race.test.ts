/**
 * Pause and resume at any moment: signals sent back to back while stages start and end (so
 * some reach the campaign just as a stage's workflow has closed) never fail the campaign.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignStatus } from '../../client/status';
import { pauseSignal, resumeSignal } from '../../workflows/messages';
import {
  exampleQuestions,
  launch,
  sleep,
  startHarness,
  waitDone,
  writeQuestions,
  writeSpec,
  type Harness,
} from '../support/harness';

describe('pause and resume racing the end of a stage', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ latencyMs: 5 });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('completes whatever moment the signals arrive at', async () => {
    const train = await writeQuestions(h.tmp, 'train.jsonl', await exampleQuestions(6));
    const spec = await writeSpec(h, {
      questions: { train },
      stages: {
        distill: { batchSize: 1 },
        assess: { enabled: true, iterations: 2, maxRounds: 1, batchSize: 1, unsolved: 'distilled-answer' },
      },
      fineTune: { env: { METEOR_SIM_TRAIN_SECONDS: '0.2' }, pollInterval: '200ms' },
    });
    const { campaignId, workflowId } = await launch(h, spec);
    const handle = h.clients.temporal.workflow.getHandle(workflowId);
    let sent = 0;
    for (;;) {
      const { state } = await campaignStatus(h.clients, campaignId);
      if (state === 'completed' || state === 'failed' || state === 'cancelled') break;
      await handle.signal(pauseSignal).catch(() => undefined);
      await handle.signal(resumeSignal).catch(() => undefined);
      sent += 2;
      await sleep(20);
    }
    const final = await waitDone(h, campaignId, 60_000);
    expect(sent).toBeGreaterThan(20);
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    expect(final.lineage.map((m) => m.label)).toEqual(['M0', 'M1', 'M2', 'M3']);
  }, 180_000);
});
