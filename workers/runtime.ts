/** The Temporal worker runtime's logging: warnings and errors only, unless METEOR_VERBOSE is set. */
import { DefaultLogger, Runtime } from '@temporalio/worker';

let installed = false;

export function quietTemporalRuntime(): void {
  if (installed || process.env.METEOR_VERBOSE) return;
  installed = true;
  Runtime.install({ logger: new DefaultLogger('WARN') });
}
