/**
 * The Temporal runtime for processes that run the local stack (dev, demo): warnings only unless
 * METEOR_VERBOSE is set, and no signal handling of its own — the shutdown registry
 * (infra/stack/processes.ts) drains the worker before it stops Temporal and PostgreSQL.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';

let installed = false;

export function installDevRuntime(): void {
  if (installed) return;
  installed = true;
  Runtime.install({
    logger: new DefaultLogger(process.env.METEOR_VERBOSE ? 'INFO' : 'WARN'),
    shutdownSignals: [],
  });
}
