/**
 * A stage reports its progress to the campaign (a signal, and a workflow task of the campaign, each)
 * at most once a second from its batches, however fast they finish: on fast stages one report per
 * batch was half of the Temporal server's CPU per call (issue 9). The campaign still ends with the
 * stage's whole progress.
 */
import { tsToMs } from '@temporalio/common/lib/time';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignStatus } from '../../client/status';
import {
  exampleQuestions,
  launch,
  startHarness,
  waitDone,
  writeQuestions,
  writeSpec,
  type Harness,
} from '../support/harness';

const QUESTIONS = 40;
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ latencyMs: 1 });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('stage progress reports', () => {
  it('reach the campaign at most once a second from batches, and the last one is whole', async () => {
    const train = await writeQuestions(h.tmp, 'train.jsonl', await exampleQuestions(QUESTIONS));
    // One question a batch, one batch at a time: 40 batches, each far shorter than a second.
    const spec = await writeSpec(h, {
      name: 'progress-reports',
      questions: { train },
      stages: { distill: { batchSize: 1, parallelBatches: 1 } },
    });
    const { campaignId, workflowId } = await launch(h, spec);
    const final = await waitDone(h, campaignId, 90_000);
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');

    const history = await h.clients.temporal.workflow.getHandle(`${workflowId}-distill-1`).fetchHistory();
    const events = history.events ?? [];
    const at = (e: (typeof events)[number]) => tsToMs(e.eventTime);
    const reports = events.filter((e) => e.signalExternalWorkflowExecutionInitiatedEventAttributes);
    const spanS = (at(events[events.length - 1]!) - at(events[0]!)) / 1000;
    // Without the throttle: one per batch (40), and `exporting` and `completed`.
    expect(reports.length).toBeGreaterThan(2);
    expect(reports.length).toBeLessThanOrEqual(Math.ceil(spanS) + 3);

    const status = await campaignStatus(h.clients, campaignId);
    const distill = status.stages.find((s) => s.stage === 'distill');
    expect(distill).toMatchObject({
      status: 'completed',
      total: QUESTIONS,
      done: QUESTIONS,
      records: QUESTIONS,
    });
  });
});
