/**
 * The worker outlives its dependencies: PostgreSQL restarted twice (fast, then immediate), the
 * Temporal server stopped for 20 s, and the model server restarted, each in the middle of a
 * distill stage. One `meteorctl worker` process (same pid throughout) finishes every campaign
 * with one record per question, paying again only for calls in flight at an outage (counted by
 * the simulator). This file runs its own PostgreSQL and Temporal dev server: it restarts them.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateToLatest } from '../../core/db/migrate';
import { startSimServer, type RequestCount } from '../../infra/sim/server';
import { findFreePort } from '../../infra/stack/ports';
import { startPostgres, type PostgresHandle } from '../../infra/stack/postgres';
import { resolveTemporalBinary } from '../../infra/stack/temporal-binary';
import {
  startTemporalDevServer,
  type TemporalDevServer,
  type TemporalDevServerOptions,
} from '../../infra/stack/temporal-server';
import {
  countRows,
  distillRecordCounts,
  EXAMPLE_EVAL,
  EXAMPLE_TRAIN,
  exampleQuestions,
  launch,
  sleep,
  startHarness,
  waitFor,
  writeQuestions,
  writeSpec,
  type Harness,
  type Services,
} from '../support/harness';
import { paidTwice } from '../support/paid-twice';
import { pgCtlRestart } from '../support/pg-ctl';
import {
  campaignResultWithin,
  spawnHarnessWorker,
  stopProcesses,
  type WorkerProcess,
} from '../support/worker-process';

/** Per campaign, each its own slice of the example's 48: no request body is shared between tests. */
const QUESTIONS = 16;
const LATENCY_MS = 300;
const CONCURRENCY = 2;
/** The most requests one worker has in flight: what an outage may make it pay for again. */
const IN_FLIGHT_BOUND = 2 * CONCURRENCY;
const NAMESPACE = 'default';

let scratch: string;
let postgres: PostgresHandle;
let temporalOpts: TemporalDevServerOptions;
let temporal: TemporalDevServer;
let svc: Services;
let h: Harness;
let worker: WorkerProcess;
let campaigns = 0;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'meteor-restarts-'));
  await chmod(scratch, 0o755); // as root, PostgreSQL runs as `postgres` and must reach its data
  temporalOpts = {
    binary: await resolveTemporalBinary(),
    dbFile: path.join(scratch, 'temporal.sqlite'),
    port: await findFreePort(),
    uiPort: await findFreePort(),
    namespace: NAMESPACE,
    logFile: path.join(scratch, 'temporal.log'),
  };
  // Neither waits for the other: both start at once.
  [postgres, temporal] = await Promise.all([
    findFreePort().then((port) => startPostgres({ dataDir: path.join(scratch, 'postgres'), port })),
    startTemporalDevServer(temporalOpts),
  ]);
  await migrateToLatest(postgres.url);
  svc = { databaseUrl: postgres.url, temporalAddress: temporal.address, namespace: NAMESPACE };
  h = await startHarness({ services: svc, latencyMs: LATENCY_MS, worker: false });
  worker = await spawnHarnessWorker(h, serviceEnv());
}, 240_000);

afterAll(async () => {
  if (worker) await stopProcesses([worker.child], 'SIGKILL');
  await h?.close();
  await temporal?.stop();
  await postgres?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** A worker process's environment: this file's PostgreSQL and Temporal (plus `extra`). */
function serviceEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: svc.databaseUrl,
    TEMPORAL_ADDRESS: svc.temporalAddress,
    TEMPORAL_NAMESPACE: svc.namespace,
    ...extra,
  };
}

/** A distill campaign of `questions` questions (QUESTIONS: slow enough to be caught mid-stage). */
async function launchDistill(
  name: string,
  questions = QUESTIONS,
): Promise<{ campaignId: string; workflowId: string }> {
  const n = campaigns++ % 3; // the last test's campaign checks records only, not payments
  const slice = (await exampleQuestions()).slice(n * QUESTIONS, n * QUESTIONS + questions);
  const spec = await writeSpec(h, {
    name,
    questions: { train: await writeQuestions(h.tmp, `${name}.jsonl`, slice), eval: EXAMPLE_EVAL },
    models: { weak: { concurrency: CONCURRENCY }, strong: { concurrency: CONCURRENCY } },
    stages: { distill: { batchSize: 4 } },
  });
  return launch(h, spec);
}

/** Waits for `n` distill records, polling through outages of the test's own connections too. */
function recordsAtLeast(campaignId: string, n: number, timeoutMs = 90_000): Promise<number> {
  return waitFor(
    `${n} distill records`,
    async () => {
      const count = await countRows(h, 'distill_records', campaignId).catch(() => 0);
      return count >= n ? count : undefined;
    },
    timeoutMs,
    100,
  );
}

/** ms from `since` until the worker logged an answered call again: how long it took to resume. */
async function callLoggedAfter(campaignId: string, since: number): Promise<number> {
  const at = await waitFor(
    'an answer logged after the outage',
    async () => {
      const row = await h.clients.db
        .selectFrom('llm_calls')
        .select((eb) => eb.fn.min('created_at').as('first'))
        .where('campaign_id', '=', campaignId)
        .where('status', '=', 'ok')
        .where('created_at', '>', new Date(since))
        .executeTakeFirst()
        .catch(() => undefined);
      return row?.first ? new Date(row.first).getTime() : undefined;
    },
    90_000,
    100,
  );
  return at - since;
}

/**
 * ms from `since` until the worker completed a workflow task of the campaign or its stage again
 * (by the server's event times): how long it took to resume after Temporal came back.
 */
async function workflowTaskAfter(workflowId: string, since: number): Promise<number> {
  const client = h.clients.temporal;
  const ids = [workflowId];
  for (const e of (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? []) {
    const child = e.childWorkflowExecutionStartedEventAttributes?.workflowExecution?.workflowId;
    if (child) ids.push(child);
  }
  let first = Infinity;
  for (const id of ids) {
    for (const e of (await client.workflow.getHandle(id).fetchHistory()).events ?? []) {
      if (!e.workflowTaskCompletedEventAttributes || !e.eventTime?.seconds) continue;
      const t = Number(e.eventTime.seconds) * 1000 + Math.floor((e.eventTime.nanos ?? 0) / 1e6);
      if (t > since) first = Math.min(first, t);
    }
  }
  return first - since;
}

async function completes(workflowId: string, timeoutMs = 120_000): Promise<void> {
  const result = await campaignResultWithin(h, workflowId, worker, timeoutMs);
  expect(result.state).toBe('completed');
}

async function expectOneRecordPerQuestion(campaignId: string, questions = QUESTIONS): Promise<void> {
  expect(await distillRecordCounts(h, campaignId)).toEqual({ n: questions, distinct: questions });
}

function expectSameWorker(pid: number | undefined): void {
  expect(worker.child.pid).toBe(pid);
  expect(worker.child.exitCode, `worker exited; output:\n${worker.output()}`).toBeNull();
  expect(worker.child.signalCode).toBeNull();
}

function report(line: string): void {
  process.stderr.write(`[dependency-restarts] ${line}\n`);
}

/** Lines of the worker's output from `from` on that match `pattern`. */
function linesSince(from: number, pattern: RegExp): string[] {
  return worker
    .output()
    .slice(from)
    .split('\n')
    .filter((l) => pattern.test(l));
}

describe('the same worker process rides out restarts of what it talks to', () => {
  it('PostgreSQL restarted twice mid-stage (pg_ctl restart -m fast, then -m immediate)', async () => {
    const pid = worker.child.pid;
    const logFrom = worker.output().length;
    const { campaignId, workflowId } = await launchDistill('pg-restarts');
    const figures: string[] = [];
    let threshold = 4;
    for (const mode of ['fast', 'immediate'] as const) {
      await recordsAtLeast(campaignId, threshold);
      const down = Date.now();
      await pgCtlRestart(postgres, mode);
      const up = Date.now();
      const resumeMs = await callLoggedAfter(campaignId, up);
      figures.push(`${mode}: down ${up - down} ms, an answer logged ${resumeMs} ms after`);
      threshold = (await countRows(h, 'distill_records', campaignId)) + 3;
    }
    await completes(workflowId);
    expectSameWorker(pid);
    await expectOneRecordPerQuestion(campaignId);

    const paid = await paidTwice(h, [campaignId]);
    report(`PostgreSQL ${figures.join('; ')}; calls paid twice (server's count): ${paid.length}`);
    expect(paid.length).toBeLessThanOrEqual(2 * IN_FLIGHT_BOUND);

    // One line when the database went away and one when it came back, per restart: not one per retry.
    const lost = linesSince(logFrom, /PostgreSQL at .* is unreachable/);
    const back = linesSince(logFrom, /PostgreSQL at .* is back after/);
    expect(lost.length, worker.output().slice(logFrom)).toBeGreaterThanOrEqual(1);
    expect(lost.length).toBeLessThanOrEqual(2);
    expect(back.length).toBe(lost.length);
  }, 240_000);

  it('the Temporal server stopped for 20 s and started again on the same database', async () => {
    const pid = worker.child.pid;
    const logFrom = worker.output().length;
    const { campaignId, workflowId } = await launchDistill('temporal-restart');
    await recordsAtLeast(campaignId, 3);
    await temporal.stop();
    await sleep(20_000);
    const starting = Date.now();
    temporal = await startTemporalDevServer(temporalOpts);
    const up = Date.now();
    await completes(workflowId);
    const resumeMs = await workflowTaskAfter(workflowId, up);
    const upMs = up - starting;
    expectSameWorker(pid);
    await expectOneRecordPerQuestion(campaignId);

    const paid = await paidTwice(h, [campaignId]);
    report(
      `Temporal: down 20 s (+${upMs} ms to start), a workflow task completed ${resumeMs} ms after it was up; ` +
        `calls paid twice (server's count): ${paid.length}`,
    );
    expect(paid.length).toBeLessThanOrEqual(IN_FLIGHT_BOUND);
    // The worker's probe (every 3 s) may see the server back only after the campaign completed.
    await waitFor('the worker to see the Temporal server back', async () =>
      linesSince(logFrom, /the Temporal server at .* is back after/).length > 0 ? true : undefined,
    ).catch(() => undefined);
    const lost = linesSince(logFrom, /the Temporal server at .* is unreachable/);
    const back = linesSince(logFrom, /the Temporal server at .* is back after/);
    expect(lost.length, worker.output().slice(logFrom)).toBe(1);
    expect(back.length).toBe(1);
    // Not a line per failed poll or retry: the SDK's own notes of each are left out.
    const noise = linesSince(logFrom, /retried \d+ times|tcp connect error|Unavailable/);
    expect(noise.filter((l) => !/the Temporal server at/.test(l))).toEqual([]);
  }, 240_000);

  it('the model server restarted mid-stage, its connections reset', async () => {
    const pid = worker.child.pid;
    const logFrom = worker.output().length;
    const { campaignId, workflowId } = await launchDistill('model-server-restart');
    await recordsAtLeast(campaignId, 4);
    const port = h.sim.port;
    const earlier: Record<string, RequestCount> = h.sim.stats().requestCounts;
    const down = Date.now();
    await h.sim.close(); // drops the requests it holds: their connections are reset
    await sleep(3_000);
    h.sim = await startSimServer({
      port,
      latencyMs: LATENCY_MS,
      knowledgeFiles: [EXAMPLE_TRAIN, EXAMPLE_EVAL],
    });
    const up = Date.now();
    const resumeMs = await callLoggedAfter(campaignId, up);
    await completes(workflowId);
    expectSameWorker(pid);
    await expectOneRecordPerQuestion(campaignId);

    const paid = await paidTwice(h, [campaignId], [earlier]);
    // Told once (the weak and strong models share the server), and once when it answered again.
    const said = worker.output().slice(logFrom);
    expect(linesSince(logFrom, /the model server at .* is unreachable/), said).toHaveLength(1);
    expect(linesSince(logFrom, /the model server at .* is back after/), said).toHaveLength(1);
    report(
      `model server: down ${up - down} ms, an answer logged ${resumeMs} ms after it was back; ` +
        `calls paid twice (server's count): ${paid.length}`,
    );
    expect(paid.length).toBeLessThanOrEqual(IN_FLIGHT_BOUND);
  }, 240_000);

  it('a worker started while PostgreSQL and Temporal are down waits for them; the running one rides it out', async () => {
    const pid = worker.child.pid;
    const logFrom = worker.output().length;
    const pgPort = Number(new URL(postgres.url).port);
    await postgres.stop();
    await temporal.stop();
    let starting = '';
    const late = spawnHarnessWorker(h, serviceEnv(), {
      label: 'late worker',
      startTimeoutMs: 120_000,
      onOutput: (out) => (starting = out),
    });
    late.catch(() => undefined); // awaited below
    // Each comes back once the starting worker has said it waits for it.
    const saysWaiting = (what: RegExp) =>
      waitFor(
        `the starting worker to wait for ${what.source}`,
        async () => what.test(starting) || undefined,
        60_000,
      );
    await saysWaiting(/PostgreSQL at .* is unreachable/);
    await sleep(2_000);
    postgres = await startPostgres({ dataDir: path.join(scratch, 'postgres'), port: pgPort });
    await saysWaiting(/the Temporal server at .* is unreachable/);
    await sleep(2_000);
    temporal = await startTemporalDevServer(temporalOpts);
    const started = await late;
    try {
      const said = started.output();
      expect(said).toMatch(
        /PostgreSQL at 127\.0\.0\.1:\d+\/meteor is unreachable \(.*ECONNREFUSED.*\); waiting for it/,
      );
      expect(said).toMatch(/PostgreSQL at .* is reachable after \d+\.\d s/);
      expect(said).toMatch(/the Temporal server at .* is unreachable \(Connection refused\); waiting for it/);
      expect(said).toMatch(/the Temporal server at .* is reachable after/);
      expect(said.match(/is unreachable/g)).toHaveLength(2); // once each, not once per try
    } finally {
      await stopProcesses([started.child], 'SIGTERM');
    }
    expect(started.child.exitCode).toBe(0);

    // The worker that was running all along saw both go and come back, and still serves.
    // (It notices PostgreSQL go only if it had a connection open: idle ones close after 10 s.)
    const pgLost = linesSince(logFrom, /PostgreSQL at .* is unreachable/).length;
    expect(pgLost).toBeLessThanOrEqual(1);
    expect(linesSince(logFrom, /the Temporal server at .* is unreachable/)).toHaveLength(1);
    await waitFor('the running worker to see them back', async () =>
      linesSince(logFrom, /is back after/).length === pgLost + 1 ? true : undefined,
    );
    expectSameWorker(pid);
    // That it still serves, not an outage mid-stage: a few questions are enough.
    const { campaignId, workflowId } = await launchDistill('after-both-restarts', 4);
    await completes(workflowId);
    await expectOneRecordPerQuestion(campaignId, 4);
  }, 240_000);

  it('a worker exits non-zero for what waiting cannot fix: a wrong password in DATABASE_URL', async () => {
    const wrong = new URL(postgres.url);
    wrong.password = 'not-the-password';
    const err = await spawnHarnessWorker(h, serviceEnv({ DATABASE_URL: wrong.toString() }), {
      label: 'misconfigured worker',
    }).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/exited \(1\)/);
    expect(err?.message).toMatch(
      /meteorctl: Cannot use PostgreSQL at 127\.0\.0\.1:\d+\/meteor \(DATABASE_URL\): password authentication failed/,
    );
    expect(err?.message).not.toContain('not-the-password');
  }, 60_000);
});
