/**
 * Per-endpoint limits inside one worker process: a FIFO semaphore for concurrency and token
 * buckets for requests and tokens per minute. Every activity of the process shares them, so
 * parallel batches together respect the endpoint's configured limits.
 */

export class Semaphore {
  private active = 0;
  private readonly waiters: Array<() => void> = [];
  constructor(private readonly capacity: number) {}

  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.active < this.capacity) {
      this.active++;
      return this.releaser();
    }
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiters.indexOf(wake);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal?.reason ?? new Error('aborted'));
      };
      const wake = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      this.waiters.push(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    this.active++;
    return this.releaser();
  }

  get inUse(): number {
    return this.active;
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      this.waiters.shift()?.();
    };
  }
}

/** Refills continuously at `perMinute / 60` per second, up to `perMinute`. */
export class TokenBucket {
  private tokens: number;
  private last = Date.now();
  constructor(private readonly perMinute: number) {
    this.tokens = perMinute;
  }

  async take(amount: number, signal?: AbortSignal): Promise<void> {
    const want = Math.min(amount, this.perMinute);
    for (;;) {
      this.refill();
      if (this.tokens >= want) {
        this.tokens -= want;
        return;
      }
      const waitMs = Math.ceil(((want - this.tokens) / this.perMinute) * 60_000);
      await sleep(Math.max(waitMs, 10), signal);
    }
  }

  private refill(): void {
    const now = Date.now();
    this.tokens = Math.min(this.perMinute, this.tokens + ((now - this.last) / 60_000) * this.perMinute);
    this.last = now;
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason ?? new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface EndpointLimits {
  concurrency: number;
  requestsPerMinute?: number | undefined;
  tokensPerMinute?: number | undefined;
}

export class EndpointLimiter {
  private readonly slots: Semaphore;
  private readonly requests?: TokenBucket;
  private readonly tokens?: TokenBucket;

  constructor(readonly limits: EndpointLimits) {
    this.slots = new Semaphore(limits.concurrency);
    if (limits.requestsPerMinute) this.requests = new TokenBucket(limits.requestsPerMinute);
    if (limits.tokensPerMinute) this.tokens = new TokenBucket(limits.tokensPerMinute);
  }

  /** Waits for a slot and the rate budget; returns the release function of the slot. */
  async acquire(estimatedTokens: number, signal?: AbortSignal): Promise<() => void> {
    const release = await this.slots.acquire(signal);
    try {
      await this.requests?.take(1, signal);
      await this.tokens?.take(estimatedTokens, signal);
      return release;
    } catch (err) {
      release();
      throw err;
    }
  }
}

/** One limiter per endpoint and process; a changed limit (new spec) gets a fresh limiter. */
const registry = new Map<string, EndpointLimiter>();

export function limiterFor(key: string, limits: EndpointLimits): EndpointLimiter {
  const fullKey = `${key}|${limits.concurrency}|${limits.requestsPerMinute ?? ''}|${limits.tokensPerMinute ?? ''}`;
  let limiter = registry.get(fullKey);
  if (!limiter) {
    limiter = new EndpointLimiter(limits);
    registry.set(fullKey, limiter);
  }
  return limiter;
}
