/**
 * An outage of something a long-running process depends on (PostgreSQL, the Temporal server, a
 * model server), told once when it starts and once when it ends — not a line per failed retry.
 * Whoever sees a failure that means "it is gone" calls `lost()`; the watch then probes, backing off
 * up to `maxProbeEveryMs`, until the probe succeeds (or, without a probe, until `ok()`) and says
 * how long it was down. The work itself retries on its own (activities); the watch only tells the
 * operator what is going on. `waitUntilReachable` is the same at start-up.
 */
import { errorMessage } from './errors';

/** Where the two lines of an outage go (a warning each: the end belongs to the outage's report). */
export type OutageLogger = (message: string) => void;

export interface DependencyWatchOptions {
  /** The dependency, as the operator knows it: "PostgreSQL at 10.0.0.5:5432". */
  name: string;
  /** What waits meanwhile, e.g. "activities retry until it is back". */
  waiting: string;
  /**
   * Succeeds once the dependency answers again. Without one, the outage ends at the next `ok()`
   * (a model server: probing it would be a paid call; the next answered call says it is back).
   */
  probe?: () => Promise<void>;
  log: OutageLogger;
  /** First probe this long after the loss, then doubling (default 500 ms). */
  firstProbeMs?: number;
  /** Longest wait between probes (default 5 s). */
  maxProbeEveryMs?: number;
}

export class DependencyWatch {
  private downSince: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private checker: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly opts: DependencyWatchOptions) {}

  /** Whether an outage is going on (lost, not yet probed back). */
  get down(): boolean {
    return this.downSince !== null;
  }

  /** A failure that means the dependency is unreachable; the first of an outage is logged. */
  lost(err: unknown): void {
    if (this.closed || this.downSince !== null) return;
    this.downSince = Date.now();
    this.opts.log(`${this.opts.name} is unreachable (${oneLine(err)}); ${this.opts.waiting}`);
    if (this.opts.probe) this.schedule(this.opts.firstProbeMs ?? 500);
  }

  /** The dependency answered: an outage going on is over. */
  ok(): void {
    if (this.downSince === null) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const seconds = (Date.now() - this.downSince) / 1000;
    this.downSince = null;
    if (!this.closed) this.opts.log(`${this.opts.name} is back after ${seconds.toFixed(1)} s`);
  }

  /**
   * Probes every `everyMs` while the dependency is up too, for one whose loss nothing else reports
   * (the Temporal server: the SDK retries its polls quietly).
   */
  checkEvery(everyMs: number): void {
    const probe = this.opts.probe;
    if (!probe || this.checker || this.closed) return;
    let running = false;
    this.checker = setInterval(() => {
      if (running || this.downSince !== null) return;
      running = true;
      probe()
        .catch((err: unknown) => this.lost(err))
        .finally(() => (running = false));
    }, everyMs);
    this.checker.unref();
  }

  /** Stops probing (process shutdown); an outage going on is left untold. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.checker) clearInterval(this.checker);
    this.timer = null;
    this.checker = null;
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => void this.check(ms), ms);
    this.timer.unref();
  }

  private async check(lastWaitMs: number): Promise<void> {
    this.timer = null;
    if (this.closed || this.downSince === null || !this.opts.probe) return;
    try {
      await this.opts.probe();
    } catch {
      if (!this.closed) this.schedule(Math.min(lastWaitMs * 2, this.opts.maxProbeEveryMs ?? 5_000));
      return;
    }
    this.ok();
  }
}

function oneLine(err: unknown): string {
  const message = errorMessage(err).split('\n')[0]?.trim() ?? '';
  return message === '' ? 'no reason given' : message;
}

export interface WaitUntilReachableOptions<T> {
  /** As in DependencyWatch: "PostgreSQL at db:5432/meteor". */
  name: string;
  attempt: () => Promise<T>;
  /** Failures that mean "not there yet" (anything else is thrown at once: configuration to fix). */
  unreachable: (err: unknown) => boolean;
  log: OutageLogger;
  /** The failure in a few words for the log (default: its message's first line). */
  reason?: (err: unknown) => string;
  /** Test hook. */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Start-up of a long-running process: `attempt` until the dependency answers, telling once that
 * it waits and once that it is there. A worker started before its database (a host booting, a
 * restart of the whole stack) waits for it instead of exiting.
 */
export async function waitUntilReachable<T>(opts: WaitUntilReachableOptions<T>): Promise<T> {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let since: number | null = null;
  for (let waitMs = 500; ; waitMs = Math.min(waitMs * 2, 5_000)) {
    try {
      const out = await opts.attempt();
      if (since !== null)
        opts.log(`${opts.name} is reachable after ${((Date.now() - since) / 1000).toFixed(1)} s`);
      return out;
    } catch (err) {
      if (!opts.unreachable(err)) throw err;
      if (since === null) {
        since = Date.now();
        opts.log(`${opts.name} is unreachable (${opts.reason?.(err) ?? oneLine(err)}); waiting for it`);
      }
      await sleep(waitMs);
    }
  }
}
