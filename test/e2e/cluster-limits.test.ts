/**
 * Endpoint limits hold across worker processes, measured at the model server (the simulator's
 * own counts, not the platform's):
 *  - three `meteorctl worker` processes on one campaign whose weak and strong endpoints allow 8
 *    in flight and RPM requests a minute: the server's peak in flight per model stays ≤ 8 (each
 *    process alone would allow 8: 24 in all), and the requests per minute it receives in steady
 *    state are within 10 % of RPM;
 *  - a 429 with Retry-After (seconds, or an HTTP date) that one process receives holds back the
 *    callers of another process: nothing reaches the endpoint before the time is up.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LlmGateway, type Endpoint } from '../../core/llm/gateway';
import { EndpointLimiter, endpointKey } from '../../core/llm/limiter';
import { EndpointSchema } from '../../core/spec';
import {
  exampleQuestions,
  launch,
  startHarness,
  waitFor,
  writeQuestions,
  writeSpec,
  type Harness,
} from '../support/harness';
import { spawnHarnessWorker, stopProcesses, type WorkerProcess } from '../support/worker-process';

const WORKERS = 3;
const CONCURRENCY = 8;
/** Requests per minute of each endpoint: 5 a second, a burst of 50 (10 s worth) at the start. */
const RPM = 300;
/** The steady-state window, from the first request: after the burst, while demand lasts. */
const WINDOW_START_MS = 6_000;
/** 50 requests at RPM: the bucket lets them through at its rate, so ±1 request is ±2 %. */
const WINDOW_MS = 10_000;
/** Enough questions that the weak model (one guideline each) is still busy when the window ends. */
const QUESTIONS = 320;
const MODELS = ['sim-weak-8b', 'sim-strong'] as const;

const children: ChildProcess[] = [];
let h: Harness;
/**
 * The WORKERS processes, started in beforeAll and awaited by the test that uses them: they spend
 * their seconds of start-up while the Retry-After tests run (which need no worker; they only
 * poll their task queue, where nothing is launched before that test).
 */
let workersStarted: Promise<WorkerProcess[]>;

/** Starts `meteorctl worker` on the harness's task queue; resolves once it polls. */
async function startWorkerProcess(): Promise<WorkerProcess> {
  const worker = await spawnHarnessWorker(h);
  children.push(worker.child);
  return worker;
}

const killWorkers = () => stopProcesses(children, 'SIGKILL');

beforeAll(async () => {
  // Requests take ~250 ms: 8 in flight allow 32 a second, far above RPM, so the burst at the
  // start is bound by concurrency and the steady state by the rate.
  h = await startHarness({ latencyMs: 250, worker: false });
  workersStarted = Promise.all(Array.from({ length: WORKERS }, () => startWorkerProcess()));
  workersStarted.catch(() => undefined); // awaited (and its failure reported) by the test
});

afterAll(async () => {
  await workersStarted?.catch(() => undefined);
  await killWorkers();
  await h?.close();
});

describe('a Retry-After that one process receives', () => {
  const limiters: EndpointLimiter[] = [];
  afterAll(async () => {
    for (const l of limiters) await l.close();
  });

  it.each([
    ['seconds', () => '3', 2_900],
    // An HTTP date has whole seconds: 4 s from now is between 3 and 4 s away.
    ['an HTTP date', () => new Date(Date.now() + 4_000).toUTCString(), 2_900],
  ])('as %s holds back the callers of another process', async (_, retryAfter, minGapMs) => {
    const db = h.clients.db;
    const campaignId = `limits-${randomBytes(4).toString('hex')}`;
    await db
      .insertInto('campaigns')
      .values({
        id: campaignId,
        name: 'limits',
        domain: 'test',
        spec: '{}',
        spec_file: null,
        spec_dir: h.tmp,
        workflow_id: `campaign-${campaignId}`,
        task_queue: h.taskQueue,
      })
      .execute();
    // Two gateways, each with its own limiter: two worker processes sharing only Postgres.
    const gateway = () => {
      const limiter = new EndpointLimiter(db);
      limiters.push(limiter);
      return new LlmGateway(db, {}, null, limiter);
    };
    const [a, b] = [gateway(), gateway()];
    const ep: Endpoint = {
      ...EndpointSchema.parse({ baseURL: h.sim.url, model: 'sim-strong', concurrency: 1, maxAttempts: 4 }),
      role: 'strong',
    };
    const scope = { campaignId, stage: 'distill', iteration: 0 };
    const ask = (text: string) => ({
      purpose: 'limits-test',
      promptVersion: 'v1',
      messages: [{ role: 'user' as const, content: text }],
    });

    h.sim.reset();
    h.sim.setFaults({ faultKinds: ['429'], retryAfter: retryAfter(), failNext: 1 });
    const first = a.chat(scope, ep, ask(`How do I drain a node? ${campaignId}`));
    // A holds the endpoint's only slot once its request is at the server; B then waits for it.
    await waitFor('the first request at the server', async () => h.sim.stats().requests >= 1, 10_000, 10);
    const second = b.chat(scope, ep, ask(`How do I cordon a node? ${campaignId}`));
    const results = await Promise.all([first, second]);
    expect(results.map((r) => r.reused)).toEqual([false, false]);

    const recent = h.sim.stats().recent;
    expect(recent.map((r) => r.status)).toEqual([429, 200, 200]);
    const rejectedAt = Date.parse(recent[0]?.at ?? '');
    const gaps = recent.slice(1).map((r) => Date.parse(r.at) - rejectedAt);
    process.stderr.write(
      `[cluster-limits] Retry-After ${retryAfter()}: later requests after ${gaps.join(', ')} ms\n`,
    );
    // Without the shared block, B would have had the slot the moment A gave it back.
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(minGapMs);
    // Leases given back (a slot kept for the process's next request within its hold time, 2 s).
    const leases = () =>
      db
        .selectFrom('endpoint_leases')
        .select(sql<number>`count(*)::int`.as('n'))
        .where('endpoint', '=', endpointKey(ep.baseURL, ep.model))
        .executeTakeFirstOrThrow();
    await expect.poll(async () => (await leases()).n, { timeout: 10_000, interval: 100 }).toBe(0);
  });
});

describe(`${WORKERS} worker processes on one campaign`, () => {
  it(`keep each endpoint at ≤ ${CONCURRENCY} in flight and ${RPM} requests a minute, at the server`, async () => {
    const base = await exampleQuestions();
    const questions = Array.from({ length: QUESTIONS }, (_, i) => {
      const q = base[i % base.length];
      if (!q) throw new Error('no example questions');
      return { id: `q${i}`, question: `${q.question} (case ${i})`, title: q.title };
    });
    const train = await writeQuestions(h.tmp, 'many.jsonl', questions);
    const limits = { concurrency: CONCURRENCY, requestsPerMinute: RPM };
    const specPath = await writeSpec(h, {
      name: 'cluster-limits',
      questions: { train },
      models: { weak: limits, strong: limits },
      // ~100 questions in progress: demand far above what either limit lets through.
      stages: { distill: { batchSize: 8, parallelBatches: 12 } },
    });

    await workersStarted;
    h.sim.reset();
    await launch(h, specPath);

    // While the load runs: which processes hold leases at once (all of them should take part).
    const keys = MODELS.map((m) => endpointKey(h.sim.url, m));
    let holdersSeen = 0;
    const firstAt = await waitFor(
      'the first chat request',
      async () => {
        const first = h.sim.stats().recent[0];
        return first ? Date.parse(first.at) : undefined;
      },
      60_000,
      100,
    );
    const windowStart = firstAt + WINDOW_START_MS;
    const windowEnd = windowStart + WINDOW_MS;
    // Database load while the workers wait on the limits (every transaction, not only theirs).
    const commits = async () =>
      (
        await sql<{ n: number }>`
          SELECT xact_commit::float8 AS n FROM pg_stat_database WHERE datname = current_database()`.execute(
          h.clients.db,
        )
      ).rows[0]?.n ?? 0;
    const commitsAtStart = await commits();
    const startedAt = Date.now();
    await waitFor(
      'a request after the measurement window',
      async () => {
        const row = await h.clients.db
          .selectFrom('endpoint_leases')
          .select(sql<number>`count(distinct holder)::int`.as('n'))
          .where('endpoint', 'in', keys)
          .executeTakeFirstOrThrow();
        holdersSeen = Math.max(holdersSeen, row.n);
        const last = h.sim.stats().recent.at(-1);
        return last !== undefined && Date.parse(last.at) >= windowEnd;
      },
      WINDOW_START_MS + WINDOW_MS + 60_000,
      200,
    );

    const tps = Math.round(((await commits()) - commitsAtStart) / ((Date.now() - startedAt) / 1000));
    const stats = h.sim.stats();
    const figures = MODELS.map((model) => {
      const inWindow = stats.recent.filter((r) => {
        const at = Date.parse(r.at);
        return r.model === model && at >= windowStart && at < windowEnd;
      }).length;
      return {
        model,
        peak: stats.inFlight[model]?.peak ?? 0,
        rpm: (inWindow * 60_000) / WINDOW_MS,
        requests: stats.byModel[model]?.requests ?? 0,
      };
    });
    process.stderr.write(
      `[cluster-limits] ${WORKERS} workers, concurrency ${CONCURRENCY}, limit ${RPM} rpm; at the server: ` +
        figures
          .map(
            (f) =>
              `${f.model} peak in flight ${f.peak}, ${f.rpm} rpm in steady state (${f.requests} requests)`,
          )
          .join('; ') +
        `; processes holding leases at once: up to ${holdersSeen}; Postgres: ~${tps} commits/s in all\n`,
    );
    expect(holdersSeen).toBeGreaterThanOrEqual(2);
    for (const f of figures) {
      expect(f.peak, f.model).toBeLessThanOrEqual(CONCURRENCY);
      // The burst at the start did fill the slots: the bound was tested, not idle.
      expect(f.peak, f.model).toBeGreaterThanOrEqual(CONCURRENCY - 2);
      expect(f.rpm, f.model).toBeGreaterThanOrEqual(RPM * 0.9);
      expect(f.rpm, f.model).toBeLessThanOrEqual(RPM * 1.1);
    }
    expect(stats.faults).toEqual({});
    await killWorkers();
  });
});
