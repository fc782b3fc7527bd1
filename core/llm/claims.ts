/**
 * Claims on LLM requests before they are sent, so that overlapping attempts of one batch (a
 * start-to-close timeout fired while the first attempt still runs, a worker presumed dead but
 * still working) do not both pay for the same call: the first attempt to claim a request sends
 * it, the others wait for its logged answer. A claim is a row with a lease that its holder renews
 * while the request runs; when a holder dies the lease lapses and a waiting attempt takes over
 * (the one case where a call may be paid twice: the gateway then logs a `duplicate`).
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../db/connection';
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

/** A claim held by this attempt: renewed until released. */
export interface HeldClaim {
  release(): Promise<void>;
}

export class RequestClaims {
  constructor(
    private readonly db: Db,
    private readonly opts: ClaimOptions = DEFAULT_CLAIM_OPTIONS,
  ) {}

  /**
   * Waits until this attempt holds the claim on `key` (then returns it, to send the request), or
   * until `answered` finds the answer another attempt logged meanwhile (then returns that).
   */
  async claimOrWait<T>(
    key: ClaimKey,
    answered: () => Promise<T | null>,
    signal?: AbortSignal,
  ): Promise<{ claim: HeldClaim } | { answer: T }> {
    const owner = randomUUID();
    for (;;) {
      if (await this.tryTake(key, owner)) {
        const claim = this.hold(key, owner);
        // The holder before us may have logged its answer between our look and our claim.
        const answer = await answered();
        if (answer === null) return { claim };
        await claim.release();
        return { answer };
      }
      const answer = await answered();
      if (answer !== null) return { answer };
      await sleep(this.opts.pollMs, signal);
    }
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
          .where('llm_call_claims.lease_until', '<', sql<Date>`now()`),
      )
      .returning('owner')
      .executeTakeFirst();
    return row?.owner === owner;
  }

  private leaseEnd() {
    return sql<Date>`now() + make_interval(secs => ${this.opts.leaseMs / 1000})`;
  }

  /** Renews the lease while the request runs; release deletes the claim (if still ours). */
  private hold(key: ClaimKey, owner: string): HeldClaim {
    const renew = setInterval(() => {
      void this.db
        .updateTable('llm_call_claims')
        .set({ lease_until: this.leaseEnd() })
        .where('campaign_id', '=', key.campaignId)
        .where('stage', '=', key.stage)
        .where('iteration', '=', key.iteration)
        .where('request_hash', '=', key.requestHash)
        .where('owner', '=', owner)
        .execute()
        .catch(() => undefined); // a missed renewal only risks a duplicate, which is logged as one
    }, this.opts.leaseMs / 3);
    renew.unref();
    return {
      release: async () => {
        clearInterval(renew);
        await this.db
          .deleteFrom('llm_call_claims')
          .where('campaign_id', '=', key.campaignId)
          .where('stage', '=', key.stage)
          .where('iteration', '=', key.iteration)
          .where('request_hash', '=', key.requestHash)
          .where('owner', '=', owner)
          .execute();
      },
    };
  }
}
