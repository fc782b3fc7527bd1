/**
 * Claims on LLM requests before they are sent, so that overlapping attempts of one batch (a
 * start-to-close timeout fired while the first attempt still runs, a worker presumed dead but
 * still working) do not both pay for the same call: the first attempt to claim a request sends
 * it, the others wait for its logged answer. A claim is a row with a lease that its holder renews
 * while the request runs; when a holder dies the lease lapses and a waiting attempt takes over
 * (the one case where a call may be paid twice: the gateway then logs a `duplicate`).
 *
 * Looking for a logged answer and claiming are one statement, written for many requests at once
 * (group commit). A claim whose answer is logged is not deleted but marked answered (its lease
 * set to `infinity`) by the statement that logs the answer: a claim taken in a statement whose
 * snapshot predates that answer then meets the marked row instead of an empty slot, and waits —
 * there is no window where neither the answer nor the claim is visible. A stage iteration's
 * claims are deleted when it finishes (`deleteStageClaims`).
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { retryOnConnectionLoss, type Db } from '../db/connection';
import { GroupCommit, PER_CALL_STATEMENT_INTERVAL_MS } from '../db/group-commit';
import { compositeKey } from '../composite-key';
import { RenewalTimer } from '../renewal-timer';
import { sleep } from './limiter';

export interface ClaimKey {
  campaignId: string;
  stage: string;
  iteration: number;
  requestHash: string;
}

export interface ClaimOptions {
  /** How long a claim holds without renewal; a dead holder blocks others at most this long. */
  leaseMs: number;
  /** How often a waiting attempt looks for the answer (or a lapsed claim). */
  pollMs: number;
}

export const DEFAULT_CLAIM_OPTIONS: ClaimOptions = { leaseMs: 15_000, pollMs: 250 };

/** How long a claim statement cut off by a database restart is tried again. */
const RECONNECT_RETRY_MS = 30_000;

/** The `ok` row of a request in `llm_calls`. */
export interface LoggedAnswer {
  id: string;
  response: unknown;
  prompt_tokens: number;
  completion_tokens: number;
  cost_usd: number;
}

/** A claim held by this attempt: renewed until answered (by the log statement) or released. */
export interface HeldClaim {
  readonly owner: string;
  /** The answer is logged (and the claim marked answered with it): stop renewing. */
  answered(): void;
  /** Gives the claim up (the request failed): another attempt may send it. */
  release(): Promise<void>;
}

type Lookup = { answer: LoggedAnswer } | { claimed: true } | { contested: true };

interface LookupItem {
  key: ClaimKey;
  owner: string;
}

/** Marks the claims of just-logged answers answered: used inside the statement that logs them. */
export const ANSWERED_LEASE = sql<Date>`'infinity'::timestamptz`;

export class RequestClaims {
  private readonly lookups: GroupCommit<LookupItem, Lookup>;
  /** Claims this process holds, by owner, renewed together. */
  private readonly held = new Map<string, ClaimKey>();
  private readonly renewal: RenewalTimer;

  constructor(
    private readonly db: Db,
    private readonly opts: ClaimOptions = DEFAULT_CLAIM_OPTIONS,
  ) {
    // Idempotent per owner (a claim already ours is ours again), so a statement cut off by a
    // database restart may simply run again.
    this.lookups = new GroupCommit(
      (items) => retryOnConnectionLoss(() => this.lookupOrClaim(items), RECONNECT_RETRY_MS),
      { minIntervalMs: PER_CALL_STATEMENT_INTERVAL_MS },
    );
    this.renewal = new RenewalTimer(this.opts.leaseMs / 3, () => this.renew());
  }

  /**
   * Returns the logged answer of `key` when there is one; otherwise waits until this attempt holds
   * the claim (then returns it, to send the request) or until `answered` finds the answer another
   * attempt logged meanwhile.
   */
  async claimOrWait<T>(
    key: ClaimKey,
    answered: () => Promise<T | null>,
    fromLog: (row: LoggedAnswer) => T,
    signal?: AbortSignal,
  ): Promise<{ claim: HeldClaim } | { answer: T }> {
    const owner = randomUUID();
    const first = await this.lookups.submit({ key, owner });
    if ('answer' in first) return { answer: fromLog(first.answer) };
    if ('claimed' in first) return { claim: this.hold(key, owner) };
    for (;;) {
      const answer = await answered();
      if (answer !== null) return { answer };
      await sleep(this.opts.pollMs, signal);
      if (await retryOnConnectionLoss(() => this.tryTake(key, owner), RECONNECT_RETRY_MS)) {
        const claim = this.hold(key, owner);
        // The holder before us may have logged its answer between our look and our claim.
        const late = await answered();
        if (late === null) return { claim };
        await claim.release();
        return { answer: late };
      }
    }
  }

  /**
   * One statement for a batch: the logged answers of the keys that have one, and a claim on each
   * of the others — taken when nobody holds it or its lease lapsed. A key asked twice in one batch
   * is claimed once; the other asker waits like any contender.
   */
  private async lookupOrClaim(items: LookupItem[]): Promise<Lookup[]> {
    const firstOf = new Map<string, number>();
    const unique: number[] = [];
    items.forEach((it, i) => {
      const k = compositeKey(it.key.campaignId, it.key.stage, it.key.iteration, it.key.requestHash);
      if (!firstOf.has(k)) {
        firstOf.set(k, i);
        unique.push(i);
      }
    });
    const col = <V>(f: (it: LookupItem) => V) => unique.map((i) => f(items[i] as LookupItem));
    const { rows } = await sql<LoggedAnswer & { ord: number; taken: boolean }>`
      with k as (
        select * from unnest(${col((it) => it.key.campaignId)}::text[], ${col((it) => it.key.stage)}::text[],
          ${col((it) => it.key.iteration)}::int[], ${col((it) => it.key.requestHash)}::text[],
          ${col((it) => it.owner)}::text[], ${unique}::int[])
          as k(campaign_id, stage, iteration, request_hash, owner, ord)
      ), found as (
        select k.ord, c.id, c.response, c.prompt_tokens, c.completion_tokens, c.cost_usd
        from k join llm_calls c on c.campaign_id = k.campaign_id and c.stage = k.stage
          and c.iteration = k.iteration and c.request_hash = k.request_hash and c.status = 'ok'
      ), taken as (
        insert into llm_call_claims (campaign_id, stage, iteration, request_hash, owner, lease_until)
        select k.campaign_id, k.stage, k.iteration, k.request_hash, k.owner,
          now() + make_interval(secs => ${this.opts.leaseMs / 1000})
        from k where k.ord not in (select ord from found)
        on conflict (campaign_id, stage, iteration, request_hash) do update
          set owner = excluded.owner, lease_until = excluded.lease_until
          where llm_call_claims.lease_until < now() or llm_call_claims.owner = excluded.owner
        returning owner
      )
      select k.ord, f.id, f.response, f.prompt_tokens, f.completion_tokens, f.cost_usd,
        (t.owner is not null) as taken
      from k left join found f on f.ord = k.ord left join taken t on t.owner = k.owner`.execute(this.db);
    const byOrd = new Map(rows.map((r) => [r.ord, r]));
    return items.map((_, i): Lookup => {
      const row = byOrd.get(i);
      if (!row) return { contested: true }; // asked twice in this batch: the first asker decides
      if (row.id !== null) return { answer: row };
      return row.taken ? { claimed: true } : { contested: true };
    });
  }

  /** Takes the claim when nobody holds it or its lease lapsed. */
  private async tryTake(key: ClaimKey, owner: string): Promise<boolean> {
    const row = await this.db
      .insertInto('llm_call_claims')
      .values({
        campaign_id: key.campaignId,
        stage: key.stage,
        iteration: key.iteration,
        request_hash: key.requestHash,
        owner,
        lease_until: this.leaseEnd(),
      })
      .onConflict((oc) =>
        oc
          .columns(['campaign_id', 'stage', 'iteration', 'request_hash'])
          .doUpdateSet({ owner, lease_until: this.leaseEnd() })
          .where((eb) =>
            eb.or([
              eb('llm_call_claims.lease_until', '<', sql<Date>`now()`),
              eb('llm_call_claims.owner', '=', owner),
            ]),
          ),
      )
      .returning('owner')
      .executeTakeFirst();
    return row?.owner === owner;
  }

  private leaseEnd() {
    return sql<Date>`now() + make_interval(secs => ${this.opts.leaseMs / 1000})`;
  }

  private hold(key: ClaimKey, owner: string): HeldClaim {
    this.held.set(owner, key);
    this.renewal.start();
    const forget = () => {
      this.held.delete(owner);
      if (this.held.size === 0) this.renewal.stop();
    };
    return {
      owner,
      answered: forget,
      release: async () => {
        forget();
        await this.db
          .deleteFrom('llm_call_claims')
          .where('campaign_id', '=', key.campaignId)
          .where('stage', '=', key.stage)
          .where('iteration', '=', key.iteration)
          .where('request_hash', '=', key.requestHash)
          .where('owner', '=', owner)
          .where('lease_until', '<>', ANSWERED_LEASE)
          .execute();
      },
    };
  }

  /**
   * Pushes the lease of every claim this process holds; a missed renewal only risks a logged
   * duplicate. Rows another statement has locked are left out (`skip locked`): they are being
   * marked answered or given back right now, and waiting on them while holding the others is how
   * this update and the logging of answers deadlocked (each locks its rows in its own order), and
   * the deadlock's victim — the answers of a whole group commit — was paid for again.
   */
  private async renew(): Promise<void> {
    if (this.held.size === 0) return;
    const owners = [...this.held.keys()];
    const keys = [...this.held.values()];
    await sql`
      with mine as (
        select c.ctid as row from llm_call_claims c
        join unnest(${keys.map((k) => k.campaignId)}::text[], ${keys.map((k) => k.stage)}::text[],
          ${keys.map((k) => k.iteration)}::int[], ${keys.map((k) => k.requestHash)}::text[], ${owners}::text[])
          as k(campaign_id, stage, iteration, request_hash, owner)
        on c.campaign_id = k.campaign_id and c.stage = k.stage and c.iteration = k.iteration
          and c.request_hash = k.request_hash and c.owner = k.owner
        where c.lease_until <> 'infinity'
        for update of c skip locked
      )
      update llm_call_claims c set lease_until = now() + make_interval(secs => ${this.opts.leaseMs / 1000})
      from mine where c.ctid = mine.row`
      .execute(this.db)
      .catch(() => undefined);
  }
}

/** Forgets a finished stage iteration's claims: its answers are all logged by now. */
export async function deleteStageClaims(
  db: Db,
  key: { campaignId: string; stage: string; iteration: number },
): Promise<void> {
  await db
    .deleteFrom('llm_call_claims')
    .where('campaign_id', '=', key.campaignId)
    .where('stage', '=', key.stage)
    .where('iteration', '=', key.iteration)
    .execute();
}
