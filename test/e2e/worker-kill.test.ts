/**
 * A worker killed with SIGKILL in the middle of Stage 1, then a new one started: the campaign
 * completes with exactly one record per question, and no LLM call is paid for twice beyond the
 * ones that were in flight when the worker died. Real processes throughout: the worker is
 * `meteorctl worker` in a child process, killed the hard way.
 */
import type { ChildProcess } from 'node:child_process';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  countRows,
  distillRecordCounts,
  launch,
  startHarness,
  waitFor,
  writeSpec,
  type Harness,
} from '../support/harness';
import { paidTwice } from '../support/paid-twice';
import {
  campaignResultWithin,
  exited,
  spawnHarnessWorker,
  stopProcesses,
  type WorkerProcess,
} from '../support/worker-process';

const TRAIN_QUESTIONS = 48;
/** weak concurrency + strong concurrency: the most requests one worker can have in flight. */
const WEAK_CONCURRENCY = 4;
const STRONG_CONCURRENCY = 4;
const IN_FLIGHT_BOUND = WEAK_CONCURRENCY + STRONG_CONCURRENCY;

const children: ChildProcess[] = [];
let h: Harness;

/** Starts `meteorctl worker` on the harness's task queue; resolves once it polls. */
async function startWorkerProcess(): Promise<WorkerProcess> {
  const worker = await spawnHarnessWorker(h);
  children.push(worker.child);
  return worker;
}

async function countOkCalls(campaignId: string): Promise<number> {
  const row = await h.clients.db
    .selectFrom('llm_calls')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('campaign_id', '=', campaignId)
    .where('status', '=', 'ok')
    .executeTakeFirstOrThrow();
  return row.n;
}

beforeAll(async () => {
  // The harness gives the simulator, clients on a task queue of its own and a scratch folder;
  // the workers are child processes started below, not the harness's in-process one.
  h = await startHarness({ latencyMs: 250, worker: false });
});

afterAll(async () => {
  // Kill every worker this file started, whatever happened to the test.
  await stopProcesses(children, 'SIGKILL');
  await h?.close();
});

describe('a worker killed with SIGKILL in the middle of Stage 1', () => {
  it('completes on a new worker with one record per question, repaying only the calls in flight at the kill', async () => {
    // The example campaign, pointed at the simulator, with small concurrency and batches.
    const specPath = await writeSpec(h, {
      name: 'worker-kill',
      models: { weak: { concurrency: WEAK_CONCURRENCY }, strong: { concurrency: STRONG_CONCURRENCY } },
      stages: { distill: { batchSize: 4 } },
    });

    const first = await startWorkerProcess();
    // launchCampaign through h.clients, whose services.taskQueue is the workers' queue.
    const { campaignId, workflowId } = await launch(h, specPath);

    // Mid-stage: some records written, most not.
    const recordsAtKill = await waitFor(
      '15 distill records',
      async () => {
        const n = await countRows(h, 'distill_records', campaignId);
        return n >= 15 ? n : undefined;
      },
      60_000,
      50,
    );
    const pid = first.child.pid;
    if (pid === undefined) throw new Error('worker has no pid');
    process.kill(pid, 'SIGKILL');
    await exited(first.child);
    expect(first.child.signalCode).toBe('SIGKILL');
    const servedAtKill = h.sim.stats().served;
    const okCallsAtKill = await countOkCalls(campaignId);
    expect(recordsAtKill).toBeLessThan(TRAIN_QUESTIONS);
    // What the dead worker was paid for but never logged: at most what it had in flight.
    expect(servedAtKill - okCallsAtKill).toBeLessThanOrEqual(IN_FLIGHT_BOUND);

    // Requests that reach the server from here on are the new worker's.
    const restartAt = Date.now();
    const second = await startWorkerProcess();
    // The dead worker's batches come back after their heartbeat timeout (20 s).
    const result = await campaignResultWithin(h, workflowId, second, 90_000);
    expect(result.state).toBe('completed');

    const db = h.clients.db;
    expect(await distillRecordCounts(h, campaignId)).toEqual({
      n: TRAIN_QUESTIONS,
      distinct: TRAIN_QUESTIONS,
    });

    const served = h.sim.stats().served;
    const okCalls = await countOkCalls(campaignId);
    process.stderr.write(
      `[worker-kill] at kill: ${recordsAtKill} records, ${servedAtKill} served, ${okCallsAtKill} ok calls; ` +
        `at the end: ${served} served, ${okCalls} ok calls\n`,
    );
    expect(okCalls).toBeGreaterThanOrEqual(2 * TRAIN_QUESTIONS);
    expect(served).toBeGreaterThanOrEqual(okCalls);
    expect(served - okCalls).toBeLessThanOrEqual(IN_FLIGHT_BOUND);
    // Paid twice, by the server's own count of requests by content: only what the dead worker
    // had in flight (sent before the restart, its answer never logged), and each once more.
    const paid = await paidTwice(h, [campaignId]);
    const sentBeforeRestart = new Set(
      h.sim
        .stats()
        .recent.filter((r) => Date.parse(r.at) < restartAt && r.hash !== undefined)
        .map((r) => r.hash),
    );
    process.stderr.write(`[worker-kill] calls paid twice (server's count by content): ${paid.length}\n`);
    expect(paid.length).toBeLessThanOrEqual(IN_FLIGHT_BOUND);
    expect(paid.filter((p) => !sentBeforeRestart.has(p.hash) || p.served !== p.calls + 1)).toEqual([]);

    const jobs = await db
      .selectFrom('finetune_jobs')
      .selectAll()
      .where('campaign_id', '=', campaignId)
      .execute();
    expect(jobs).toHaveLength(1);
    expect(jobs[0]?.status).toBe('succeeded');

    const lineage = await db
      .selectFrom('model_versions')
      .select(['label', 'parent_label'])
      .where('campaign_id', '=', campaignId)
      .orderBy('label')
      .execute();
    expect(lineage).toEqual([
      { label: 'M0', parent_label: null },
      { label: 'M1', parent_label: 'M0' },
    ]);
    expect(result.lineage.map((m) => m.label)).toEqual(['M0', 'M1']);
  });
});
