/**
 * Group commit: many callers' small statements written as one. The first item goes at once; items
 * that arrive while a batch is being written wait for it to finish and then go together, as the
 * next batch. An idle system pays no added latency, a busy one pays one round trip per batch
 * instead of one per item — and every item is still written by a statement that started after it
 * was submitted, so nothing reads older state than an unbatched statement would.
 *
 * With `minIntervalMs`, a batch starts at least that long after the previous one ended, so that
 * under load more items share a statement (each has its own parse, plan, commit and round trip:
 * most of the cost at a few rows). An idle system still pays nothing.
 */

export interface GroupCommitOptions {
  /** Items per statement at most (bounds parameters and statement size). */
  maxBatch?: number;
  /** Batches written at once (each holds a pool connection). */
  maxInFlight?: number;
  /**
   * Least time between the end of one batch and the start of the next (default 0). An item
   * arriving after a quiet spell longer than this goes at once; under load items wait up to this
   * long for company.
   */
  minIntervalMs?: number;
  /**
   * Errors that are one item's, not the batch's (e.g. a value its column refuses): a batch of
   * several items that fails with one is written again item by item, so that only the items at
   * fault fail and the others' callers go on. The write must be safe to run again after a failed
   * try (a failed statement changed nothing).
   */
  isolate?: (err: unknown) => boolean;
}

interface Pending<I, O> {
  item: I;
  resolve(out: O): void;
  reject(err: unknown): void;
}

/**
 * `minIntervalMs` of the statements made for every LLM call (claims, the answer log, records):
 * a few milliseconds beside calls of tens of milliseconds or more. In issue #9's
 * bench (50 ms calls) it took about 10% off the worker's CPU per call and 20% off PostgreSQL's.
 */
export const PER_CALL_STATEMENT_INTERVAL_MS = 5;

export class GroupCommit<I, O> {
  private queue: Array<Pending<I, O>> = [];
  private inFlight = 0;
  private readonly maxBatch: number;
  private readonly maxInFlight: number;
  private readonly minIntervalMs: number;
  private readonly isolate: (err: unknown) => boolean;
  private lastEnd = -Infinity;
  private timer: ReturnType<typeof setTimeout> | null = null;

  /**
   * @param write writes a batch; returns one output per item, in the items' order. A rejection
   *   fails every item of the batch.
   */
  constructor(
    private readonly write: (items: I[]) => Promise<O[]>,
    opts: GroupCommitOptions = {},
  ) {
    this.maxBatch = opts.maxBatch ?? 200;
    this.maxInFlight = opts.maxInFlight ?? 1;
    this.minIntervalMs = opts.minIntervalMs ?? 0;
    this.isolate = opts.isolate ?? (() => false);
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.flush();
    });
  }

  private flush(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0 && this.timer === null) {
      const wait = this.lastEnd + this.minIntervalMs - Date.now();
      if (wait > 0) {
        this.timer = setTimeout(() => {
          this.timer = null;
          this.flush();
        }, wait);
        return;
      }
      const batch = this.queue.splice(0, this.maxBatch);
      this.inFlight++;
      void this.run(batch);
    }
  }

  private async run(batch: Array<Pending<I, O>>): Promise<void> {
    try {
      await this.writeBatch(batch);
    } catch (err) {
      if (batch.length > 1 && this.isolate(err)) {
        // Rare (a bad value), so one statement per item is fine here.
        for (const p of batch) await this.writeBatch([p]).catch((e: unknown) => p.reject(e));
      } else {
        for (const p of batch) p.reject(err);
      }
    } finally {
      this.inFlight--;
      this.lastEnd = Date.now();
      this.flush();
    }
  }

  /** Writes the batch and settles its items; throws (settling nothing) when the write fails. */
  private async writeBatch(batch: Array<Pending<I, O>>): Promise<void> {
    const out = await this.write(batch.map((p) => p.item));
    if (out.length !== batch.length) {
      throw new Error(`group commit: ${out.length} results for ${batch.length} items`);
    }
    batch.forEach((p, i) => p.resolve(out[i] as O));
  }
}

/**
 * One row per key, the last submitted: an upsert may not touch a row twice in one statement (two
 * overlapping attempts of one question in the same batch).
 */
export function lastPerKey<T>(rows: T[], key: (row: T) => string): T[] {
  const last = new Map<string, T>();
  for (const row of rows) {
    const k = key(row);
    last.delete(k);
    last.set(k, row);
  }
  return [...last.values()];
}
