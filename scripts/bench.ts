/**
 * `npm run bench`: Stage-1 (distill) throughput of one worker, against the model SIMULATOR.
 *
 * Starts its own PostgreSQL and Temporal dev server in a temporary folder on free ports (or uses
 * DATABASE_URL / TEMPORAL_ADDRESS when set), migrates, and for each question count and simulator
 * latency runs a whole campaign of synthetic questions: the simulator and one worker
 * (`meteorctl worker`) each as their own process, so that /proc tells their CPU time apart; the
 * worker's resident memory is sampled every 200 ms. Where the time goes: CPU milliseconds per LLM
 * call of the worker, PostgreSQL, the Temporal server and the model server, between the first and
 * the last record.
 *
 * Throughput is the stage's own: records made per second between the first and the last
 * distill_records.created_at. The bound is what the endpoints' concurrency allows:
 * min(weak, strong concurrency) / latency. Beside it, in the same run and against the same
 * simulator, the same calls made with the bare `openai` client (bench-bare-client.ts), and the
 * ratio of the two; then once more with the bare client on the gateway's HTTP transport
 * (core/llm/http-transport.ts), so the ratio without that transport's own saving is known too.
 * Each run asks its own questions — same shape, other texts — because the simulator caches its
 * lookup by question text and would serve a repeat more cheaply. Results: a table on stdout and
 * bench-results/bench-<date>.json.
 *
 * Env: METEOR_BENCH_QUESTIONS (default 1000; a list such as "10000,100000" runs each and reports
 * how throughput scales), METEOR_BENCH_LATENCIES (default "1000,50", in ms),
 * METEOR_BENCH_CONCURRENCY (per endpoint, default 32), METEOR_BENCH_BARE=0 (skip the bare client),
 * METEOR_BENCH_BATCH_SIZE and METEOR_BENCH_PARALLEL_BATCHES (default: the product's own choice),
 * METEOR_BENCH_WORKER_NODE_ARGS
 * (node flags for the worker, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile it),
 * METEOR_BENCH_SIM_NODE_ARGS (the same for the simulator),
 * METEOR_BENCH_WARMUP (questions of each warm-up round, default 2000; 0 skips it).
 *
 * Both sides are measured warm: before the measured campaign the same worker runs a warm-up
 * campaign of other questions, and before the measured bare-client run the client does a warm-up
 * round. Without it the comparison is skewed by the order: V8 compiles the simulator's and the
 * worker's hot code during the first few hundred calls, so whichever side ran first paid the
 * simulator's warm-up (about twice the CPU per call) — and a campaign of 10⁵ questions is warm
 * for all but its first minute. The warm-ups run with the simulator answering at once (its
 * latency set to 0 meanwhile): V8 optimises code after so many calls, not after so much time.
 * After 500 questions the worker was still compiling some 50 functions a second through the
 * measured run (V8's --log-code); after 2,000, a third fewer. The simulator has then answered
 * 4,000 warm-up calls before the first side is measured, so neither side pays its warm-up.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, readdirSync, readFileSync, rmSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { sql } from 'kysely';
import { stringify } from 'yaml';
import { connect, REPO_ROOT, type Clients, type Services } from '../client/connect';
import { launchCampaign } from '../client/launch';
import { migrateToLatest } from '../core/db/migrate';
import type { Db } from '../core/db/connection';
import type { CampaignSpecInput } from '../core/spec';
import { DistillStageSchema } from '../stages/distill/options';
import { loadSpecFile } from '../core/spec-file';
import { paidTwice } from '../infra/sim/request-hashes';
import type { SimStats } from '../infra/sim/stats';
import { runBareClient, type BareClientResult, type BareClientRun } from './bench-bare-client';
import { createHttpTransport } from '../core/llm/http-transport';
import { startLocalStack } from '../infra/stack/local-stack';
import { isProcessAlive, processCommandLine, waitForProcessExit } from '../infra/stack/pids';
import { findFreePort } from '../infra/stack/ports';
import { onShutdown, shutdown } from '../infra/stack/processes';
import type { StageInput } from '../workflows/types';

const QUESTION_COUNTS = positiveIntListEnv('METEOR_BENCH_QUESTIONS', [1000]);
const LATENCIES_MS = (process.env.METEOR_BENCH_LATENCIES ?? '1000,50')
  .split(',')
  .map((s) => Number(s.trim()))
  .filter((n) => Number.isFinite(n) && n > 0);
/** Extra node flags for the worker process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof". */
const WORKER_NODE_ARGS = (process.env.METEOR_BENCH_WORKER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
/** The same for the simulator's process (METEOR_BENCH_SIM_NODE_ARGS). */
const SIM_NODE_ARGS = (process.env.METEOR_BENCH_SIM_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
const WEAK_CONCURRENCY = positiveIntEnv('METEOR_BENCH_CONCURRENCY', 32);
const STRONG_CONCURRENCY = WEAK_CONCURRENCY;
const RUN_BARE_CLIENT = process.env.METEOR_BENCH_BARE !== '0';
const WARMUP_QUESTIONS = nonNegativeIntEnv('METEOR_BENCH_WARMUP', 2000);
/** Unset: the product's default. */
const BATCH_SIZE = positiveIntEnv('METEOR_BENCH_BATCH_SIZE', DistillStageSchema.parse(undefined).batchSize);
const TRAIN_SECONDS = '1';
/** Unset: the product's default (four times the busiest endpoint's concurrency in questions, plus two batches). */
const PARALLEL_BATCHES = process.env.METEOR_BENCH_PARALLEL_BATCHES
  ? positiveIntEnv('METEOR_BENCH_PARALLEL_BATCHES', 1)
  : undefined;
/** One scenario (launch → campaign completed, fine-tune included) may take this long, plus 50 ms a question. */
const SCENARIO_TIMEOUT_MS = 150_000;
const SCENARIO_TIMEOUT_PER_QUESTION_MS = 50;
const WORKER_READY_TIMEOUT_MS = 120_000;
const WORKER_READY_LINE = 'meteor worker on task queue';
const SAMPLE_EVERY_MS = 200;
/** The question label of each run (see syntheticQuestions); the measured two of one length. */
const QUESTION_LABELS = {
  platform: 'Synthetic question',
  bare: 'Yardstick question',
  transport: 'Transport question',
  platformWarmUp: 'Warm-up question',
  bareWarmUp: 'Warm-up yardstick question',
  transportWarmUp: 'Warm-up transport question',
} as const;
const KNOWLEDGE_FILES = ['train.jsonl', 'eval.jsonl'].map((f) =>
  path.join(REPO_ROOT, 'examples', 'kubernetes-ops', f),
);

const TOPICS = [
  'a pod stuck in CrashLoopBackOff after a config change',
  'a Deployment whose rollout never finishes',
  'a node reporting DiskPressure',
  'a Service that returns connection refused',
  'an Ingress answering 502 for one path',
  'a PersistentVolumeClaim stuck in Pending',
  'a CronJob that silently stopped running',
  'a HorizontalPodAutoscaler that does not scale',
  'DNS lookups timing out inside the cluster',
  'a container killed with OOMKilled',
];

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

// ---------------------------------------------------------------------------------------------
// Memory sampling from /proc (Linux); every figure is null elsewhere.

/** A field of /proc/<pid>/status in KiB (VmRSS, VmHWM), or null when unreadable. */
function statusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
    return m?.[1] ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

interface ProcInfo {
  ppid: number;
  comm: string;
  /** utime + stime, and those of its exited children, in clock ticks. */
  cpuTicks: number;
}

/** Every process on the machine, from /proc/<pid>/stat (empty where there is no /proc). */
function processTable(): Map<number, ProcInfo> {
  const table = new Map<number, ProcInfo>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return table;
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so cut at the last ')'.
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      // After comm: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14). A child's time
      // moves to its parent's cutime/cstime when it exits (Postgres backends of closed connections).
      table.set(Number(name), {
        ppid: Number(fields[1]),
        comm,
        cpuTicks: Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]),
      });
    } catch {
      // The process ended while we looked.
    }
  }
  return table;
}

/** Every descendant of `root` (children, grandchildren, ...) in `table`. */
function descendantsOf(root: number, table: Map<number, ProcInfo>): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, info] of table) {
    const list = children.get(info.ppid) ?? [];
    list.push(pid);
    children.set(info.ppid, list);
  }
  const out: number[] = [];
  const queue = [root];
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    for (const child of children.get(pid) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

/** Busy and total jiffies of the whole machine (all CPUs), from /proc/stat. */
function machineTicks(): { busy: number; total: number } | null {
  try {
    const first = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const v = first.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

const CPU_GROUPS = ['worker', 'postgres', 'temporal', 'modelServer', 'bench'] as const;
type CpuGroup = (typeof CPU_GROUPS)[number];
/** Linux's USER_HZ: /proc reports CPU time in 1/100 s. */
const TICKS_PER_SECOND = 100;

interface CpuSample {
  t: number;
  machine: { busy: number; total: number } | null;
  groups: Record<CpuGroup, number>;
}

/** Cores in use, by group, between two instants (the nearest samples inside the window). */
interface CpuUse {
  windowS: number;
  machineBusyPercent: number | null;
  coresUsed: Record<CpuGroup | 'otherProcesses', number> | null;
  /** CPU milliseconds of each group in the window. */
  cpuMs: Record<CpuGroup, number>;
}

/**
 * Samples every 200 ms: the worker's resident memory (and its children's), and the CPU time of
 * this benchmark's processes by group — the worker (and its children), Postgres, Temporal, the
 * model server (the simulator's process) and this process — plus the machine's, to tell a
 * saturated machine apart.
 */
class Sampler {
  peakWorkerKiB: number | null = null;
  peakTreeKiB: number | null = null;
  samples = 0;
  /** Descendants seen (pid → command line), so cleanup can stop what the worker left behind. */
  readonly seen = new Map<number, string>();
  private readonly cpu: CpuSample[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly pid: number,
    private readonly modelServerPid: number,
  ) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), SAMPLE_EVERY_MS);
  }

  sample(): void {
    const t = Date.now();
    const table = processTable();
    const own = statusKiB(this.pid, 'VmRSS');
    if (own === null) return;
    const workerTree = new Set([this.pid, ...descendantsOf(this.pid, table)]);
    let tree = 0;
    for (const pid of workerTree) {
      tree += pid === this.pid ? own : (statusKiB(pid, 'VmRSS') ?? 0);
      if (pid !== this.pid && !this.seen.has(pid)) this.seen.set(pid, processCommandLine(pid) ?? '');
    }
    this.samples++;
    this.peakWorkerKiB = Math.max(this.peakWorkerKiB ?? 0, own);
    this.peakTreeKiB = Math.max(this.peakTreeKiB ?? 0, tree);

    const groups: Record<CpuGroup, number> = {
      worker: 0,
      postgres: 0,
      temporal: 0,
      modelServer: 0,
      bench: 0,
    };
    const modelServer = new Set([this.modelServerPid, ...descendantsOf(this.modelServerPid, table)]);
    for (const pid of [process.pid, ...descendantsOf(process.pid, table)]) {
      const info = table.get(pid);
      if (!info) continue;
      const group: CpuGroup = workerTree.has(pid)
        ? 'worker'
        : modelServer.has(pid)
          ? 'modelServer'
          : info.comm.startsWith('postgres')
            ? 'postgres'
            : info.comm.startsWith('temporal')
              ? 'temporal'
              : 'bench';
      groups[group] += info.cpuTicks;
    }
    this.cpu.push({ t, machine: machineTicks(), groups });
  }

  /** CPU use between `from` and `to` (ms since the epoch); null without two samples inside. */
  cpuUse(from: number, to: number): CpuUse | null {
    const inside = this.cpu.filter((s) => s.t >= from && s.t <= to);
    const a = inside[0];
    const b = inside.at(-1);
    if (!a || !b || b.t - a.t < 500) return null;
    const seconds = (b.t - a.t) / 1000;
    const cores = (ticks: number) => round(ticks / TICKS_PER_SECOND / seconds, 2);
    const used = Object.fromEntries(CPU_GROUPS.map((g) => [g, cores(b.groups[g] - a.groups[g])])) as Record<
      CpuGroup,
      number
    >;
    let machineBusyPercent: number | null = null;
    let other = 0;
    if (a.machine && b.machine && b.machine.total > a.machine.total) {
      const busyShare = (b.machine.busy - a.machine.busy) / (b.machine.total - a.machine.total);
      machineBusyPercent = round(busyShare * 100, 1);
      const ours = CPU_GROUPS.reduce((sum, g) => sum + used[g], 0);
      other = round(Math.max(0, busyShare * os.cpus().length - ours), 2);
    }
    const cpuMs = Object.fromEntries(
      CPU_GROUPS.map((g) => [g, ((b.groups[g] - a.groups[g]) / TICKS_PER_SECOND) * 1000]),
    ) as Record<CpuGroup, number>;
    return {
      windowS: round(seconds, 2),
      machineBusyPercent,
      coresUsed: { ...used, otherProcesses: other },
      cpuMs,
    };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

// ---------------------------------------------------------------------------------------------
// The worker process.

interface WorkerProcess {
  pid: number;
  logFile: string;
  sampler: Sampler;
  /** Resident memory once the worker is ready, before any campaign: its baseline. */
  rssAtReadyKiB: number | null;
  alive(): boolean;
  exitInfo(): string | null;
  /** The kernel's own peak RSS of the worker (VmHWM), read while it still runs. */
  hwmKiB(): number | null;
  stop(): Promise<void>;
}

async function startWorkerProcess(opts: {
  /** The model server's process, sampled as its own CPU group. */
  modelServerPid: number;
  services: Services;
  taskQueue: string;
  artifactsDir: string;
  logFile: string;
}): Promise<WorkerProcess> {
  const out = createWriteStream(opts.logFile);
  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...WORKER_NODE_ARGS,
      path.join(REPO_ROOT, 'bin', 'meteorctl.cjs'),
      'worker',
      '--task-queue',
      opts.taskQueue,
      '--queues',
      `${opts.taskQueue},${opts.taskQueue}-gpu`,
    ],
    {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        DATABASE_URL: opts.services.databaseUrl,
        TEMPORAL_ADDRESS: opts.services.temporalAddress,
        TEMPORAL_NAMESPACE: opts.services.namespace,
        METEOR_TASK_QUEUE: opts.taskQueue,
        METEOR_ARTIFACTS_DIR: opts.artifactsDir,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start the worker process');

  let exitInfo: string | null = null;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = signal ? `signal ${signal}` : `code ${code}`;
      resolve();
    });
    child.once('error', (err) => {
      exitInfo = `could not run: ${err.message}`;
      resolve();
    });
  });
  let seenOutput = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  const watch = (chunk: Buffer) => {
    out.write(chunk);
    if (seenOutput.length < 64_000) {
      seenOutput += chunk.toString('utf8');
      if (seenOutput.includes(WORKER_READY_LINE)) onReady();
    }
  };
  child.stdout?.on('data', watch);
  child.stderr?.on('data', watch);

  const sampler = new Sampler(pid, opts.modelServerPid);
  sampler.start();

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      sampler.sample();
      sampler.stop();
      if (exitInfo === null) {
        child.kill('SIGTERM');
        if (!(await waitForProcessExit(pid, 20_000))) child.kill('SIGKILL');
        await Promise.race([exited, sleep(5_000)]);
      }
      // A fine-tune job runs detached from the worker; stop any the worker left behind.
      for (const [descendant, cmdline] of sampler.seen) {
        if (isProcessAlive(descendant) && processCommandLine(descendant) === cmdline) {
          try {
            process.kill(descendant, 'SIGTERM');
          } catch {
            // Gone meanwhile.
          }
        }
      }
      await new Promise<void>((resolve) => out.end(resolve));
    })());
  const unregister = onShutdown(stop, {
    name: `worker ${opts.taskQueue}`,
    killNow: () => {
      if (exitInfo === null) child.kill('SIGKILL');
    },
  });

  const handle: WorkerProcess = {
    pid,
    logFile: opts.logFile,
    sampler,
    rssAtReadyKiB: null,
    alive: () => exitInfo === null,
    exitInfo: () => exitInfo,
    hwmKiB: () => statusKiB(pid, 'VmHWM'),
    stop: async () => {
      unregister();
      await stop();
    },
  };

  const timedOut = Symbol('timeout');
  const outcome = await Promise.race([ready, exited, sleep(WORKER_READY_TIMEOUT_MS).then(() => timedOut)]);
  if (outcome === timedOut || exitInfo !== null) {
    const why =
      exitInfo !== null ? `exited (${exitInfo})` : `not ready after ${WORKER_READY_TIMEOUT_MS / 1000} s`;
    await handle.stop();
    throw new Error(`worker ${why}; its output:\n${await tail(opts.logFile)}`);
  }
  // Let start-up garbage settle a moment, then take the baseline.
  await sleep(1_000);
  handle.rssAtReadyKiB = statusKiB(pid, 'VmRSS');
  return handle;
}

// ---------------------------------------------------------------------------------------------
// One scenario.

interface HistoryCount {
  events: number;
  runs: number;
  /** The most events of one run (continue-as-new keeps each run's history bounded). */
  maxEventsPerRun: number;
}

interface ScenarioResult {
  latencyMs: number;
  questions: number;
  records: number;
  weakConcurrency: number;
  strongConcurrency: number;
  batchSize: number;
  parallelBatches: number | null;
  /** Launch call → stage_runs.finished_at (preflight, question import and export included). */
  stageWallS: number;
  /** stage_runs.started_at → finished_at. */
  stageRunS: number;
  /** First → last distill_records.created_at. */
  recordsSpanS: number;
  throughputQps: number;
  boundQps: number;
  ratioToBound: number;
  boundNote: string;
  /** Launch → campaign completed (fine-tune and deploy included). */
  campaignWallS: number;
  llmCalls: {
    distillOk: number;
    distillErrors: number;
    allStages: number;
    simulatorRequests: number;
    /** Of those, answered 200 (a request answered without a logged row would show here). */
    simulatorServed: number;
    /** Identical requests the simulator answered 200 more than once, and the answers beyond the first: paid twice. */
    simulatorPaidTwice: { requests: number; extraAnswers: number };
    /** Latency the worker saw (llm_calls.latency_ms of the distill calls): simulated + overhead. */
    latencyMsP50: number;
    latencyMsP95: number;
  };
  workerRssMiB: {
    atReady: number | null;
    peak: number | null;
    peakWithChildren: number | null;
    vmHwm: number | null;
    samples: number;
  };
  distillHistory: HistoryCount & { eventsPer1000Questions: number };
  campaignHistory: HistoryCount;
  /** CPU between the first and the last record: is the machine saturated, and by whom? */
  cpuDuringRecords: CpuUse | null;
  /** CPU milliseconds per distill LLM call made between the first and the last record, by process. */
  cpuMsPerCall: Record<CpuGroup, number> | null;
  /** PostgreSQL's database size grown during the scenario, per question. */
  postgresBytesPerQuestion: number;
  /** The same calls with the bare `openai` client against the same simulator, right after (null: skipped). */
  bareClient:
    | (BareClientResult & {
        cpuMsPerCall: Record<'client' | 'modelServer', number> | null;
        /** Cores the platform's processes used meanwhile, with no campaign running: their idle cost. */
        platformIdleCores: Record<'worker' | 'postgres' | 'temporal', number> | null;
      })
    | null;
  /** throughputQps / bareClient.throughputQps (issue 9's goal: ≥ 0.8 at 50 ms, ≥ 0.95 at 1 s). */
  ratioToBareClient: number | null;
  /**
   * Like for like: the bare client again, on the gateway's HTTP transport instead of the global
   * fetch, so that the ratio without the transport's own saving is on record too.
   */
  bareClientSameTransport: { throughputQps: number; ratio: number } | null;
}

async function runScenario(
  root: string,
  services: Services,
  questions: number,
  latencyMs: number,
): Promise<ScenarioResult> {
  const dir = path.join(root, `scenario-${questions}q-${latencyMs}ms`);
  await mkdir(dir, { recursive: true });
  await writeQuestions(
    path.join(dir, 'train.jsonl'),
    syntheticQuestions(questions, QUESTION_LABELS.platform),
  );

  const sim = await startSimProcess(latencyMs, path.join(dir, 'simulator.log'));
  try {
    const taskQueue = `bench-${randomBytes(4).toString('hex')}`;
    const specFile = path.join(dir, 'campaign.yaml');
    await writeFile(specFile, stringify(benchSpec(sim.url, questions, latencyMs, `${taskQueue}-gpu`)));
    const loaded = await loadSpecFile(specFile);

    log(`${latencyMs} ms: starting a worker on task queue ${taskQueue}`);
    const worker = await startWorkerProcess({
      modelServerPid: sim.pid,
      services,
      taskQueue,
      artifactsDir: path.join(dir, 'artifacts'),
      logFile: path.join(dir, 'worker.log'),
    });
    let vmHwm: number | null = null;
    try {
      const clients = await connect({ ...services, taskQueue });
      try {
        if (WARMUP_QUESTIONS > 0) {
          await atFullSpeed(sim, latencyMs, () =>
            warmUpWorker(clients, path.join(dir, 'warm-up'), sim.url, latencyMs, taskQueue, worker),
          );
        }
        const dbBytesBefore = await databaseBytes(clients.db);
        const launchedAt = Date.now();
        // No canary: its requests are the same at every launch against this simulator, so they would
        // count as paid twice; and they are not the stage being measured.
        const { campaignId, workflowId } = await launchCampaign(clients, loaded, { canary: false });
        log(`${latencyMs} ms: launched ${campaignId} with ${questions} questions`);
        await waitForCampaign(clients.db, campaignId, worker, questions, latencyMs);
        const campaignWallS = (Date.now() - launchedAt) / 1000;
        vmHwm = worker.hwmKiB();
        const platform = await collect(clients, sim, {
          campaignId,
          workflowId,
          questions,
          latencyMs,
          launchedAt,
          campaignWallS,
          worker,
          vmHwm,
          dbBytesBefore,
        });
        if (!RUN_BARE_CLIENT) {
          return { ...platform, bareClient: null, ratioToBareClient: null, bareClientSameTransport: null };
        }
        const spec = benchSpec(sim.url, questions, latencyMs, `${taskQueue}-gpu`);
        const bareRun = {
          baseURL: sim.url,
          weakModel: spec.models.weak.model,
          strongModel: spec.models.strong.model,
          domain: spec.domain,
          weakConcurrency: WEAK_CONCURRENCY,
          strongConcurrency: STRONG_CONCURRENCY,
        };
        log(`${latencyMs} ms: the same calls with the bare openai client`);
        const bare = await measureBareClient(sim, worker, bareRun, questions, latencyMs, 'bare');
        log(`${latencyMs} ms: again, the bare client on the gateway's HTTP transport`);
        const transport = createHttpTransport();
        const sameTransport = await measureBareClient(
          sim,
          worker,
          { ...bareRun, fetch: transport.fetch },
          questions,
          latencyMs,
          'transport',
        );
        transport.close();
        const ratio = (yardstick: BareClientResult) =>
          yardstick.throughputQps > 0 ? round(platform.throughputQps / yardstick.throughputQps, 2) : 0;
        return {
          ...platform,
          bareClient: bare,
          ratioToBareClient: ratio(bare),
          bareClientSameTransport: {
            throughputQps: sameTransport.throughputQps,
            ratio: ratio(sameTransport),
          },
        };
      } finally {
        await clients.close();
      }
    } catch (err) {
      log(`${latencyMs} ms: failed; worker output (${worker.logFile}):\n${await tail(worker.logFile)}`);
      throw err;
    } finally {
      await worker.stop();
    }
  } finally {
    await sim.close();
  }
}

type MeasuredBareClient = NonNullable<ScenarioResult['bareClient']>;

/**
 * Runs a warm-up with the simulator answering at once, then gives it back its latency: the
 * warm-up exists to run the hot code often enough for V8 to optimise it, which takes calls, not
 * time — so it is as long at 1 s latency as at 50 ms, and short at both.
 */
async function atFullSpeed<T>(sim: SimProcess, latencyMs: number, warmUp: () => Promise<T>): Promise<T> {
  await sim.setLatency(0);
  try {
    return await warmUp();
  } finally {
    await sim.setLatency(latencyMs);
  }
}

/** A warm-up round, then the measured one, with the CPU per call of the client and the simulator. */
async function measureBareClient(
  sim: SimProcess,
  worker: WorkerProcess,
  run: Omit<BareClientRun, 'questions'>,
  questions: number,
  latencyMs: number,
  side: 'bare' | 'transport',
): Promise<MeasuredBareClient> {
  if (WARMUP_QUESTIONS > 0) {
    await atFullSpeed(sim, latencyMs, () =>
      runBareClient({
        ...run,
        questions: syntheticQuestions(WARMUP_QUESTIONS, QUESTION_LABELS[`${side}WarmUp`]),
      }),
    );
  }
  const before = {
    t: Date.now(),
    cpu: processCpuMs([process.pid, sim.pid]),
    requests: (await sim.stats()).requests,
  };
  const bare = await runBareClient({
    ...run,
    questions: syntheticQuestions(questions, QUESTION_LABELS[side]),
  });
  const after = { cpu: processCpuMs([process.pid, sim.pid]), requests: (await sim.stats()).requests };
  const bareCalls = after.requests - before.requests;
  const perCall = (pid: number) => {
    const a = before.cpu.get(pid);
    const b = after.cpu.get(pid);
    return a === undefined || b === undefined || bareCalls <= 0 ? null : round((b - a) / bareCalls, 3);
  };
  const client = perCall(process.pid);
  const modelServer = perCall(sim.pid);
  worker.sampler.sample();
  const idle = worker.sampler.cpuUse(before.t, Date.now())?.coresUsed ?? null;
  return {
    ...bare,
    cpuMsPerCall: client === null || modelServer === null ? null : { client, modelServer },
    platformIdleCores: idle && { worker: idle.worker, postgres: idle.postgres, temporal: idle.temporal },
  };
}

// ---------------------------------------------------------------------------------------------
// The model server: the simulator in its own process, so that its CPU time is its own.

interface SimProcess {
  url: string;
  pid: number;
  stats(): Promise<SimStats>;
  /** The latency of every reply from now on (the simulator's /sim/faults). */
  setLatency(ms: number): Promise<void>;
  close(): Promise<void>;
}

async function startSimProcess(latencyMs: number, logFile: string): Promise<SimProcess> {
  const port = await findFreePort();
  const out = createWriteStream(logFile);
  const child = spawn(
    process.execPath,
    [
      ...SIM_NODE_ARGS,
      '--import',
      'tsx',
      path.join(REPO_ROOT, 'infra', 'sim', 'main.ts'),
      '--port',
      String(port),
      '--latency-ms',
      String(latencyMs),
      '--knowledge',
      KNOWLEDGE_FILES.join(','),
    ],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start the model simulator');
  let exited = false;
  child.once('exit', () => (exited = true));
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      if (!(await waitForProcessExit(pid, 10_000))) child.kill('SIGKILL');
    }
  };
  const unregister = onShutdown(stop, {
    name: 'model simulator',
    killNow: () => {
      if (!exited) child.kill('SIGKILL');
    },
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) throw new Error(`the model simulator exited; its output:\n${await tail(logFile)}`);
    const up = await fetch(`${base}/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline) {
      unregister();
      await stop();
      throw new Error(`the model simulator did not answer on ${base} within 60 s`);
    }
    await sleep(100);
  }
  return {
    url: `${base}/v1`,
    pid,
    stats: async () => (await (await fetch(`${base}/sim/stats`)).json()) as SimStats,
    setLatency: async (ms) => {
      const res = await fetch(`${base}/sim/faults`, {
        method: 'POST',
        body: JSON.stringify({ latencyMs: ms }),
      });
      if (!res.ok)
        throw new Error(`the simulator refused latency ${ms} ms: ${res.status} ${await res.text()}`);
    },
    close: async () => {
      unregister();
      await stop();
    },
  };
}

/** CPU time (user + system) of processes, in milliseconds, from /proc (absent where unreadable). */
function processCpuMs(pids: number[]): Map<number, number> {
  const table = processTable();
  const out = new Map<number, number>();
  for (const pid of pids) {
    const info = table.get(pid);
    if (info) out.set(pid, (info.cpuTicks / TICKS_PER_SECOND) * 1000);
  }
  return out;
}

async function databaseBytes(db: Db): Promise<number> {
  const { rows } = await sql<{ n: string }>`select pg_database_size(current_database())::text as n`.execute(
    db,
  );
  return Number(rows[0]?.n ?? 0);
}

/**
 * A campaign of WARMUP_QUESTIONS other questions on the same worker and simulator, so that the
 * measured campaign meets warm code (see the module comment). Its own spec name and questions:
 * none of its calls can be reused by the measured campaign.
 */
async function warmUpWorker(
  clients: Clients,
  dir: string,
  simUrl: string,
  latencyMs: number,
  taskQueue: string,
  worker: WorkerProcess,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeQuestions(
    path.join(dir, 'train.jsonl'),
    syntheticQuestions(WARMUP_QUESTIONS, QUESTION_LABELS.platformWarmUp),
  );
  const spec = benchSpec(simUrl, WARMUP_QUESTIONS, latencyMs, `${taskQueue}-gpu`);
  const specFile = path.join(dir, 'campaign.yaml');
  await writeFile(specFile, stringify({ ...spec, name: `${spec.name}-warm-up` }));
  const { campaignId } = await launchCampaign(clients, await loadSpecFile(specFile), { canary: false });
  log(`${latencyMs} ms: warm-up campaign ${campaignId}, ${WARMUP_QUESTIONS} questions`);
  await waitForCampaign(clients.db, campaignId, worker, WARMUP_QUESTIONS, latencyMs);
}

async function waitForCampaign(
  db: Db,
  campaignId: string,
  worker: WorkerProcess,
  questions: number,
  latencyMs: number,
): Promise<void> {
  const timeoutMs = SCENARIO_TIMEOUT_MS + questions * SCENARIO_TIMEOUT_PER_QUESTION_MS;
  const deadline = Date.now() + timeoutMs;
  let lastReport = Date.now();
  for (;;) {
    const row = await db
      .selectFrom('campaigns')
      .select(['state', 'error'])
      .where('id', '=', campaignId)
      .executeTakeFirstOrThrow();
    if (row.state === 'completed') return;
    if (row.state === 'failed' || row.state === 'cancelled') {
      throw new Error(`campaign ${campaignId} ${row.state}: ${row.error ?? '(no error recorded)'}`);
    }
    if (!worker.alive())
      throw new Error(`the worker exited (${worker.exitInfo() ?? '?'}) during the campaign`);
    if (Date.now() > deadline) {
      throw new Error(`campaign ${campaignId} not done after ${timeoutMs / 1000} s (state ${row.state})`);
    }
    if (Date.now() - lastReport >= 5_000) {
      lastReport = Date.now();
      const { n } = await db
        .selectFrom('distill_records')
        .select(sql<number>`count(*)::int`.as('n'))
        .where('campaign_id', '=', campaignId)
        .executeTakeFirstOrThrow();
      const rss = worker.sampler.peakWorkerKiB;
      log(`${latencyMs} ms: ${n}/${questions} records, worker peak RSS ${rss === null ? '?' : mib(rss)} MiB`);
    }
    await sleep(500);
  }
}

async function collect(
  clients: Clients,
  sim: SimProcess,
  run: {
    campaignId: string;
    workflowId: string;
    questions: number;
    latencyMs: number;
    dbBytesBefore: number;
    launchedAt: number;
    campaignWallS: number;
    worker: WorkerProcess;
    vmHwm: number | null;
  },
): Promise<Omit<ScenarioResult, 'bareClient' | 'ratioToBareClient' | 'bareClientSameTransport'>> {
  const { db, temporal } = clients;
  const { campaignId, latencyMs } = run;
  const records = await db
    .selectFrom('distill_records')
    .select([
      sql<number>`count(*)::int`.as('n'),
      sql<Date>`min(created_at)`.as('first'),
      sql<Date>`max(created_at)`.as('last'),
    ])
    .where('campaign_id', '=', campaignId)
    .where('iteration', '=', 1)
    .executeTakeFirstOrThrow();
  const stage = await db
    .selectFrom('stage_runs')
    .select(['started_at', 'finished_at', 'total'])
    .where('campaign_id', '=', campaignId)
    .where('stage', '=', 'distill')
    .where('iteration', '=', 1)
    .executeTakeFirstOrThrow();
  const calls = await db
    .selectFrom('llm_calls')
    .select([
      sql<number>`count(*) filter (where stage = 'distill' and status = 'ok')::int`.as('ok'),
      sql<number>`count(*) filter (where stage = 'distill' and status = 'error')::int`.as('errors'),
      sql<number>`count(*)::int`.as('all'),
      sql<number>`coalesce(percentile_cont(0.5) within group (order by latency_ms) filter (where stage = 'distill'), 0)::float8`.as(
        'p50',
      ),
      sql<number>`coalesce(percentile_cont(0.95) within group (order by latency_ms) filter (where stage = 'distill'), 0)::float8`.as(
        'p95',
      ),
    ])
    .where('campaign_id', '=', campaignId)
    .executeTakeFirstOrThrow();
  if (!stage.finished_at) throw new Error(`stage run of ${campaignId} has no finished_at`);

  const distillId = `${run.workflowId}-distill-1`;
  const distill = await historyOf(temporal, distillId);
  const campaign = await historyOf(temporal, run.workflowId);

  const spanS = (new Date(records.last).getTime() - new Date(records.first).getTime()) / 1000;
  const throughputQps = records.n > 1 && spanS > 0 ? (records.n - 1) / spanS : 0;
  const boundQps = Math.min(WEAK_CONCURRENCY, STRONG_CONCURRENCY) / (latencyMs / 1000);
  const finished = new Date(stage.finished_at).getTime();
  const started = new Date(stage.started_at).getTime();
  const simStats = await sim.stats();
  const twice = paidTwice(simStats.requestCounts);
  const { sampler } = run.worker;
  const cpuDuringRecords = sampler.cpuUse(
    new Date(records.first).getTime(),
    new Date(records.last).getTime(),
  );
  // The distill calls answered in the same window as the CPU figures.
  const inWindow = await db
    .selectFrom('llm_calls')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('campaign_id', '=', campaignId)
    .where('stage', '=', 'distill')
    .where('created_at', '>=', new Date(records.first))
    .where('created_at', '<=', new Date(records.last))
    .executeTakeFirstOrThrow();
  const cpuMsPerCall =
    cpuDuringRecords && inWindow.n > 0
      ? (Object.fromEntries(
          CPU_GROUPS.map((g) => [g, round(cpuDuringRecords.cpuMs[g] / inWindow.n, 3)]),
        ) as Record<CpuGroup, number>)
      : null;
  const dbBytesAfter = await databaseBytes(db);
  return {
    latencyMs,
    questions: stage.total,
    records: records.n,
    weakConcurrency: WEAK_CONCURRENCY,
    strongConcurrency: STRONG_CONCURRENCY,
    batchSize: BATCH_SIZE,
    parallelBatches: distill.input?.parallelBatches ?? null,
    stageWallS: round((finished - run.launchedAt) / 1000, 2),
    stageRunS: round((finished - started) / 1000, 2),
    recordsSpanS: round(spanS, 2),
    throughputQps: round(throughputQps, 1),
    boundQps: round(boundQps, 1),
    ratioToBound: round(throughputQps / boundQps, 3),
    boundNote: boundNote(throughputQps / boundQps),
    campaignWallS: round(run.campaignWallS, 2),
    llmCalls: {
      distillOk: calls.ok,
      distillErrors: calls.errors,
      allStages: calls.all,
      simulatorRequests: simStats.requests,
      simulatorServed: simStats.served,
      simulatorPaidTwice: {
        requests: twice.length,
        extraAnswers: twice.reduce((sum, t) => sum + t.served - 1, 0),
      },
      latencyMsP50: round(calls.p50, 1),
      latencyMsP95: round(calls.p95, 1),
    },
    workerRssMiB: {
      atReady: run.worker.rssAtReadyKiB === null ? null : mib(run.worker.rssAtReadyKiB),
      peak: sampler.peakWorkerKiB === null ? null : mib(sampler.peakWorkerKiB),
      peakWithChildren: sampler.peakTreeKiB === null ? null : mib(sampler.peakTreeKiB),
      vmHwm: run.vmHwm === null ? null : mib(run.vmHwm),
      samples: sampler.samples,
    },
    distillHistory: {
      events: distill.events,
      runs: distill.runs,
      maxEventsPerRun: distill.maxEventsPerRun,
      eventsPer1000Questions: round((distill.events / Math.max(1, stage.total)) * 1000, 1),
    },
    campaignHistory: {
      events: campaign.events,
      runs: campaign.runs,
      maxEventsPerRun: campaign.maxEventsPerRun,
    },
    cpuDuringRecords,
    cpuMsPerCall,
    postgresBytesPerQuestion: Math.round((dbBytesAfter - run.dbBytesBefore) / Math.max(1, run.questions)),
  };
}

/** What limits the run, from how close it came to the endpoints' bound. */
function boundNote(ratio: number): string {
  if (ratio >= 0.8) return 'near the concurrency bound: the (simulated) models are the limit';
  return (
    `well below the bound: the machine (${os.cpus().length} CPUs shared by the worker, Postgres, ` +
    'Temporal and the simulator), not the model, is the limit'
  );
}

/**
 * Events of a workflow over all its runs: from the latest run back along the continue-as-new
 * chain (each run's first event names the run it continues). Also the first run's input.
 */
async function historyOf(
  temporal: Client,
  workflowId: string,
): Promise<HistoryCount & { input: Partial<StageInput> | null }> {
  let runId: string | undefined;
  let events = 0;
  let runs = 0;
  let maxEventsPerRun = 0;
  let input: Partial<StageInput> | null = null;
  for (;;) {
    const history = await temporal.workflow.getHandle(workflowId, runId).fetchHistory();
    const list = history.events ?? [];
    events += list.length;
    maxEventsPerRun = Math.max(maxEventsPerRun, list.length);
    runs++;
    const started = list[0]?.workflowExecutionStartedEventAttributes;
    const payload = started?.input?.payloads?.[0];
    if (payload) input = defaultPayloadConverter.fromPayload<Partial<StageInput>>(payload);
    const previous = started?.continuedExecutionRunId;
    if (!previous || runs > 1000) break;
    runId = previous;
  }
  return { events, runs, maxEventsPerRun, input };
}

// ---------------------------------------------------------------------------------------------
// Inputs.

/**
 * Questions of one shape: `${label} ${i}: how should an operator diagnose and fix <topic> (case i)?`.
 * Each run gets its own label (of one length), so that no run meets the simulator's lookup cache
 * warmed by another: a repeated question is cheaper for it to answer, as a prompt cache makes it
 * for a real server, and that would favour whichever side ran second.
 */
function syntheticQuestions(n: number, label: string): Array<{ id: string; question: string }> {
  return Array.from({ length: n }, (_, k) => {
    const i = k + 1;
    const topic = TOPICS[i % TOPICS.length] ?? TOPICS[0];
    return {
      id: `syn-${String(i).padStart(5, '0')}`,
      question: `${label} ${i}: how should an operator diagnose and fix ${topic} (case ${i})?`,
    };
  });
}

async function writeQuestions(
  file: string,
  questions: Array<{ id: string; question: string }>,
): Promise<void> {
  await writeFile(file, `${questions.map((q) => JSON.stringify(q)).join('\n')}\n`);
}

/** The example campaign's shape, with this benchmark's concurrency and batch size. */
function benchSpec(
  simUrl: string,
  questions: number,
  latencyMs: number,
  fineTuneQueue: string,
): CampaignSpecInput {
  return {
    name: `bench-${questions}q-${latencyMs}ms`,
    domain: 'Kubernetes operations and troubleshooting',
    description: `Benchmark: Stage 1 on ${questions} synthetic questions, simulator latency ${latencyMs} ms.`,
    questions: { train: 'train.jsonl' },
    models: {
      weak: { baseURL: simUrl, model: 'sim-weak-8b', concurrency: WEAK_CONCURRENCY, timeout: '60s' },
      // No requestsPerMinute: the bound under test is concurrency / latency.
      strong: {
        baseURL: simUrl,
        model: 'sim-strong',
        concurrency: STRONG_CONCURRENCY,
        timeout: '60s',
        pricing: { inputPerMTok: 2.5, outputPerMTok: 10 },
      },
      judge: { baseURL: simUrl, model: 'sim-judge', concurrency: 8 },
    },
    // Stage 1 only: the figures are about its throughput.
    stages: {
      distill: { batchSize: BATCH_SIZE, parallelBatches: PARALLEL_BATCHES },
      assess: { enabled: false },
      contrast: { enabled: false },
      evaluate: { enabled: false },
    },
    fineTune: {
      type: 'local',
      cwd: REPO_ROOT,
      command: 'node_modules/.bin/tsx infra/sim/train.ts',
      env: { METEOR_SIM_TRAIN_SECONDS: TRAIN_SECONDS },
      pollInterval: '1s',
      timeout: '10m',
      queue: fineTuneQueue,
    },
    deploy: { type: 'vllm-lora' },
    budget: { maxCostUsd: 1000 },
  };
}

// ---------------------------------------------------------------------------------------------
// Output.

function printTable(results: ScenarioResult[]): void {
  const rows: Array<[string, (r: ScenarioResult) => string]> = [
    ['simulator latency', (r) => `${r.latencyMs} ms`],
    ['questions', (r) => String(r.questions)],
    [
      'warm-up round first, each side',
      () => (WARMUP_QUESTIONS > 0 ? `${WARMUP_QUESTIONS} questions` : 'none'),
    ],
    ['records made', (r) => String(r.records)],
    ['weak / strong concurrency', (r) => `${r.weakConcurrency} / ${r.strongConcurrency}`],
    ['batch size × parallel batches', (r) => `${r.batchSize} × ${r.parallelBatches ?? '?'}`],
    ['stage-1 wall, launch → stage done', (r) => `${r.stageWallS} s`],
    ['stage run, started → finished', (r) => `${r.stageRunS} s`],
    ['records span, first → last', (r) => `${r.recordsSpanS} s`],
    ['throughput', (r) => `${r.throughputQps} q/s`],
    [
      'bare openai client, same calls',
      (r) => (r.bareClient ? `${r.bareClient.throughputQps} q/s` : 'skipped'),
    ],
    ['ratio to the bare client', (r) => r.ratioToBareClient?.toFixed(2) ?? 'n/a'],
    [
      'bare client on the gateway transport, ratio',
      (r) =>
        r.bareClientSameTransport
          ? `${r.bareClientSameTransport.throughputQps} q/s, ${r.bareClientSameTransport.ratio.toFixed(2)}`
          : 'skipped',
    ],
    ['bound min(conc.) / latency', (r) => `${r.boundQps} q/s`],
    ['ratio to bound', (r) => `${(r.ratioToBound * 100).toFixed(1)} %`],
    ['LLM calls (distill ok / errors)', (r) => `${r.llmCalls.distillOk} / ${r.llmCalls.distillErrors}`],
    [
      'simulator requests (answered)',
      (r) => `${r.llmCalls.simulatorRequests} (${r.llmCalls.simulatorServed})`,
    ],
    [
      'simulator: requests paid twice (extra answers)',
      (r) => `${r.llmCalls.simulatorPaidTwice.requests} (${r.llmCalls.simulatorPaidTwice.extraAnswers})`,
    ],
    ['LLM call latency seen, p50 / p95', (r) => `${r.llmCalls.latencyMsP50} / ${r.llmCalls.latencyMsP95} ms`],
    ['worker RSS when ready (idle)', (r) => fmtMiB(r.workerRssMiB.atReady)],
    ['worker peak RSS', (r) => fmtMiB(r.workerRssMiB.peak)],
    ['worker + children peak RSS', (r) => fmtMiB(r.workerRssMiB.peakWithChildren)],
    ['worker VmHWM', (r) => fmtMiB(r.workerRssMiB.vmHwm)],
    ['distill history events (runs)', (r) => `${r.distillHistory.events} (${r.distillHistory.runs})`],
    ['largest history of one run', (r) => String(r.distillHistory.maxEventsPerRun)],
    ['distill events / 1,000 questions', (r) => String(r.distillHistory.eventsPer1000Questions)],
    ['campaign history events (runs)', (r) => `${r.campaignHistory.events} (${r.campaignHistory.runs})`],
    ['campaign wall incl. fine-tune', (r) => `${r.campaignWallS} s`],
    ['machine CPU busy (first → last record)', (r) => fmtPercent(r.cpuDuringRecords?.machineBusyPercent)],
    ['cores: worker / postgres / temporal', (r) => fmtCores(r, ['worker', 'postgres', 'temporal'])],
    ['cores: model server / bench / other', (r) => fmtCores(r, ['modelServer', 'bench', 'otherProcesses'])],
    ['CPU ms per LLM call: worker', (r) => fmtMs(r.cpuMsPerCall?.worker)],
    ['CPU ms per LLM call: postgres', (r) => fmtMs(r.cpuMsPerCall?.postgres)],
    ['CPU ms per LLM call: temporal server', (r) => fmtMs(r.cpuMsPerCall?.temporal)],
    ['CPU ms per LLM call: model server', (r) => fmtMs(r.cpuMsPerCall?.modelServer)],
    ['bare client CPU ms per call: client', (r) => fmtMs(r.bareClient?.cpuMsPerCall?.client)],
    ['bare client CPU ms per call: model server', (r) => fmtMs(r.bareClient?.cpuMsPerCall?.modelServer)],
    [
      // On a saturated machine the throughput ratio follows this one: bare CPU over the platform's.
      'CPU ms per call, all: platform / bare (ratio)',
      (r) => {
        const p = r.cpuMsPerCall;
        const b = r.bareClient?.cpuMsPerCall;
        if (!p || !b) return 'n/a';
        const platform = p.worker + p.postgres + p.temporal + p.modelServer;
        const bare = b.client + b.modelServer;
        return `${platform.toFixed(2)} / ${bare.toFixed(2)} ms (${(bare / platform).toFixed(2)})`;
      },
    ],
    [
      'idle cores meanwhile: worker / pg / temporal',
      (r) => {
        const idle = r.bareClient?.platformIdleCores;
        return idle
          ? `${idle.worker.toFixed(2)} / ${idle.postgres.toFixed(2)} / ${idle.temporal.toFixed(2)}`
          : 'n/a';
      },
    ],
    ['PostgreSQL bytes per question', (r) => `${r.postgresBytesPerQuestion} B`],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  const cells = rows.map(([label, f]) => [label.padEnd(width), ...results.map(f)]);
  const colWidths = results.map((_, i) => Math.max(...cells.map((c) => (c[i + 1] ?? '').length)));
  const line = (c: string[]) =>
    `  ${c[0]}  │ ${c
      .slice(1)
      .map((v, i) => v.padStart(colWidths[i] ?? 0))
      .join(' │ ')}`;
  const rule = `  ${'─'.repeat(width)}──┼─${colWidths.map((w) => '─'.repeat(w)).join('─┼─')}`;
  console.log(line([''.padEnd(width), ...results.map((r) => `${r.questions} q, ${r.latencyMs} ms`)]));
  console.log(rule);
  for (const c of cells.slice(1)) console.log(line(c));
  console.log('');
  for (const r of results) console.log(`  ${r.questions} q, ${r.latencyMs} ms: ${r.boundNote}.`);
  for (const s of scaling(results)) {
    console.log(
      `  scaling at ${s.latencyMs} ms: ${s.largest} questions ran at ${s.ratio.toFixed(2)} of the throughput of ` +
        `${s.smallest} (goal ≥ 0.8: cost grows linearly).`,
    );
  }
}

/** Throughput of the largest question count over the smallest's, per latency, when both ran. */
function scaling(
  results: ScenarioResult[],
): Array<{ latencyMs: number; smallest: number; largest: number; ratio: number }> {
  const out: Array<{ latencyMs: number; smallest: number; largest: number; ratio: number }> = [];
  for (const latencyMs of new Set(results.map((r) => r.latencyMs))) {
    const runs = results.filter((r) => r.latencyMs === latencyMs).sort((a, b) => a.questions - b.questions);
    const small = runs[0];
    const large = runs.at(-1);
    if (!small || !large || small === large || small.throughputQps <= 0) continue;
    out.push({
      latencyMs,
      smallest: small.questions,
      largest: large.questions,
      ratio: round(large.throughputQps / small.throughputQps, 2),
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = Date.now();
  console.log('meteor benchmark — Stage 1 (distill) throughput of one worker');
  console.log('SIMULATED models: every reply and latency comes from the project simulator, not real LLMs.');
  console.log(
    `${QUESTION_COUNTS.join(' and ')} synthetic questions; weak/strong concurrency ${WEAK_CONCURRENCY}/${STRONG_CONCURRENCY}; ` +
      `batch size ${BATCH_SIZE}; latencies ${LATENCIES_MS.join(', ')} ms; ` +
      `${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim() ?? '?'}), Node ${process.version}\n`,
  );

  const root = await mkdtemp(path.join(os.tmpdir(), 'meteor-bench-'));
  // As root, Postgres runs as the `postgres` user and must reach its data directory.
  await chmod(root, 0o755);
  onShutdown(() => rm(root, { recursive: true, force: true }), {
    name: 'bench temp dir',
    // A forced exit (a second Ctrl-C) skips the graceful stops: remove what we can still.
    killNow: () => {
      try {
        rmSync(root, { recursive: true, force: true });
      } catch {
        // Postgres may still be shutting down in there; it is a temp dir.
      }
    },
  });

  let services: Services;
  const external = Boolean(process.env.DATABASE_URL?.trim() && process.env.TEMPORAL_ADDRESS?.trim());
  if (external) {
    services = {
      databaseUrl: (process.env.DATABASE_URL ?? '').trim(),
      temporalAddress: (process.env.TEMPORAL_ADDRESS ?? '').trim(),
      namespace: process.env.TEMPORAL_NAMESPACE?.trim() || 'default',
      taskQueue: 'unused',
      uiUrl: null,
    };
    log(`using DATABASE_URL and TEMPORAL_ADDRESS=${services.temporalAddress}`);
  } else {
    const stackStarted = Date.now();
    const stack = await startLocalStack({
      root: path.join(root, 'stack'),
      postgresPort: await findFreePort(),
      temporalPort: await findFreePort(),
      uiPort: await findFreePort(),
      // The stack's own progress lines; Postgres's server log stays out of the way.
      log: (line) => {
        if (!line.startsWith('postgres: ') || /ready on port/.test(line)) log(line);
      },
    });
    onShutdown(() => stack.stop(), { name: 'local stack' });
    services = {
      databaseUrl: stack.databaseUrl,
      temporalAddress: stack.temporalAddress,
      namespace: stack.namespace,
      taskQueue: 'unused',
      uiUrl: stack.uiUrl,
    };
    log(`stack up in ${((Date.now() - stackStarted) / 1000).toFixed(1)} s`);
  }
  await migrateToLatest(services.databaseUrl);

  const results: ScenarioResult[] = [];
  for (const questions of QUESTION_COUNTS) {
    for (const latencyMs of LATENCIES_MS) {
      const r = await runScenario(root, services, questions, latencyMs);
      const bare = r.bareClient
        ? `bare client ${r.bareClient.throughputQps} q/s, ratio ${r.ratioToBareClient}`
        : 'bare client skipped';
      log(
        `${questions} q, ${latencyMs} ms: ${r.throughputQps} q/s (bound ${r.boundQps}, ` +
          `${(r.ratioToBound * 100).toFixed(1)} %; ${bare}), stage ${r.stageWallS} s, ` +
          `worker peak RSS ${fmtMiB(r.workerRssMiB.peak)}`,
      );
      results.push(r);
    }
  }

  const totalS = round((Date.now() - started) / 1000, 1);
  console.log(`\nResults (simulated models; ${totalS} s in all):\n`);
  printTable(results);

  const outDir = path.join(REPO_ROOT, 'bench-results');
  await mkdir(outDir, { recursive: true });
  const outFile = path.join(outDir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  const report = {
    benchmark: 'meteor stage-1 distill throughput',
    simulated: true,
    note: 'Model replies and latencies come from the project simulator (infra/sim), not real LLMs.',
    generatedAt: new Date().toISOString(),
    totalSeconds: totalS,
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model.trim() ?? null,
      memoryGiB: round(os.totalmem() / 2 ** 30, 1),
      platform: `${os.platform()} ${os.release()}`,
      node: process.version,
    },
    services: external
      ? 'external (DATABASE_URL / TEMPORAL_ADDRESS)'
      : 'embedded Postgres + Temporal dev server',
    config: {
      questions: QUESTION_COUNTS,
      weakConcurrency: WEAK_CONCURRENCY,
      strongConcurrency: STRONG_CONCURRENCY,
      batchSize: BATCH_SIZE,
      warmUpQuestions: WARMUP_QUESTIONS,
      fineTuneSimSeconds: Number(TRAIN_SECONDS),
      throughputDefinition: '(records − 1) / (last − first distill_records.created_at)',
      boundDefinition: 'min(weak, strong concurrency) / simulator latency',
    },
    scenarios: results,
    scaling: scaling(results),
  };
  await writeFile(outFile, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(process.cwd(), outFile)}`);
}

// ---------------------------------------------------------------------------------------------
// Helpers.

function positiveIntListEnv(name: string, fallback: number[]): number[] {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  return raw.split(',').map((part) => {
    const n = Number(part.trim());
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must list positive integers, got "${raw}"`);
    return n;
  });
}

function nonNegativeIntEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be an integer ≥ 0, got "${raw}"`);
  return n;
}

function positiveIntEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return n;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function mib(kib: number): number {
  return round(kib / 1024, 1);
}

function fmtMiB(v: number | null): string {
  return v === null ? 'n/a' : `${v} MiB`;
}

function fmtMs(v: number | null | undefined): string {
  return v === null || v === undefined ? 'n/a' : `${v.toFixed(2)} ms`;
}

function fmtPercent(v: number | null | undefined): string {
  return v === null || v === undefined ? 'n/a' : `${v} %`;
}

function fmtCores(r: ScenarioResult, keys: Array<CpuGroup | 'otherProcesses'>): string {
  const cores = r.cpuDuringRecords?.coresUsed;
  return cores ? keys.map((k) => cores[k].toFixed(2)).join(' / ') : 'n/a';
}

async function tail(file: string, lines = 40): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).split('\n').slice(-lines).join('\n');
  } catch {
    return '(no output)';
  }
}

// The stack's shutdown registry installs the signal handlers that stop everything (a second
// signal forces it); registering first keeps those ahead of this one, which only tells main why.
onShutdown(() => undefined, { name: 'bench' });
const SIGNAL_CODES = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
let interrupted: keyof typeof SIGNAL_CODES | null = null;
for (const signal of Object.keys(SIGNAL_CODES) as Array<keyof typeof SIGNAL_CODES>) {
  process.once(signal, () => (interrupted ??= signal));
}

main()
  .catch((err: unknown) => {
    if (interrupted) {
      process.stderr.write(`bench interrupted (${interrupted}); stopping what it started\n`);
      process.exitCode = SIGNAL_CODES[interrupted];
      return;
    }
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = 1;
  })
  .finally(async () => {
    await shutdown();
    // Nothing of ours is left running; do not wait on idle sockets of libraries.
    process.exit();
  });
