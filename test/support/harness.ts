/**
 * Shared end-to-end test harness: a simulated model server, an in-process meteor worker on a
 * task queue of its own, and connected clients — against the Postgres and Temporal dev server
 * that test/global-setup.ts starts once per run. Each test file starts one (or a few) harnesses
 * in beforeAll and closes them in afterAll.
 */
import pg from 'pg';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { inject } from 'vitest';
import { parse, stringify } from 'yaml';
import type { ActivityDeps } from '../../activities';
import { connect, type Clients } from '../../client/connect';
import { launchCampaign, type LaunchOptions, type Launched } from '../../client/launch';
import { campaignStatus, type CampaignStatusView } from '../../client/status';
import type { CampaignSpec } from '../../core/spec';
import { loadSpecFile } from '../../core/spec-file';
import { startSimServer, type SimOptions, type SimServer } from '../../infra/sim/server';
import type { FaultKind } from '../../infra/sim/protocol';
import { installDevRuntime } from '../../workers/runtime';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createMeteorWorker, type MeteorWorker } from '../../workers/worker';

export type { Clients } from '../../client/connect';
export type { LaunchOptions, Launched } from '../../client/launch';
export type { CampaignStatusView } from '../../client/status';
export type { SimServer } from '../../infra/sim/server';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const EXAMPLE_DIR = path.join(REPO_ROOT, 'examples', 'kubernetes-ops');
export const EXAMPLE_SPEC = path.join(EXAMPLE_DIR, 'campaign.yaml');
export const EXAMPLE_TRAIN = path.join(EXAMPLE_DIR, 'train.jsonl');
export const EXAMPLE_EVAL = path.join(EXAMPLE_DIR, 'eval.jsonl');

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

export interface HarnessOptions {
  /** Mean latency of the simulator's chat completions (default 0). */
  latencyMs?: number;
  /** Share of chat requests answered with an injected fault (default 0). */
  failRate?: number;
  /** Injected fault kinds (default 429, 500 and timeout). */
  faultKinds?: FaultKind[];
  /** How long a 'timeout' fault holds its request (default 3000 ms). */
  hangMs?: number;
  /** The simulator answers 400 to use_beam_search (a server without beam search; default false). */
  rejectBeamSearch?: boolean;
  /** A position-biased simulated judge: always prefers answer A ('first') or B ('second'). */
  judgeBias?: 'first' | 'second' | null;
  /** Share of malformed structured replies by json_schema name, e.g. { assessment_verdict: 0.5 }. */
  malformedRate?: Partial<Record<string, number>>;
  /** Start an in-process worker on the harness's task queue (default true). */
  worker?: boolean;
  /** Worker shutdown grace (default '5s'). */
  shutdownGraceTime?: string;
  /** The worker's host id (names its host queue; default 'test-host'). */
  hostId?: string;
  /** Fine-tune queues the harness worker serves (default: the harness's own, fineTuneQueueOf). */
  fineTuneQueues?: string[];
  /** Awaited at named points of each fine-tune submit (tests race or crash it there). */
  crashPoint?: ActivityDeps['crashPoint'];
  /** Variables added to the in-process worker's environment (e.g. an S3 endpoint and its keys). */
  workerEnv?: Record<string, string>;
  /** What the simulated strong model knows (default: the first example's questions). */
  knowledgeFiles?: string[];
  /** The simulator wants this key (and echoes a wrong one in its 401s, as OpenAI does). */
  sim?: Pick<SimOptions, 'apiKey' | 'echoKeyIn401'>;
  /** PostgreSQL and Temporal of the test's own (default: the ones global-setup started). */
  services?: Services;
}

/** The fine-tune queue of a harness: its own, so harnesses never take each other's jobs. */
export function fineTuneQueueOf(taskQueue: string): string {
  return `${taskQueue}-gpu`;
}

export interface Harness {
  clients: Clients;
  sim: SimServer;
  taskQueue: string;
  artifactsDir: string;
  /** A scratch folder, removed on close. */
  tmp: string;
  /** The in-process worker, or null (worker: false, or after stopWorker()). */
  worker: MeteorWorker | null;
  /** Starts an in-process worker on the task queue (one at a time). */
  startWorker(): Promise<MeteorWorker>;
  /** Shuts the in-process worker down and waits for it to finish. */
  stopWorker(): Promise<void>;
  /** Workflow ids launched through `launch()`; still-open ones are terminated on close. */
  launched: string[];
  close(): Promise<void>;
}

export interface Services {
  databaseUrl: string;
  temporalAddress: string;
  namespace: string;
}

/** The services global-setup started (also in process.env). */
export function services(): Services {
  return {
    databaseUrl: inject('databaseUrl'),
    temporalAddress: inject('temporalAddress'),
    namespace: inject('temporalNamespace'),
  };
}

let sharedBundle: Promise<WorkflowBundleWithSourceMap> | null = null;
/** The workflow bundle global-setup made for the run (read once per test file). */
function sharedWorkflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  sharedBundle ??= readFile(inject('workflowBundlePath'), 'utf8').then(
    (text) => JSON.parse(text) as WorkflowBundleWithSourceMap,
  );
  return sharedBundle;
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  // Worker runtime logs at WARN and above (METEOR_VERBOSE=1 for all).
  installDevRuntime();
  const svc = opts.services ?? services();
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'meteor-e2e-'));
  const artifactsDir = path.join(tmp, 'artifacts');
  await mkdir(artifactsDir, { recursive: true });
  const taskQueue = `meteor-test-${randomBytes(4).toString('hex')}`;

  const sim = await startSimServer({
    port: 0,
    latencyMs: opts.latencyMs ?? 0,
    failRate: opts.failRate ?? 0,
    ...(opts.faultKinds ? { faultKinds: opts.faultKinds } : {}),
    hangMs: opts.hangMs ?? 3000,
    knowledgeFiles: opts.knowledgeFiles ?? [EXAMPLE_TRAIN, EXAMPLE_EVAL],
    rejectBeamSearch: opts.rejectBeamSearch ?? false,
    judgeBias: opts.judgeBias ?? null,
    ...(opts.malformedRate ? { malformedRate: opts.malformedRate } : {}),
    ...opts.sim,
  });

  let clients: Clients;
  try {
    clients = await connect({
      databaseUrl: svc.databaseUrl,
      temporalAddress: svc.temporalAddress,
      namespace: svc.namespace,
      taskQueue,
      uiUrl: null,
    });
  } catch (err) {
    await sim.close();
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }

  let running: Promise<void> | null = null;
  const h: Harness = {
    clients,
    sim,
    taskQueue,
    artifactsDir,
    tmp,
    worker: null,
    launched: [],
    async startWorker() {
      if (h.worker) throw new Error('harness: a worker is already running');
      const w = await createMeteorWorker({
        workflowBundle: await sharedWorkflowBundle(),
        temporalAddress: svc.temporalAddress,
        namespace: svc.namespace,
        taskQueue,
        fineTuneQueues: opts.fineTuneQueues ?? [fineTuneQueueOf(taskQueue)],
        hostId: opts.hostId ?? 'test-host',
        ...(opts.crashPoint ? { crashPoint: opts.crashPoint } : {}),
        databaseUrl: svc.databaseUrl,
        artifactsDir,
        ...(opts.workerEnv ? { env: { ...process.env, ...opts.workerEnv } } : {}),
        shutdownGraceTime: opts.shutdownGraceTime ?? '5s',
      });
      h.worker = w;
      running = w.run().catch((err: unknown) => {
        process.stderr.write(`[harness] worker on ${taskQueue} stopped with an error: ${String(err)}\n`);
      });
      return w;
    },
    async stopWorker() {
      const w = h.worker;
      if (!w) return;
      w.shutdown();
      await running;
      h.worker = null;
      running = null;
    },
    async close() {
      // Leave nothing running on the shared Temporal server.
      for (const workflowId of h.launched) {
        const handle = clients.temporal.workflow.getHandle(workflowId);
        try {
          const { status } = await handle.describe();
          if (status.name === 'RUNNING') await handle.terminate('test harness closed');
        } catch {
          // already gone
        }
      }
      await sim.close();
      await h.stopWorker().catch(() => undefined);
      await clients.close().catch(() => undefined);
      await rm(tmp, { recursive: true, force: true });
    },
  };

  if (opts.worker !== false) {
    try {
      await h.startWorker();
    } catch (err) {
      await h.close();
      throw err;
    }
  }
  return h;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return (
    typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype
  );
}

/**
 * Deep merge of plain objects: nested objects merge, anything else (arrays included) replaces,
 * and an `undefined` value deletes the key.
 */
export function deepMerge(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    if (value === undefined) delete out[key];
    else if (isPlainObject(value) && isPlainObject(current)) out[key] = deepMerge(current, value);
    else out[key] = value;
  }
  return out;
}

let specCounter = 0;

/**
 * Writes a copy of the example campaign spec into `h.tmp` with every model endpoint pointed at
 * the simulator, question paths absolute, the fine-tune running from the repository root with a
 * short simulated training (METEOR_SIM_TRAIN_SECONDS '0.5', pollInterval '500ms') on the harness's
 * own fine-tune queue, the stages
 * after distill turned off (a test turns on the ones it needs), then
 * `overrides` deep-merged on top. Returns the spec file's path.
 */
export async function writeSpec(
  h: Pick<Harness, 'sim' | 'tmp' | 'taskQueue'>,
  overrides: Record<string, unknown> = {},
  /** The example spec to start from (default this checkout's; an older version's, for upgrades). */
  exampleSpec: string = EXAMPLE_SPEC,
): Promise<string> {
  const example = parse(await readFile(exampleSpec, 'utf8')) as Record<string, unknown>;
  const models = example.models as Record<string, Record<string, unknown>>;
  const pointed: Record<string, unknown> = {};
  for (const [role, ep] of Object.entries(models)) pointed[role] = { ...ep, baseURL: h.sim.url };
  const base = deepMerge(example, {
    questions: { train: EXAMPLE_TRAIN, eval: EXAMPLE_EVAL },
    models: pointed,
    fineTune: {
      cwd: REPO_ROOT,
      env: { METEOR_SIM_TRAIN_SECONDS: '0.5' },
      pollInterval: '500ms',
      queue: fineTuneQueueOf(h.taskQueue),
    },
    // Stage 1 only unless a test turns the later stages on.
    stages: { assess: { enabled: false }, contrast: { enabled: false }, evaluate: { enabled: false } },
  });
  const spec = deepMerge(base, overrides);
  const file = path.join(h.tmp, `campaign-${++specCounter}.yaml`);
  await writeFile(file, stringify(spec));
  return file;
}

/**
 * Writes a JSONL question file `name` in `dir` and returns its path: objects are serialised,
 * strings are written as they are (for malformed lines).
 */
export async function writeQuestions(dir: string, name: string, lines: unknown[]): Promise<string> {
  const file = path.join(dir, name);
  await mkdir(path.dirname(file), { recursive: true });
  const text = lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n');
  await writeFile(file, lines.length > 0 ? `${text}\n` : '');
  return file;
}

export interface ExampleQuestion {
  id: string;
  title?: string;
  question: string;
  reference?: string;
}

/** The example's training questions (the first `n`, or all 48). */
export async function exampleQuestions(n?: number): Promise<ExampleQuestion[]> {
  const text = await readFile(EXAMPLE_TRAIN, 'utf8');
  const all = text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as ExampleQuestion);
  return n === undefined ? all : all.slice(0, n);
}

/** loadSpecFile + launchCampaign; the workflow is terminated on close if still running. */
export async function launch(h: Harness, specPath: string, opts: LaunchOptions = {}): Promise<Launched> {
  const loaded = await loadSpecFile(specPath);
  // No canary unless asked: its calls (stage preflight) would join the call log tests count.
  const launched = await launchCampaign(h.clients, loaded, { canary: false, ...opts });
  h.launched.push(launched.workflowId);
  return launched;
}

/**
 * A campaign row for LLM calls a test makes itself (the call log belongs to a campaign): launched
 * from a spec with `overrides`, its workflow terminated at once, so no worker adds calls of its own.
 */
export async function campaignForCalls(
  h: Harness,
  overrides: Record<string, unknown>,
): Promise<{ campaignId: string; spec: CampaignSpec }> {
  const specPath = await writeSpec(h, overrides);
  const { spec } = await loadSpecFile(specPath);
  const launched = await launch(h, specPath);
  await h.clients.temporal.workflow.getHandle(launched.workflowId).terminate('calls made by the test');
  return { campaignId: launched.campaignId, spec };
}

/** Polls campaignStatus until the campaign is completed, failed or cancelled. */
export async function waitDone(
  h: Harness,
  campaignId: string,
  timeoutMs = 90_000,
): Promise<CampaignStatusView> {
  const deadline = Date.now() + timeoutMs;
  let last: CampaignStatusView | null = null;
  for (;;) {
    last = await campaignStatus(h.clients, campaignId);
    if (TERMINAL.has(last.state)) return last;
    if (Date.now() > deadline) {
      throw new Error(
        `campaign ${campaignId} did not finish within ${timeoutMs} ms; last status: ${JSON.stringify(last)}`,
      );
    }
    await sleep(500);
  }
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node bin/meteorctl.cjs ...args` against the test's Postgres, Temporal and the harness's
 * task queue, as a user would; `unset` names variables to leave out of its environment.
 */
export function meteorctl(
  h: Pick<Harness, 'taskQueue'>,
  args: string[],
  opts: { env?: Record<string, string>; unset?: string[] } = {},
): Promise<CliResult> {
  const svc = services();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: svc.databaseUrl,
    TEMPORAL_ADDRESS: svc.temporalAddress,
    TEMPORAL_NAMESPACE: svc.namespace,
    METEOR_TASK_QUEUE: h.taskQueue,
    ...opts.env,
  };
  for (const name of ['METEOR_DEBUG', ...(opts.unset ?? [])]) delete env[name];
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['bin/meteorctl.cjs', ...args],
      // Reports can be large (one JSON document, or an HTML page with inline charts).
      { cwd: REPO_ROOT, env, timeout: 60_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') {
          reject(new Error(`meteorctl ${args.join(' ')} did not run: ${err.message}\n${stderr}`));
          return;
        }
        resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
      },
    );
  });
}

/** Whether a process (e.g. a local fine-tune's) is still there. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns a value other than undefined/null/false, or throws after timeoutMs. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | null | false>,
  timeoutMs = 30_000,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Rows of a campaign's table, counted (tables keyed by campaign_id). */
export async function countRows(
  h: Pick<Harness, 'clients'>,
  table:
    | 'distill_records'
    | 'llm_calls'
    | 'questions'
    | 'datasets'
    | 'model_versions'
    | 'finetune_jobs'
    | 'stage_runs',
  campaignId: string,
): Promise<number> {
  const row = await h.clients.db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('campaign_id', '=', campaignId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** A campaign's distill records: how many, and for how many distinct questions (one each, if all is well). */
export async function distillRecordCounts(
  h: Pick<Harness, 'clients'>,
  campaignId: string,
): Promise<{ n: number; distinct: number }> {
  return h.clients.db
    .selectFrom('distill_records')
    .select([
      sql<number>`count(*)::int`.as('n'),
      sql<number>`count(distinct question_id)::int`.as('distinct'),
    ])
    .where('campaign_id', '=', campaignId)
    .executeTakeFirstOrThrow();
}

/** The question ids of a campaign's distill records, sorted. */
export async function recordIds(h: Pick<Harness, 'clients'>, campaignId: string): Promise<string[]> {
  const rows = await h.clients.db
    .selectFrom('distill_records')
    .select('question_id')
    .where('campaign_id', '=', campaignId)
    .execute();
  return rows.map((r) => r.question_id).sort();
}

/** One statement on a connection of its own (e.g. `create database` for a test's own database). */
export async function adminQuery(statement: string, url: string = services().databaseUrl): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}
