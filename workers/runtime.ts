/**
 * The Temporal runtime of meteor's processes: one logger that leaves out the SDK's warning for
 * the activity-only fine-tune queues ("No workflows registered"), which is expected there.
 * - `installDevRuntime` (dev, demo, tests): warnings only unless METEOR_VERBOSE is set, and no
 *   signal handling of its own — the shutdown registry (infra/stack/processes.ts) drains the
 *   worker before it stops Temporal and PostgreSQL.
 * - `installWorkerRuntime` (`meteorctl worker`): info level, the SDK's own signal handling.
 */
import { DefaultLogger, Runtime, type LogEntry, type LogLevel } from '@temporalio/worker';

let installed = false;

const EXPECTED = /^No workflows registered, not polling for workflow tasks/;

function logger(level: LogLevel): DefaultLogger {
  return new DefaultLogger(level, (entry: LogEntry) => {
    if (EXPECTED.test(entry.message)) return;
    const meta = entry.meta && Object.keys(entry.meta).length > 0 ? ` ${JSON.stringify(entry.meta)}` : '';
    process.stderr.write(
      `${new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString()} [${entry.level}] ${entry.message}${meta}\n`,
    );
  });
}

export function installDevRuntime(): void {
  if (installed) return;
  installed = true;
  Runtime.install({ logger: logger(process.env.METEOR_VERBOSE ? 'INFO' : 'WARN'), shutdownSignals: [] });
}

export function installWorkerRuntime(): void {
  if (installed) return;
  installed = true;
  Runtime.install({ logger: logger('INFO') });
}
