/**
 * Telling an outage from a bad request. Every worker notes each failed attempt that looks like the
 * endpoint being down (connection refused, 429, 5xx, timeouts) in `endpoint_health`, per stage
 * iteration and endpoint, and any success clears it: `failing_since` is when the endpoint last
 * stopped answering anyone. While it has answered nobody since a call began failing, that call
 * keeps trying (its in-activity attempts do not run out on an outage); once it has been down for
 * `outage.pauseAfter`, the call ends in EndpointOutageError and the campaign pauses. The rows are
 * also what `campaign status` shows as a stage's `retrying`.
 *
 * A success is written at once after this process saw the endpoint fail, otherwise at most once a
 * second per endpoint (SUCCESS_WRITE_EVERY_MS): another worker's outage clock is then reset within
 * a second of an answer, which `outage.pauseAfter` (minutes) does not notice, and a healthy endpoint
 * costs no write per call.
 */
import { sql } from 'kysely';
import OpenAI from 'openai';
import type { Db } from '../db/connection';
import { compositeKey } from '../composite-key';
import { durationMs } from '../duration';
import { OutageSchema } from '../spec';

export interface EndpointHealthKey {
  campaignId: string;
  stage: string;
  iteration: number;
  role: string;
  /** Scrubbed: no userinfo. */
  baseURL: string;
  model: string;
}

export interface OutageNote {
  /** Failed attempts since the endpoint last answered. */
  attempts: number;
  /** When it last stopped answering (the database's clock, epoch ms): identifies the outage. */
  failingSinceMs: number;
  downForMs: number;
  /** The campaign's `outage.pauseAfter` and `outage.probeEvery`. */
  pauseAfterMs: number;
  probeEveryMs: number;
}

export interface EndpointHealth {
  failed(key: EndpointHealthKey, lastError: string): Promise<OutageNote>;
  succeeded(key: EndpointHealthKey): Promise<void>;
}

/** The endpoint has been down for `outage.pauseAfter`: the campaign pauses until it answers. */
export class EndpointOutageError extends Error {
  override name = 'EndpointOutageError';
  constructor(
    message: string,
    /** The endpoint to probe, by role (the probe reads the rest from the spec), and how often. */
    readonly probe: { role: string; everyMs: number },
  ) {
    super(message);
  }
}

/**
 * Failures that say the endpoint is not serving, not that this request is bad or unknown: no
 * connection, timeouts, 5xx, and 408/429 (a 429 for ever is a quota run out). Any success in
 * between clears the count, so a busy endpoint that answers some calls never reaches a pause.
 */
export function isOutageFailure(err: unknown): boolean {
  if (err instanceof OpenAI.APIUserAbortError) return false;
  if (err instanceof OpenAI.APIConnectionError) return true; // refused, reset, timeouts
  if (!(err instanceof OpenAI.APIError) || typeof err.status !== 'number') return false;
  return err.status === 408 || err.status === 429 || err.status >= 500;
}

/** A healthy endpoint's successes are written at most this often per process. */
export const SUCCESS_WRITE_EVERY_MS = 1_000;

export function databaseEndpointHealth(db: Db): EndpointHealth {
  /** When this process last wrote a success, by endpoint; absent: write the next one. */
  const lastSuccessWrite = new Map<string, number>();
  const id = (k: EndpointHealthKey) =>
    compositeKey(k.campaignId, k.stage, k.iteration, k.role, k.baseURL, k.model);
  const where = (k: EndpointHealthKey) => sql`campaign_id = ${k.campaignId} and stage = ${k.stage}
    and iteration = ${k.iteration} and role = ${k.role} and base_url = ${k.baseURL} and model = ${k.model}`;
  return {
    async failed(k, lastError) {
      lastSuccessWrite.delete(id(k));
      const { rows } = await sql<{ attempts: number; since_ms: number; down_ms: number; outage: unknown }>`
        insert into endpoint_health as h
          (campaign_id, stage, iteration, role, base_url, model, failing_since, attempts, last_error)
        values (${k.campaignId}, ${k.stage}, ${k.iteration}, ${k.role}, ${k.baseURL}, ${k.model},
          now(), 1, ${lastError})
        on conflict (campaign_id, stage, iteration, role, base_url, model) do update set
          attempts = case when h.failing_since is null then 1 else h.attempts + 1 end,
          failing_since = coalesce(h.failing_since, now()),
          last_error = excluded.last_error,
          updated_at = now()
        returning attempts,
          (extract(epoch from failing_since) * 1000)::float8 as since_ms,
          (extract(epoch from now() - failing_since) * 1000)::float8 as down_ms,
          (select spec->'outage' from campaigns where id = ${k.campaignId}) as outage`.execute(db);
      const row = rows[0];
      if (!row) throw new Error('endpoint_health upsert returned no row');
      const outage = OutageSchema.parse(row.outage ?? undefined);
      return {
        attempts: row.attempts,
        failingSinceMs: row.since_ms,
        downForMs: row.down_ms,
        pauseAfterMs: durationMs(outage.pauseAfter),
        probeEveryMs: durationMs(outage.probeEvery),
      };
    },
    async succeeded(k) {
      const now = Date.now();
      const last = lastSuccessWrite.get(id(k));
      if (last !== undefined && now - last < SUCCESS_WRITE_EVERY_MS) return;
      lastSuccessWrite.set(id(k), now);
      await sql`update endpoint_health set failing_since = null, attempts = 0, updated_at = now()
        where ${where(k)} and failing_since is not null`.execute(db);
    },
  };
}

/** Forgets a stage iteration's outages, so a resumed stage gets a whole `pauseAfter` again. */
export async function resetEndpointHealth(
  db: Db,
  key: { campaignId: string; stage: string; iteration: number },
): Promise<void> {
  await db
    .updateTable('endpoint_health')
    .set({ failing_since: null, attempts: 0, updated_at: new Date() })
    .where('campaign_id', '=', key.campaignId)
    .where('stage', '=', key.stage)
    .where('iteration', '=', key.iteration)
    .execute();
}
