/**
 * Determinism: the histories real campaigns leave behind replay against the current workflow
 * code, and a long stage continues-as-new with its cursor without losing or redoing a question.
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignStatus } from '../../client/status';
import { pauseSignal, resumeSignal } from '../../workflows/messages';
import { workflowBundle } from '../../workers/worker';
import {
  exampleQuestions,
  launch,
  startHarness,
  waitDone,
  waitFor,
  writeQuestions,
  writeSpec,
  recordIds,
  type Harness,
} from '../support/harness';
import { paidTwice, servedFor } from '../support/paid-twice';

type History = temporal.api.history.v1.IHistory;

async function replay(history: History, workflowId: string): Promise<void> {
  await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, workflowId);
}

function lastEvent(history: History): temporal.api.history.v1.IHistoryEvent | undefined {
  return history.events?.at(-1);
}

/** The run id of the child the parent started with this workflow id (its first run). */
function childFirstRunId(parent: History, childWorkflowId: string): string {
  for (const e of parent.events ?? []) {
    const started = e.childWorkflowExecutionStartedEventAttributes;
    if (started?.workflowExecution?.workflowId === childWorkflowId && started.workflowExecution.runId) {
      return started.workflowExecution.runId;
    }
  }
  throw new Error(`no ChildWorkflowExecutionStarted for ${childWorkflowId}`);
}

describe('workflow histories replay', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('replays the campaign, distill and fine-tune histories of a finished campaign (pause and resume included)', async () => {
    const questions = await exampleQuestions(6);
    const train = await writeQuestions(h.tmp, 'replay-train.jsonl', questions);
    const spec = await writeSpec(h, {
      questions: { train, eval: undefined },
      stages: { distill: { batchSize: 2 } },
    });
    const { campaignId, workflowId } = await launch(h, spec);
    const handle = h.clients.temporal.workflow.getHandle(workflowId);

    // Pause at once and resume once it holds, so the histories carry both signals.
    await handle.signal(pauseSignal);
    await waitFor(
      'state paused',
      async () => (await campaignStatus(h.clients, campaignId)).state === 'paused',
      30_000,
      200,
    );
    await handle.signal(resumeSignal);

    const final = await waitDone(h, campaignId, 90_000);
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    expect(await recordIds(h, campaignId)).toEqual(questions.map((q) => q.id).sort());

    // `completed` is recorded by the workflow's last activity, a moment before the run closes.
    await handle.result();
    const campaignHistory = await handle.fetchHistory();
    const signals = (campaignHistory.events ?? [])
      .map((e) => e.workflowExecutionSignaledEventAttributes?.signalName)
      .filter((n): n is string => Boolean(n));
    expect(signals).toContain('pause');
    expect(signals).toContain('resume');
    expect(lastEvent(campaignHistory)?.workflowExecutionCompletedEventAttributes).toBeTruthy();

    const children = [`${workflowId}-distill-1`, `${workflowId}-finetune-distill-1`];
    const histories: Array<[string, History]> = [[workflowId, campaignHistory]];
    for (const id of children) {
      const history = await h.clients.temporal.workflow.getHandle(id).fetchHistory();
      expect(lastEvent(history)?.workflowExecutionCompletedEventAttributes).toBeTruthy();
      histories.push([id, history]);
    }
    for (const [id, history] of histories) {
      await expect(replay(history, id), `replay of ${id}`).resolves.toBeUndefined();
    }
  });
});

describe('continue-as-new', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('rolls the distill stage over to new runs and still makes exactly one record per question', async () => {
    const questions = await exampleQuestions(20);
    const train = await writeQuestions(h.tmp, 'can-train.jsonl', questions);
    const spec = await writeSpec(h, {
      questions: { train, eval: undefined },
      stages: { distill: { batchSize: 1, parallelBatches: 2 } },
    });
    const { campaignId, workflowId } = await launch(h, spec, { workflowInput: { maxHistoryEvents: 30 } });
    const final = await waitDone(h, campaignId, 90_000);
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    expect(final.lineage.map((m) => m.label)).toEqual(['M0', 'M1']);
    expect(final.stages.find((s) => s.stage === 'distill')).toMatchObject({ total: 20, records: 20 });

    const ids = await recordIds(h, campaignId);
    expect(ids).toHaveLength(20);
    expect(ids).toEqual(questions.map((q) => q.id).sort());
    // No batch was run twice across the runs, by the server's own count by content.
    expect(await paidTwice(h, [campaignId])).toEqual([]);
    expect(await servedFor(h, [campaignId], { purpose: 'guideline' })).toEqual({ served: 20, bodies: 20 });

    // Follow the chain of runs from the first: every run but the last continued as new.
    const distillId = `${workflowId}-distill-1`;
    await h.clients.temporal.workflow.getHandle(workflowId).result();
    const campaignHistory = await h.clients.temporal.workflow.getHandle(workflowId).fetchHistory();
    let runId: string | undefined = childFirstRunId(campaignHistory, distillId);
    const runs: Array<{ runId: string; history: History; handle: WorkflowHandle }> = [];
    while (runId) {
      const handle: WorkflowHandle = h.clients.temporal.workflow.getHandle(distillId, runId);
      const history: History = await handle.fetchHistory();
      runs.push({ runId, history, handle });
      runId =
        lastEvent(history)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
      expect(runs.length).toBeLessThan(50);
    }
    expect(runs.length).toBeGreaterThanOrEqual(2);
    const first = runs[0]!;
    expect(lastEvent(first.history)?.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
    expect((await first.handle.describe()).status.name).toBe('CONTINUED_AS_NEW');
    const last = runs.at(-1)!;
    expect(lastEvent(last.history)?.workflowExecutionCompletedEventAttributes).toBeTruthy();
    expect((await last.handle.describe()).status.name).toBe('COMPLETED');
    // Each run stayed near the threshold (30, plus the batches in flight when it was crossed and
    // the closing steps) instead of growing with the stage: one run of all 20 single-question
    // batches would hold at least 20 × 6 = 120 events.
    for (const r of runs) expect(r.history.events?.length ?? 0).toBeLessThan(100);

    // The resumed runs replay too.
    for (const r of runs) {
      await expect(replay(r.history, distillId), `replay of run ${r.runId}`).resolves.toBeUndefined();
    }
    await expect(replay(campaignHistory, workflowId)).resolves.toBeUndefined();
  });
});
