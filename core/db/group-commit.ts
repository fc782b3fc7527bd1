/**
 * Group commit: many callers' small statements written as one. The first item goes at once; items
 * that arrive while a batch is being written wait for it to finish and then go together, as the
 * next batch. An idle system pays no added latency, a busy one pays one round trip per batch
 * instead of one per item — and every item is still written by a statement that started after it
 * was submitted, so nothing reads older state than an unbatched statement would.
 */

export interface GroupCommitOptions {
  /** Items per statement at most (bounds parameters and statement size). */
  maxBatch?: number;
  /** Batches written at once (each holds a pool connection). */
  maxInFlight?: number;
}

interface Pending<I, O> {
  item: I;
  resolve(out: O): void;
  reject(err: unknown): void;
}

export class GroupCommit<I, O> {
  private queue: Array<Pending<I, O>> = [];
  private inFlight = 0;
  private readonly maxBatch: number;
  private readonly maxInFlight: number;

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
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.flush();
    });
  }

  private flush(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.inFlight++;
      void this.run(batch);
    }
  }

  private async run(batch: Array<Pending<I, O>>): Promise<void> {
    try {
      const out = await this.write(batch.map((p) => p.item));
      if (out.length !== batch.length) {
        throw new Error(`group commit: ${out.length} results for ${batch.length} items`);
      }
      batch.forEach((p, i) => p.resolve(out[i] as O));
    } catch (err) {
      for (const p of batch) p.reject(err);
    } finally {
      this.inFlight--;
      this.flush();
    }
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
