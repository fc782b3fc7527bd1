/**
 * `meteorctl worker` as a child process, as an operator runs it: tests that kill workers, run
 * several of them, or give each its own home start them through here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { CampaignStatus } from '../../workflows/types';
import type { campaignWorkflow } from '../../workflows/campaign';
import { fineTuneQueueOf, REPO_ROOT, services, type Harness } from './harness';

export interface WorkerProcess {
  child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output: () => string;
}

/** The worker's environment: the test's PostgreSQL and Temporal, plus `extra` (undefined removes). */
export function workerProcessEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const svc = services();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: svc.databaseUrl,
    TEMPORAL_ADDRESS: svc.temporalAddress,
    TEMPORAL_NAMESPACE: svc.namespace,
  };
  for (const [name, value] of Object.entries(extra)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

export interface SpawnOptions {
  label?: string;
  /** The checkout whose `bin/meteorctl.cjs` runs (default: this one; an older version's worktree). */
  cwd?: string;
  startTimeoutMs?: number;
  /** Called with everything printed so far on each output, also while it starts. */
  onOutput?: (output: string) => void;
}

/** Starts `meteorctl worker ...args`; resolves once it polls its queues (or rejects with its output). */
export async function spawnWorkerProcess(
  args: string[],
  env: NodeJS.ProcessEnv,
  opts: SpawnOptions = {},
): Promise<WorkerProcess> {
  const label = opts.label ?? 'worker';
  const timeoutMs = opts.startTimeoutMs ?? 90_000;
  const child = spawn(process.execPath, ['bin/meteorctl.cjs', 'worker', ...args], {
    cwd: opts.cwd ?? REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const seen = (d: Buffer) => {
    out += d.toString();
    opts.onOutput?.(out);
  };
  child.stdout?.on('data', seen);
  child.stderr?.on('data', seen);
  await new Promise<void>((resolve, reject) => {
    const onData = () => {
      if (out.includes('meteor worker on task queue')) done();
    };
    const onExit = (code: number | null, signal: string | null) =>
      done(new Error(`${label} exited (${code ?? signal}) before it started:\n${out}`));
    const timer = setTimeout(
      () => done(new Error(`${label} did not start within ${timeoutMs / 1000} s:\n${out}`)),
      timeoutMs,
    );
    function done(err?: Error) {
      clearTimeout(timer);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      if (err) {
        child.kill('SIGKILL');
        reject(err);
      } else resolve();
    }
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
  return { child, output: () => out };
}

/**
 * `meteorctl worker` serving what the harness's in-process worker would: its task queue and its
 * fine-tune queue, with its artifacts folder; `extraEnv` as for workerProcessEnv.
 */
export function spawnHarnessWorker(
  h: Pick<Harness, 'taskQueue' | 'artifactsDir'>,
  extraEnv: Record<string, string | undefined> = {},
  opts: SpawnOptions = {},
): Promise<WorkerProcess> {
  return spawnWorkerProcess(
    ['--task-queue', h.taskQueue, '--queues', `${h.taskQueue},${fineTuneQueueOf(h.taskQueue)}`],
    workerProcessEnv({ METEOR_ARTIFACTS_DIR: h.artifactsDir, ...extraEnv }),
    opts,
  );
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Signals every child still running and waits for all of them to exit. */
export async function stopProcesses(children: ChildProcess[], signal: NodeJS.Signals): Promise<void> {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  }
  await Promise.all(children.map(exited));
}

/**
 * The campaign's result, waited for while `worker` runs it; past `timeoutMs`, an error carrying
 * the worker's output (what a test of a killed or restarted worker needs to say why).
 */
export function campaignResultWithin(
  h: Pick<Harness, 'clients'>,
  workflowId: string,
  worker: WorkerProcess,
  timeoutMs: number,
): Promise<CampaignStatus> {
  return Promise.race([
    h.clients.temporal.workflow.getHandle<typeof campaignWorkflow>(workflowId).result(),
    new Promise<never>((_, reject) =>
      setTimeout(
        () =>
          reject(new Error(`campaign not done in ${timeoutMs / 1000} s; worker output:\n${worker.output()}`)),
        timeoutMs,
      ).unref(),
    ),
  ]);
}
