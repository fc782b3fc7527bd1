/**
 * The endpoint limiter against the suite's real Postgres. Each limiter instance stands for one
 * worker process (its own holder and FIFO); each test uses an endpoint key of its own.
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createDb, type Db } from '../../core/db/connection';
import { EndpointLimiter, burstOf, decide, endpointKey, type EndpointState } from '../../core/llm/limiter';
import { estimateRequestTokens } from '../../core/llm/token-estimate';

let db: Db;
const limiters: EndpointLimiter[] = [];

function limiter(opts: ConstructorParameters<typeof EndpointLimiter>[1] = {}): EndpointLimiter {
  const l = new EndpointLimiter(db, { slotPollMs: 10, ...opts });
  limiters.push(l);
  return l;
}

function freshKey(): string {
  return endpointKey(`http://limiter-test-${randomBytes(4).toString('hex')}.local/v1`, 'm');
}

async function leaseRows(key: string): Promise<Array<{ id: string; holder: string; expires_at: Date }>> {
  return db
    .selectFrom('endpoint_leases')
    .select(['id', 'holder', 'expires_at'])
    .where('endpoint', '=', key)
    .execute();
}

beforeAll(() => {
  db = createDb(inject('databaseUrl'), { max: 10 });
});

afterAll(async () => {
  for (const l of limiters) await l.close();
  await db?.destroy();
});

describe('endpointKey', () => {
  it('drops userinfo, query and a trailing slash, and names the model', () => {
    expect(endpointKey('https://user:s3cret@llm.example/v1/', 'gpt-x')).toBe('https://llm.example/v1|gpt-x');
    expect(endpointKey('https://llm.example/v1?api-key=s3cret', 'gpt-x')).toBe(
      'https://llm.example/v1|gpt-x',
    );
    expect(endpointKey('https://llm.example/v1', 'gpt-x')).toBe('https://llm.example/v1|gpt-x');
  });
});

describe('decide', () => {
  const idle: EndpointState = {
    requestBudget: null,
    tokenBudget: null,
    elapsedMs: 0,
    blockedMs: 0,
    liveLeases: 0,
  };

  it('grants from a full bucket and charges it', () => {
    const d = decide({ concurrency: 2, requestsPerMinute: 60, tokensPerMinute: 6000 }, idle, 100);
    expect(d).toEqual({ grant: true, requestBudget: burstOf(60) - 1, tokenBudget: burstOf(6000) - 100 });
  });

  it('waits for a block, then for a slot, then for the rate', () => {
    const limits = { concurrency: 2, requestsPerMinute: 60 };
    expect(decide(limits, { ...idle, blockedMs: 1500, liveLeases: 5 }, 1)).toEqual({
      grant: false,
      waitFor: 'blocked',
      waitMs: 1500,
    });
    expect(decide(limits, { ...idle, liveLeases: 2 }, 1)).toMatchObject({ grant: false, waitFor: 'slot' });
    // Half a request in the bucket at 1 request/s: half a second to go.
    expect(decide(limits, { ...idle, requestBudget: 0.5 }, 1)).toEqual({
      grant: false,
      waitFor: 'rate',
      waitMs: 500,
    });
    // …which the time since the last write may already have refilled.
    expect(decide(limits, { ...idle, requestBudget: 0.5, elapsedMs: 600 }, 1)).toMatchObject({ grant: true });
  });

  it('lets a request above the burst go from a full bucket and makes the next ones pay its debt', () => {
    const limits = { concurrency: 8, tokensPerMinute: 600 }; // burst: 100 tokens
    const first = decide(limits, idle, 400);
    expect(first).toEqual({ grant: true, requestBudget: null, tokenBudget: -300 });
    // The next request of 10 tokens waits for 310 tokens at 10 a second.
    const next = decide(limits, { ...idle, tokenBudget: -300 }, 10);
    expect(next).toMatchObject({ grant: false, waitFor: 'rate' });
    expect(!next.grant && next.waitMs).toBeCloseTo(31_000, 3);
  });
});

describe('estimateRequestTokens', () => {
  it('counts every sequence a request asks for', () => {
    const messages = [{ role: 'user', content: 'x'.repeat(70) }];
    const one = estimateRequestTokens({ messages, max_tokens: 100 });
    expect(estimateRequestTokens({ messages, max_tokens: 100, n: 10 })).toBe(one + 900);
    expect(estimateRequestTokens({ messages, max_tokens: 100, n: 2, best_of: 5 })).toBe(one + 400);
    expect(estimateRequestTokens({ messages })).toBe(one - 100 + 512);
  });
});

describe('EndpointLimiter (Postgres)', () => {
  it('holds concurrency across limiter instances (processes)', async () => {
    const key = freshKey();
    const processes = [limiter(), limiter(), limiter()];
    let running = 0;
    let peak = 0;
    await Promise.all(
      processes.flatMap((l) =>
        Array.from({ length: 8 }, async () => {
          const lease = await l.acquire(key, { concurrency: 3 }, 1);
          running++;
          peak = Math.max(peak, running);
          await new Promise((r) => setTimeout(r, 20));
          running--;
          await lease.release();
        }),
      ),
    );
    expect(peak).toBe(3);
    // Slots kept for each process's next request go back once their hold time is up.
    await expect.poll(() => leaseRows(key), { timeout: 5_000, interval: 50 }).toEqual([]);
  });

  it('passes a released slot to its next request without Postgres, and gives it back after handoverMs', async () => {
    const key = freshKey();
    const a = limiter({ handoverMs: 800 });
    const b = limiter({ handoverMs: 800 });
    const first = await a.acquire(key, { concurrency: 1 }, 1);
    const [row] = await leaseRows(key);
    expect(row?.id).toBeDefined();
    await first.release();
    // Kept: still A's row, and A's next request gets it at once while B must wait.
    expect((await leaseRows(key)).map((r) => r.id)).toEqual([row?.id]);
    const again = await a.acquire(key, { concurrency: 1 }, 1);
    expect((await leaseRows(key)).map((r) => r.id)).toEqual([row?.id]);
    await again.release();
    const t0 = Date.now();
    const other = await b.acquire(key, { concurrency: 1 }, 1);
    // B had it once A's hold (800 ms from the grant) was up, not before.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
    expect((await leaseRows(key)).map((r) => r.holder)).toEqual([b.holder]);
    await other.release();
    // With a per-minute rate each request is charged in the shared bucket: nothing is kept.
    const rated = freshKey();
    await (await a.acquire(rated, { concurrency: 1, requestsPerMinute: 600 }, 1)).release();
    expect(await leaseRows(rated)).toEqual([]);
  });

  it("passes a slot's note to its next holder in this process, waiting or not, and none with a slot from Postgres", async () => {
    const key = freshKey();
    const a = limiter({ handoverMs: 2_000 });
    const b = limiter({ handoverMs: 0 });
    const first = await a.acquire(key, { concurrency: 1 }, 1);
    expect(first.note).toBeUndefined();
    // To a request already waiting for the slot…
    const waiting = a.acquire(key, { concurrency: 1 }, 1);
    await first.release({ left: 'by the first' });
    const second = await waiting;
    expect(second.note).toEqual({ left: 'by the first' });
    // …and to one coming while the slot is idle; released without a note, it carries none.
    await second.release({ left: 'by the second' });
    const third = await a.acquire(key, { concurrency: 1 }, 1);
    expect(third.note).toEqual({ left: 'by the second' });
    await third.release();
    const fourth = await a.acquire(key, { concurrency: 1 }, 1);
    expect(fourth.note).toBeUndefined();
    await fourth.release({ left: 'by the fourth' });
    await a.close();
    // Another process gets the slot from Postgres: nothing of A's notes.
    const other = await b.acquire(key, { concurrency: 1 }, 1);
    expect(other.note).toBeUndefined();
    await other.release();
  });

  it('keeps no slot of an endpoint this process was told to hold back from', async () => {
    const key = freshKey();
    const a = limiter();
    await (await a.acquire(key, { concurrency: 2 }, 1)).release();
    expect(await leaseRows(key)).toHaveLength(1);
    const lease = await a.acquire(key, { concurrency: 2 }, 1);
    await a.block(key, 300);
    await lease.release();
    expect(await leaseRows(key)).toEqual([]);
    const t0 = Date.now();
    await (await a.acquire(key, { concurrency: 2 }, 1)).release();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(200);
  });

  it('gives a slot to another process once released, and serves one process in FIFO order', async () => {
    const key = freshKey();
    const a = limiter();
    const b = limiter();
    const held = await a.acquire(key, { concurrency: 1 }, 1);
    const order: number[] = [];
    const waiting = [1, 2, 3].map((i) =>
      b.acquire(key, { concurrency: 1 }, 1).then(async (lease) => {
        order.push(i);
        await lease.release();
      }),
    );
    // B cannot get the slot while A holds it (B asks every ~10 ms meanwhile).
    await new Promise((r) => setTimeout(r, 150));
    expect(order).toEqual([]);
    expect((await leaseRows(key)).map((r) => r.holder)).toEqual([a.holder]);
    await held.release();
    await Promise.all(waiting);
    expect(order).toEqual([1, 2, 3]);
  });

  it('does not count a lease that expired (its process died) and removes it', async () => {
    const key = freshKey();
    const l = limiter();
    await db.insertInto('endpoint_limits').values({ endpoint: key }).execute();
    await db
      .insertInto('endpoint_leases')
      .values({ endpoint: key, holder: 'dead-host:1:x', expires_at: sql<Date>`now() - interval '1 second'` })
      .execute();
    const lease = await l.acquire(key, { concurrency: 1 }, 1);
    expect((await leaseRows(key)).map((r) => r.holder)).toEqual([l.holder]);
    await lease.release();
  });

  it('renews the leases it holds past their TTL, and a released lease is gone', async () => {
    const key = freshKey();
    const l = limiter({ leaseTtlMs: 300, handoverMs: 0 });
    const lease = await l.acquire(key, { concurrency: 1 }, 1);
    const first = (await leaseRows(key))[0]?.expires_at;
    // Wait for a renewal (every TTL/3), seen in the row, then past the first expiry.
    await expect
      .poll(async () => (await leaseRows(key))[0]?.expires_at.getTime() ?? 0, {
        timeout: 5_000,
        interval: 50,
      })
      .toBeGreaterThan(first?.getTime() ?? Infinity);
    await new Promise((r) => setTimeout(r, 400));
    const [row] = await leaseRows(key);
    expect(row?.holder).toBe(l.holder);
    const dbNow = await sql<{ now: Date }>`SELECT clock_timestamp() AS now`.execute(db);
    expect(row?.expires_at.getTime()).toBeGreaterThan(dbNow.rows[0]?.now.getTime() ?? Infinity);
    await lease.release();
    expect(await leaseRows(key)).toEqual([]);
  });

  it('drops a waiter whose signal aborts, without leaking a slot', async () => {
    const key = freshKey();
    const a = limiter();
    const b = limiter();
    const held = await a.acquire(key, { concurrency: 1 }, 1);
    const ac = new AbortController();
    const waiting = b.acquire(key, { concurrency: 1 }, 1, ac.signal);
    ac.abort(new Error('cancelled'));
    await expect(waiting).rejects.toThrow('cancelled');
    await held.release();
    const again = await b.acquire(key, { concurrency: 1 }, 1);
    expect((await leaseRows(key)).map((r) => r.holder)).toEqual([b.holder]);
    await again.release();
  });

  it('lets no more than the burst plus the refill through, whichever process asks', async () => {
    const key = freshKey();
    const limits = { concurrency: 100, requestsPerMinute: 600 }; // burst 100, then 10 a second
    const a = limiter();
    const b = limiter();
    const wanted = burstOf(600) + 15;
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: wanted }, async (_, i) =>
        (await (i % 2 ? a : b).acquire(key, limits, 1)).release(),
      ),
    );
    // Granted ≤ burst + 10 × elapsed seconds, so the last 15 took at least ~1.5 s of refill.
    expect(Date.now() - t0).toBeGreaterThanOrEqual((wanted - burstOf(600) - 1) * 100);
  });

  it('blocks every process of an endpoint for a Retry-After', async () => {
    const key = freshKey();
    const a = limiter();
    // A process that keeps no slot asks Postgres for each request, and so sees the block at once;
    // one that keeps slots sees it when its slots' hold time is up (the test above).
    const b = limiter({ handoverMs: 0 });
    await (await b.acquire(key, { concurrency: 4 }, 1)).release();
    await a.block(key, 600);
    const blocked = await db
      .selectFrom('endpoint_limits')
      .select('blocked_until')
      .where('endpoint', '=', key)
      .executeTakeFirstOrThrow();
    expect(blocked.blocked_until).not.toBeNull();
    const t0 = Date.now();
    await (await b.acquire(key, { concurrency: 4 }, 1)).release();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(500);
    // A shorter block does not cut a longer one short.
    await a.block(key, 60_000);
    await a.block(key, 1);
    const kept = await sql<{ left_ms: number }>`
      SELECT (extract(epoch FROM blocked_until - clock_timestamp()) * 1000)::float8 AS left_ms
      FROM endpoint_limits WHERE endpoint = ${key}`.execute(db);
    expect(kept.rows[0]?.left_ms).toBeGreaterThan(50_000);
  });
});
