/**
 * The Temporal runtime of meteor's processes: one logger that leaves out the SDK's warning for
 * the activity-only fine-tune queues ("No workflows registered"), which is expected there.
 * - `installDevRuntime` (dev, demo, tests): warnings only unless METEOR_VERBOSE is set, and no
 *   signal handling of its own — the shutdown registry (infra/stack/processes.ts) drains the
 *   worker before it stops Temporal and PostgreSQL.
 * - `installWorkerRuntime` (`meteorctl worker`): info level, the SDK's own signal handling, and a
 *   heap kept close to its live size (`tuneWorkerHeap`).
 */
import v8 from 'node:v8';
import { UserError } from '../core/errors';
import { DefaultLogger, Runtime, type LogEntry, type LogLevel } from '@temporalio/worker';

let installed = false;

/** The native side's warnings go through our logger (and its filter), not straight to the console. */
const CORE_LOGS_FORWARDED = { logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} } } as const;

const EXPECTED = /^No workflows registered, not polling for workflow tasks/;

/**
 * What the SDK's native side says on each retry of a call to a Temporal server it cannot reach
 * (a line per poll, per completion, per retry). The worker's outage watch tells the outage once
 * instead, and when it is over (workers/worker.ts).
 */
const UNREACHABLE = /Unavailable|service is currently unavailable|tcp connect error|transport error/i;

export function isUnreachableServerNoise(entry: Pick<LogEntry, 'message' | 'meta'>): boolean {
  if (entry.meta?.sdkComponent !== 'core') return false;
  if (entry.meta.target === 'temporalio_client::retry') return true;
  return UNREACHABLE.test(`${entry.message} ${String(entry.meta.error ?? '')}`);
}

function logger(level: LogLevel): DefaultLogger {
  return new DefaultLogger(level, (entry: LogEntry) => {
    if (EXPECTED.test(entry.message) || isUnreachableServerNoise(entry)) return;
    const meta = entry.meta && Object.keys(entry.meta).length > 0 ? ` ${JSON.stringify(entry.meta)}` : '';
    process.stderr.write(
      `${new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString()} [${entry.level}] ${entry.message}${meta}\n`,
    );
  });
}

export function installDevRuntime(): void {
  if (installed) return;
  installed = true;
  Runtime.install({
    logger: logger(process.env.METEOR_VERBOSE ? 'INFO' : 'WARN'),
    shutdownSignals: [],
    telemetryOptions: CORE_LOGS_FORWARDED,
  });
}

export function installWorkerRuntime(env: NodeJS.ProcessEnv = process.env): void {
  if (installed) return;
  installed = true;
  tuneWorkerHeap(env);
  Runtime.install({ logger: logger('INFO'), telemetryOptions: CORE_LOGS_FORWARDED });
}

/** How far the heap may grow past its live size before a full collection (V8's own: up to 4×). */
export const DEFAULT_HEAP_GROWTH_PERCENT = 50;

/**
 * A worker allocates fast and keeps little (each LLM call's request and reply live for one call),
 * so V8's default growth lets the old generation reach several times the live data before it
 * collects: hundreds of MiB on a 100,000-question stage. Growing by at most
 * METEOR_WORKER_HEAP_GROWTH_PERCENT (default 50; 0: V8's default) keeps the resident memory
 * near what is in use, for a few percent more time in the garbage collector. V8 reads the flag
 * at each collection, so setting it at start-up takes effect.
 */
export function tuneWorkerHeap(env: NodeJS.ProcessEnv = process.env): void {
  const raw = env.METEOR_WORKER_HEAP_GROWTH_PERCENT?.trim();
  const percent = raw ? Number(raw) : DEFAULT_HEAP_GROWTH_PERCENT;
  if (!Number.isInteger(percent) || percent < 0) {
    throw new UserError(`METEOR_WORKER_HEAP_GROWTH_PERCENT must be a whole number ≥ 0, got "${raw ?? ''}"`);
  }
  if (percent > 0) v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
}
