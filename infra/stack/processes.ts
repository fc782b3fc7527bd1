/**
 * One place that knows every server this process started, so that Ctrl-C, SIGTERM or a normal
 * exit never leaves an orphan Postgres or Temporal holding its port and data directory.
 *
 * - `onShutdown(stop)` registers a graceful stop; the returned function unregisters it (used by
 *   a component's own `stop()`, so a stopped component is not stopped twice).
 * - `shutdown()` runs the registered stops once each, newest first (the reverse of start order:
 *   the worker before Temporal, Temporal before Postgres).
 * - On SIGINT/SIGTERM/SIGHUP we run `shutdown()` and exit; a second signal forces it.
 * - On `exit` (no more async work possible) we call each remaining entry's synchronous
 *   `killNow`, which signals the child so it shuts itself down after we are gone.
 */

export type StopFn = () => Promise<void> | void;

export interface ShutdownOptions {
  /** Shown in logs while stopping. */
  name?: string;
  /** Synchronous last resort for the `exit` event and a forced second Ctrl-C (send a signal). */
  killNow?: () => void;
}

interface Entry {
  name: string;
  stop: StopFn;
  killNow: (() => void) | undefined;
}

const entries: Entry[] = [];
let running: Promise<void> | null = null;
let handlersInstalled = false;
let signalled = false;

const SIGNAL_EXIT_CODES: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

export function onShutdown(stop: StopFn, options: ShutdownOptions = {}): () => void {
  installHandlers();
  const entry: Entry = { name: options.name ?? 'process', stop, killNow: options.killNow };
  entries.push(entry);
  return () => {
    const i = entries.indexOf(entry);
    if (i >= 0) entries.splice(i, 1);
  };
}

/** Stops everything registered, newest first; concurrent callers share one run. */
export function shutdown(): Promise<void> {
  if (running) return running;
  running = (async () => {
    // Pop before stopping: an entry runs at most once even if its stop throws or hangs.
    for (let entry = entries.pop(); entry; entry = entries.pop()) {
      try {
        await entry.stop();
      } catch (err) {
        process.stderr.write(`meteor: stopping ${entry.name} failed: ${errorText(err)}\n`);
      }
    }
  })().finally(() => {
    running = null;
  });
  return running;
}

/** Names of what is still registered, newest last (for diagnostics and tests). */
export function registeredNames(): string[] {
  return entries.map((e) => e.name);
}

function killAllNow(): void {
  for (const entry of [...entries].reverse()) {
    try {
      entry.killNow?.();
    } catch {
      // Best effort: the process is exiting.
    }
  }
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const signal of Object.keys(SIGNAL_EXIT_CODES) as NodeJS.Signals[]) {
    process.on(signal, () => onSignal(signal));
  }
  process.on('exit', killAllNow);
}

function onSignal(signal: NodeJS.Signals): void {
  const code = SIGNAL_EXIT_CODES[signal] ?? 1;
  if (signalled) {
    process.stderr.write(
      `\nmeteor: ${signal} again, killing ${registeredNames().join(', ') || 'nothing'} now\n`,
    );
    killAllNow();
    process.exit(code);
  }
  signalled = true;
  if (entries.length > 0) {
    process.stderr.write(
      `\nmeteor: ${signal}, stopping ${[...registeredNames()].reverse().join(', ')} (again to force)\n`,
    );
  }
  void shutdown().finally(() => process.exit(code));
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
