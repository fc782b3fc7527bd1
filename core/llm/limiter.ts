/**
 * Per-endpoint limits that hold across every worker process and machine, kept in Postgres
 * (migration 006): a lease per request in flight (concurrency), a token bucket row per endpoint
 * (requests and tokens per minute) changed under a row lock, and a `blocked_until` that a
 * 429's Retry-After sets for every caller of the endpoint.
 *
 * Leases expire unless renewed: the limiter renews the leases of its process every third of the
 * TTL, so a killed worker's slots come back within one TTL. In front of the database each process
 * queues its waiters per endpoint (FIFO) and only the head one asks Postgres, with a jittered
 * wait between asks — one poller per process and endpoint, however many requests wait.
 *
 * A slot given back passes directly (no round trip) to the process's next request for the same
 * endpoint — one waiting now, or one coming within the slot's time left — when the endpoint has no
 * per-minute rates (those charge each request in the shared buckets) and the process knows of no
 * block. A slot is the process's for at most `handoverMs` after Postgres granted it, then goes back,
 * so other processes get their turn and a Retry-After set elsewhere is seen within that time; an
 * idle slot still counts against the endpoint's concurrency until then, so the limit holds as is.
 * A slot passed on carries what its last holder left with it (`Lease.note`; the gateway leaves the
 * budget as the statement logging its answer read it).
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { sql } from 'kysely';
import { retryOnConnectionLoss, type Db } from '../db/connection';
import { GroupCommit } from '../db/group-commit';
import { RenewalTimer } from '../renewal-timer';

export interface EndpointLimits {
  concurrency: number;
  requestsPerMinute?: number | undefined;
  tokensPerMinute?: number | undefined;
}

/** A request slot at an endpoint; release it once the answer is handled. Never rejects. */
export interface Lease {
  /**
   * What the slot's last holder in this process learned while it held the slot, left with it
   * (`release(note)`) for the next; undefined for a slot fresh from Postgres.
   */
  readonly note: unknown;
  release(note?: unknown): Promise<void>;
}

export interface EndpointLimiterOptions {
  /**
   * How long a lease lives unrenewed (default 20 s, the batches' heartbeat timeout): a dead
   * worker's slots come back after it, as its batches do.
   */
  leaseTtlMs?: number;
  /** Mean wait before asking again for a free slot (default 50 ms, jittered ±50 %). */
  slotPollMs?: number;
  /** Names this process's leases (default host:pid:random). */
  holder?: string;
  /** How long after its grant a slot may pass between this process's requests (default 2 s; 0: never). */
  handoverMs?: number;
}

/** A bucket holds this many seconds of its rate: the burst a fresh or idle endpoint allows. */
export const BURST_SECONDS = 10;
/** The longest a Retry-After blocks an endpoint: a bad header must not stall a campaign for days. */
export const MAX_BLOCK_MS = 10 * 60_000;
/** How often a process that holds slots of a full endpoint asks Postgres for one more. */
const HOLDER_SLOT_POLL_MS = 250;
/** Waits are cut into pieces of at most this, so a closed limiter or an aborted head is noticed. */
const MAX_NAP_MS = 1_000;

/**
 * The endpoint's identity in the shared tables: the base URL without userinfo or query (either
 * may carry a key) and without a trailing slash, then the model.
 */
export function endpointKey(baseURL: string, model: string): string {
  let base = baseURL;
  try {
    const url = new URL(baseURL);
    url.username = '';
    url.password = '';
    url.search = '';
    url.hash = '';
    base = url.toString();
  } catch {
    // Specs are validated as URLs; keep whatever came if not.
  }
  return `${base.replace(/\/+$/, '')}|${model}`;
}

/** Bucket size of a per-minute rate. */
export function burstOf(perMinute: number): number {
  return Math.max(1, (perMinute * BURST_SECONDS) / 60);
}

/** The level of a bucket after `elapsedMs` of refill; null (never used) counts as full. */
export function refill(level: number | null, perMinute: number, elapsedMs: number): number {
  const cap = burstOf(perMinute);
  if (level === null) return cap;
  return Math.min(cap, level + (Math.max(0, elapsedMs) * perMinute) / 60_000);
}

/** The endpoint's shared state as one acquirer sees it, at the database's clock. */
export interface EndpointState {
  requestBudget: number | null;
  tokenBudget: number | null;
  /** Since the buckets were last written. */
  elapsedMs: number;
  /** Until `blocked_until` (≤ 0: not blocked). */
  blockedMs: number;
  /** Unexpired leases. */
  liveLeases: number;
}

export type Decision =
  | { grant: true; requestBudget: number | null; tokenBudget: number | null }
  | { grant: false; waitFor: 'blocked' | 'slot' | 'rate'; waitMs: number };

/**
 * Whether one more request may start now, and the buckets after it if so; otherwise what it
 * waits for and how long (a slot: unknown, the caller polls). Buckets may go negative: a request
 * estimated above the burst goes once the bucket is full, and the next ones wait for the debt.
 */
export function decide(limits: EndpointLimits, state: EndpointState, estimatedTokens: number): Decision {
  if (state.blockedMs > 0) return { grant: false, waitFor: 'blocked', waitMs: state.blockedMs };
  if (state.liveLeases >= limits.concurrency) return { grant: false, waitFor: 'slot', waitMs: 0 };
  let waitMs = 0;
  let requestBudget: number | null = null;
  let tokenBudget: number | null = null;
  if (limits.requestsPerMinute) {
    const rpm = limits.requestsPerMinute;
    requestBudget = refill(state.requestBudget, rpm, state.elapsedMs);
    if (requestBudget < 1) waitMs = Math.max(waitMs, ((1 - requestBudget) / rpm) * 60_000);
  }
  if (limits.tokensPerMinute) {
    const tpm = limits.tokensPerMinute;
    tokenBudget = refill(state.tokenBudget, tpm, state.elapsedMs);
    const need = Math.min(estimatedTokens, burstOf(tpm));
    if (tokenBudget < need) waitMs = Math.max(waitMs, ((need - tokenBudget) / tpm) * 60_000);
  }
  if (waitMs > 0) return { grant: false, waitFor: 'rate', waitMs };
  return {
    grant: true,
    requestBudget: requestBudget === null ? null : requestBudget - 1,
    tokenBudget: tokenBudget === null ? null : tokenBudget - estimatedTokens,
  };
}

interface Waiter {
  limits: EndpointLimits;
  tokens: number;
  resolve(lease: Lease): void;
  reject(err: unknown): void;
  /** Removes the abort listener. */
  detach(): void;
}

interface IdleSlot {
  id: string;
  grantedAt: number;
  /** Left by its last holder (Lease.note). */
  note: unknown;
  /** Gives the slot back to Postgres when its time is up. */
  expiry: NodeJS.Timeout;
}

interface EndpointQueue {
  waiters: Waiter[];
  pumping: boolean;
  /** Ends the head's wait between asks early: a slot of this process just went back to Postgres. */
  wake: (() => void) | null;
}

type Attempt = { leases: Lease[] } | { waitFor: 'blocked' | 'slot' | 'rate'; waitMs: number };

export class EndpointLimiter {
  private readonly leaseTtlMs: number;
  private readonly slotPollMs: number;
  private readonly handoverMs: number;
  readonly holder: string;
  /** Blocks this process set (Retry-After), by endpoint: epoch ms. */
  private readonly blockedUntil = new Map<string, number>();
  private readonly queues = new Map<string, EndpointQueue>();
  /** Slots given back but kept for the process's next request, by endpoint (oldest first). */
  private readonly idle = new Map<string, IdleSlot[]>();
  /** The leases this process holds (id → endpoint), renewed together. */
  private readonly held = new Map<string, string>();
  private readonly renewal: RenewalTimer;
  private readonly closing = new AbortController();
  /** Slots given back to Postgres, many per statement. */
  private readonly returns: GroupCommit<string, void>;

  constructor(
    private readonly db: Db,
    opts: EndpointLimiterOptions = {},
  ) {
    this.leaseTtlMs = opts.leaseTtlMs ?? 20_000;
    this.slotPollMs = opts.slotPollMs ?? 50;
    this.handoverMs = opts.handoverMs ?? 2_000;
    this.holder = opts.holder ?? `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.renewal = new RenewalTimer(Math.max(100, this.leaseTtlMs / 3), () => this.renew());
    // Idempotent, so tried again through a database restart; a slot not given back lapses with its TTL.
    this.returns = new GroupCommit(async (ids) => {
      await retryOnConnectionLoss(
        () => sql`DELETE FROM endpoint_leases WHERE id = ANY(${ids}::bigint[])`.execute(this.db),
        this.leaseTtlMs,
      );
      return ids.map(() => undefined);
    });
  }

  /** Waits for a slot and the rate budget of the endpoint, in this process's FIFO order. */
  acquire(
    key: string,
    limits: EndpointLimits,
    estimatedTokens: number,
    signal?: AbortSignal,
  ): Promise<Lease> {
    if (signal?.aborted) return Promise.reject(signal.reason ?? new Error('aborted'));
    if (this.closing.signal.aborted) return Promise.reject(new Error('endpoint limiter closed'));
    if (!this.queues.get(key)?.waiters.length) {
      const slot = this.takeIdle(key, limits);
      if (slot) return Promise.resolve(slot);
    }
    let queue = this.queues.get(key);
    if (!queue) {
      queue = { waiters: [], pumping: false, wake: null };
      this.queues.set(key, queue);
    }
    const q = queue;
    return new Promise<Lease>((resolve, reject) => {
      const onAbort = () => {
        const i = q.waiters.indexOf(waiter);
        if (i >= 0) q.waiters.splice(i, 1);
        reject(signal?.reason ?? new Error('aborted'));
      };
      const waiter: Waiter = {
        limits,
        tokens: estimatedTokens,
        resolve,
        reject,
        detach: () => signal?.removeEventListener('abort', onAbort),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      q.waiters.push(waiter);
      if (!q.pumping) {
        q.pumping = true;
        void this.pump(key, q);
      }
    });
  }

  /**
   * Makes every caller of the endpoint wait `ms` (a 429's Retry-After), on every worker; an
   * earlier block that lasts longer is kept.
   */
  async block(key: string, ms: number): Promise<void> {
    const until = Math.min(Math.max(0, ms), MAX_BLOCK_MS);
    this.blockedUntil.set(key, Math.max(this.blockedUntil.get(key) ?? 0, Date.now() + until));
    await sql`
      INSERT INTO endpoint_limits (endpoint, blocked_until)
      VALUES (${key}, clock_timestamp() + make_interval(secs => ${until / 1000}))
      ON CONFLICT (endpoint) DO UPDATE
        SET blocked_until = GREATEST(endpoint_limits.blocked_until, excluded.blocked_until)
    `.execute(this.db);
  }

  /** Stops renewing and gives back this process's leases (best effort); waiters are rejected. */
  async close(): Promise<void> {
    this.closing.abort();
    this.renewal.stop();
    for (const slots of this.idle.values()) for (const slot of slots) clearTimeout(slot.expiry);
    this.idle.clear();
    for (const q of this.queues.values()) {
      for (const w of q.waiters.splice(0)) {
        w.detach();
        w.reject(new Error('endpoint limiter closed'));
      }
    }
    this.held.clear();
    await this.db
      .deleteFrom('endpoint_leases')
      .where('holder', '=', this.holder)
      .execute()
      .catch(() => undefined);
  }

  /** Serves the endpoint's waiters in order until none is left. */
  private async pump(key: string, q: EndpointQueue): Promise<void> {
    try {
      while (q.waiters.length > 0 && !this.closing.signal.aborted) {
        const head = q.waiters[0];
        if (!head) break;
        let attempt: Attempt;
        try {
          // Without per-minute rates, one ask takes a slot for every request waiting here.
          const want = reusable(head.limits) ? q.waiters.length : 1;
          attempt = await this.tryAcquire(key, head.limits, head.tokens, want);
        } catch (err) {
          // The database is unreachable: this request fails (its activity retries); the next asks anew.
          const i = q.waiters.indexOf(head);
          if (i >= 0) {
            q.waiters.splice(i, 1);
            head.detach();
            head.reject(err);
          }
          continue;
        }
        if ('leases' in attempt) {
          const [first, ...more] = attempt.leases;
          const i = q.waiters.indexOf(head);
          if (first && i >= 0) {
            q.waiters.splice(i, 1);
            head.detach();
            head.resolve(first);
          } else {
            await first?.release(); // its caller gave up meanwhile
          }
          // The others go to the next waiters (or stay idle for the next requests).
          for (const lease of more) await lease.release();
          continue;
        }
        // Jitter spreads the processes' asks so that none is always first. While this process
        // holds slots of the endpoint, the next free one is most likely its own (passed on without
        // Postgres), so it asks less often.
        const slotPoll = this.holdsSlotOf(key)
          ? Math.max(this.slotPollMs, HOLDER_SLOT_POLL_MS)
          : this.slotPollMs;
        const base = attempt.waitFor === 'slot' ? slotPoll : attempt.waitMs;
        const jitter = attempt.waitFor === 'slot' ? base * (Math.random() - 0.5) : Math.random() * 20;
        const nap = new AbortController();
        q.wake = () => nap.abort();
        await napMs(Math.min(MAX_NAP_MS, base + jitter), this.closing.signal, nap.signal);
        q.wake = null;
      }
    } finally {
      q.pumping = false;
      if (q.waiters.length === 0) this.queues.delete(key);
    }
  }

  /** One try, in one transaction holding the endpoint's row lock. */
  private async tryAcquire(
    key: string,
    limits: EndpointLimits,
    tokens: number,
    want: number,
  ): Promise<Attempt> {
    const ids = await this.db.transaction().execute(async (trx) => {
      const lock = async () =>
        sql`SELECT 1 FROM endpoint_limits WHERE endpoint = ${key} FOR UPDATE`.execute(trx);
      if ((await lock()).rows.length === 0) {
        await trx
          .insertInto('endpoint_limits')
          .values({ endpoint: key })
          .onConflict((oc) => oc.column('endpoint').doNothing())
          .execute();
        await lock();
      }
      // One clock reading for the whole decision (the database's: the same for every machine).
      const { rows } = await sql<{
        request_budget: number | null;
        token_budget: number | null;
        elapsed_ms: number;
        blocked_ms: number;
        now: string;
        live: number;
        expired: number;
      }>`
        WITH t AS (SELECT clock_timestamp() AS now)
        SELECT l.request_budget, l.token_budget,
          (extract(epoch FROM t.now - l.refilled_at) * 1000)::float8 AS elapsed_ms,
          coalesce(extract(epoch FROM l.blocked_until - t.now) * 1000, 0)::float8 AS blocked_ms,
          t.now::text AS now,
          (SELECT count(*) FROM endpoint_leases e WHERE e.endpoint = l.endpoint AND e.expires_at > t.now)::int AS live,
          (SELECT count(*) FROM endpoint_leases e WHERE e.endpoint = l.endpoint AND e.expires_at <= t.now)::int AS expired
        FROM endpoint_limits l, t
        WHERE l.endpoint = ${key}
      `.execute(trx);
      const row = rows[0];
      if (!row) throw new Error(`endpoint_limits row for ${key} vanished`);
      if (row.expired > 0) {
        // Leases of processes that died without giving them back.
        await sql`DELETE FROM endpoint_leases WHERE endpoint = ${key} AND expires_at <= ${row.now}::timestamptz`.execute(
          trx,
        );
      }
      const decision = decide(
        limits,
        {
          requestBudget: row.request_budget,
          tokenBudget: row.token_budget,
          elapsedMs: row.elapsed_ms,
          blockedMs: row.blocked_ms,
          liveLeases: row.live,
        },
        tokens,
      );
      if (!decision.grant) return decision;
      if (decision.requestBudget !== null || decision.tokenBudget !== null) {
        await sql`
          UPDATE endpoint_limits
          SET request_budget = ${decision.requestBudget}, token_budget = ${decision.tokenBudget},
              refilled_at = ${row.now}::timestamptz
          WHERE endpoint = ${key}
        `.execute(trx);
      }
      // decide() charged the buckets for one request; only a rate-free endpoint grants more at once.
      const n = reusable(limits) ? Math.max(1, Math.min(want, limits.concurrency - row.live)) : 1;
      const leases = await sql<{ id: string }>`
        INSERT INTO endpoint_leases (endpoint, holder, acquired_at, expires_at)
        SELECT ${key}, ${this.holder}, ${row.now}::timestamptz,
               ${row.now}::timestamptz + make_interval(secs => ${this.leaseTtlMs / 1000})
        FROM generate_series(1, ${n})
        RETURNING id
      `.execute(trx);
      if (leases.rows.length === 0) throw new Error(`no lease row returned for ${key}`);
      return leases.rows.map((r) => String(r.id));
    });
    if (!Array.isArray(ids)) return { waitFor: ids.waitFor, waitMs: ids.waitMs };
    const grantedAt = Date.now();
    return { leases: ids.map((id) => this.holdLease(key, id, grantedAt, reusable(limits))) };
  }

  private holdLease(key: string, id: string, grantedAt: number, reuse: boolean, note?: unknown): Lease {
    this.held.set(id, key);
    this.renewal.start();
    let released = false;
    return {
      note,
      release: async (next?: unknown) => {
        if (released) return;
        released = true;
        if (reuse && this.keep(key, id, grantedAt, next)) return;
        await this.giveBack(id);
      },
    };
  }

  private holdsSlotOf(key: string): boolean {
    for (const k of this.held.values()) if (k === key) return true;
    return false;
  }

  /** Returns a slot to Postgres; one that cannot be deleted now expires within its TTL. */
  private async giveBack(id: string): Promise<void> {
    const key = this.held.get(id);
    this.held.delete(id);
    if (this.held.size === 0) this.renewal.stop();
    await this.returns.submit(id).catch(() => undefined);
    // A slot whose hold time ran out while requests here wait: ask for it again now, not at the
    // next poll (other processes asking meanwhile get their fair chance at it all the same).
    if (key !== undefined) this.queues.get(key)?.wake?.();
  }

  /**
   * Keeps a slot being given back for this process, with its note: passed to the endpoint's next
   * waiter, or kept idle for the next request until its time is up. False: it goes back to Postgres.
   */
  private keep(key: string, id: string, grantedAt: number, note: unknown): boolean {
    const left = grantedAt + this.handoverMs - Date.now();
    if (this.closing.signal.aborted || left <= 0) return false;
    if ((this.blockedUntil.get(key) ?? 0) > Date.now()) return false;
    const q = this.queues.get(key);
    const next = q?.waiters[0];
    if (q && next) {
      if (!reusable(next.limits)) return false;
      q.waiters.shift();
      next.detach();
      next.resolve(this.holdLease(key, id, grantedAt, true, note));
      return true;
    }
    const slots = this.idle.get(key) ?? [];
    const expiry = setTimeout(() => {
      const list = this.idle.get(key);
      const i = list?.findIndex((s) => s.id === id) ?? -1;
      if (!list || i < 0) return;
      list.splice(i, 1);
      if (list.length === 0) this.idle.delete(key);
      void this.giveBack(id);
    }, left);
    expiry.unref();
    slots.push({ id, grantedAt, note, expiry });
    this.idle.set(key, slots);
    return true;
  }

  /** An idle slot of the endpoint for a request without per-minute rates, if the process has one. */
  private takeIdle(key: string, limits: EndpointLimits): Lease | null {
    if (!reusable(limits) || (this.blockedUntil.get(key) ?? 0) > Date.now()) return null;
    const slots = this.idle.get(key);
    // The youngest: the older ones go back to Postgres first.
    const slot = slots?.pop();
    if (!slots || !slot) return null;
    if (slots.length === 0) this.idle.delete(key);
    clearTimeout(slot.expiry);
    return this.holdLease(key, slot.id, slot.grantedAt, true, slot.note);
  }

  /** Pushes the expiry of every lease this process holds; a missed renewal is retried next tick. */
  private async renew(): Promise<void> {
    if (this.held.size === 0) return;
    await sql`
      UPDATE endpoint_leases
      SET expires_at = clock_timestamp() + make_interval(secs => ${this.leaseTtlMs / 1000})
      WHERE holder = ${this.holder}
    `
      .execute(this.db)
      .catch(() => undefined);
  }
}

/** Whether a slot may pass between requests without Postgres: no shared bucket to charge. */
function reusable(limits: EndpointLimits): boolean {
  return !limits.requestsPerMinute && !limits.tokensPerMinute;
}

/** A wait that ends early (without error) when either signal aborts. */
function napMs(ms: number, signal: AbortSignal, wake: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || wake.aborted) return resolve();
    const timer = setTimeout(done, Math.max(1, ms));
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      wake.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
    wake.addEventListener('abort', done, { once: true });
  });
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
