/**
 * A worker killed with SIGKILL in the middle of Stage 1, then a new one started: the campaign
 * completes with exactly one record per question, and no LLM call is paid for twice beyond the
 * ones that were in flight when the worker died. Real processes throughout: the worker is
 * `meteorctl worker` in a child process, killed the hard way.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { connect, REPO_ROOT, type Clients } from '../../client/connect';
import { launchCampaign } from '../../client/launch';
import { loadSpecFile } from '../../core/spec-file';
import { startSimServer, type SimServer } from '../../infra/sim/server';

const EXAMPLE_DIR = path.join(REPO_ROOT, 'examples', 'kubernetes-ops');
const TRAIN_QUESTIONS = 48;
/** weak concurrency + strong concurrency: the most requests one worker can have in flight. */
const WEAK_CONCURRENCY = 4;
const STRONG_CONCURRENCY = 4;
const IN_FLIGHT_BOUND = WEAK_CONCURRENCY + STRONG_CONCURRENCY;

const taskQueue = `worker-kill-${randomBytes(4).toString('hex')}`;
const children: ChildProcess[] = [];
let tmp: string;
let sim: SimServer;
let clients: Clients;

function serviceEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: inject('databaseUrl'),
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_NAMESPACE: inject('temporalNamespace'),
    METEOR_ARTIFACTS_DIR: path.join(tmp, 'artifacts'),
    METEOR_TASK_QUEUE: taskQueue,
  };
}

interface WorkerProcess {
  child: ChildProcess;
  output: () => string;
}

/** Starts `meteorctl worker` and resolves once it polls its task queue. */
async function startWorkerProcess(): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['bin/meteorctl.cjs', 'worker', '--task-queue', taskQueue], {
    cwd: REPO_ROOT,
    env: serviceEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start within 60 s:\n${out}`)), 60_000);
    const onData = () => {
      if (out.includes('meteor worker on task queue')) {
        clearTimeout(timer);
        child.stderr?.off('data', onData);
        child.off('exit', onExit);
        resolve();
      }
    };
    const onExit = (code: number | null, signal: string | null) => {
      clearTimeout(timer);
      reject(new Error(`worker exited (${code ?? signal}) before it started:\n${out}`));
    };
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
  return { child, output: () => out };
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | null>,
  timeoutMs: number,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

async function countRecords(campaignId: string): Promise<number> {
  const row = await clients.db
    .selectFrom('distill_records')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('campaign_id', '=', campaignId)
    .executeTakeFirstOrThrow();
  return row.n;
}

async function countOkCalls(campaignId: string): Promise<number> {
  const row = await clients.db
    .selectFrom('llm_calls')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('campaign_id', '=', campaignId)
    .where('status', '=', 'ok')
    .executeTakeFirstOrThrow();
  return row.n;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'meteor-worker-kill-'));
  sim = await startSimServer({
    port: 0,
    latencyMs: 250,
    knowledgeFiles: [path.join(EXAMPLE_DIR, 'train.jsonl'), path.join(EXAMPLE_DIR, 'eval.jsonl')],
  });
  clients = await connect({
    databaseUrl: inject('databaseUrl'),
    temporalAddress: inject('temporalAddress'),
    namespace: inject('temporalNamespace'),
    taskQueue,
    uiUrl: null,
  });
});

afterAll(async () => {
  // Kill every worker this file started, whatever happened to the test.
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  await Promise.all(children.map(exited));
  await clients?.close();
  await sim?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('a worker killed with SIGKILL in the middle of Stage 1', () => {
  it('completes on a new worker with one record per question and no LLM call paid twice', async () => {
    // The example campaign, pointed at the simulator, with small concurrency and batches.
    const spec = parse(await readFile(path.join(EXAMPLE_DIR, 'campaign.yaml'), 'utf8')) as {
      name: string;
      questions: { train: string; eval?: string };
      models: Record<string, { baseURL: string; concurrency?: number }>;
      stages: { distill: { batchSize: number } };
      fineTune: { cwd?: string };
    };
    spec.name = 'worker-kill';
    spec.questions.train = path.join(EXAMPLE_DIR, 'train.jsonl');
    spec.questions.eval = path.join(EXAMPLE_DIR, 'eval.jsonl');
    for (const ep of Object.values(spec.models)) ep.baseURL = sim.url;
    (spec.models.weak as { concurrency?: number }).concurrency = WEAK_CONCURRENCY;
    (spec.models.strong as { concurrency?: number }).concurrency = STRONG_CONCURRENCY;
    spec.stages.distill.batchSize = 4;
    spec.fineTune.cwd = REPO_ROOT;
    const specPath = path.join(tmp, 'campaign.yaml');
    await writeFile(specPath, stringify(spec));

    const first = await startWorkerProcess();
    const { campaignId, workflowId } = await launchCampaign(clients, await loadSpecFile(specPath));

    // Mid-stage: some records written, most not.
    const recordsAtKill = await waitFor(
      '15 distill records',
      async () => {
        const n = await countRecords(campaignId);
        return n >= 15 ? n : null;
      },
      60_000,
      50,
    );
    const pid = first.child.pid;
    if (pid === undefined) throw new Error('worker has no pid');
    process.kill(pid, 'SIGKILL');
    await exited(first.child);
    expect(first.child.signalCode).toBe('SIGKILL');
    const servedAtKill = sim.stats().served;
    const okCallsAtKill = await countOkCalls(campaignId);
    expect(recordsAtKill).toBeLessThan(TRAIN_QUESTIONS);
    // What the dead worker was paid for but never logged: at most what it had in flight.
    expect(servedAtKill - okCallsAtKill).toBeLessThanOrEqual(IN_FLIGHT_BOUND);

    const second = await startWorkerProcess();
    // The dead worker's batches come back after their heartbeat timeout (20 s).
    const result = await Promise.race([
      clients.temporal.workflow.getHandle(workflowId).result(),
      new Promise<never>((_, reject) =>
        setTimeout(
          () => reject(new Error(`campaign not done in 90 s; worker output:\n${second.output()}`)),
          90_000,
        ).unref(),
      ),
    ]);
    expect(result.state).toBe('completed');

    const db = clients.db;
    const records = await db
      .selectFrom('distill_records')
      .select([
        sql<number>`count(*)::int`.as('n'),
        sql<number>`count(distinct question_id)::int`.as('distinct'),
      ])
      .where('campaign_id', '=', campaignId)
      .executeTakeFirstOrThrow();
    expect(records).toEqual({ n: TRAIN_QUESTIONS, distinct: TRAIN_QUESTIONS });

    const served = sim.stats().served;
    const okCalls = await countOkCalls(campaignId);
    expect(okCalls).toBeGreaterThanOrEqual(2 * TRAIN_QUESTIONS);
    expect(served).toBeGreaterThanOrEqual(okCalls);
    expect(served - okCalls).toBeLessThanOrEqual(IN_FLIGHT_BOUND);
    // Every call kept in the log was made once: no request hash paid for twice.
    const dupes = await db
      .selectFrom('llm_calls')
      .select(['request_hash', sql<number>`count(*)::int`.as('n')])
      .where('campaign_id', '=', campaignId)
      .where('status', '=', 'ok')
      .groupBy('request_hash')
      .having(sql<number>`count(*)`, '>', 1)
      .execute();
    expect(dupes).toEqual([]);

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
