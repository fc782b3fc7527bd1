import { describe, expect, it } from 'vitest';
import { EndpointLimiter, Semaphore, TokenBucket } from '../../core/llm/limiter';

describe('Semaphore', () => {
  it('never lets more than its capacity run at once, and serves waiters in order', async () => {
    const sem = new Semaphore(3);
    let running = 0;
    let peak = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const release = await sem.acquire();
        order.push(i);
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 5));
        running--;
        release();
      }),
    );
    expect(peak).toBe(3);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(sem.inUse).toBe(0);
  });

  it('drops a waiter whose signal aborts, without leaking its slot', async () => {
    const sem = new Semaphore(1);
    const release = await sem.acquire();
    const ac = new AbortController();
    const waiting = sem.acquire(ac.signal);
    ac.abort(new Error('cancelled'));
    await expect(waiting).rejects.toThrow('cancelled');
    release();
    const again = await sem.acquire();
    expect(sem.inUse).toBe(1);
    again();
  });
});

describe('TokenBucket', () => {
  it('lets a full minute of budget through at once, then makes the caller wait for refill', async () => {
    const bucket = new TokenBucket(600); // 10 per second
    const t0 = Date.now();
    await bucket.take(600);
    expect(Date.now() - t0).toBeLessThan(50);
    await bucket.take(3); // needs ~300 ms of refill
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  });
});

describe('EndpointLimiter', () => {
  it('applies requests-per-minute on top of concurrency', async () => {
    const limiter = new EndpointLimiter({ concurrency: 10, requestsPerMinute: 1200 }); // 20/s after the burst
    const t0 = Date.now();
    for (let i = 0; i < 1205; i++) (await limiter.acquire(1))();
    // 1200 pass as the initial burst; 5 more need ~250 ms of refill.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(200);
  });
});
