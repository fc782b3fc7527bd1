/**
 * "Not paid twice", asked of the model server itself: the simulator counts the requests it
 * answered 200 by content (infra/sim/request-hashes.ts). Our call log only tells which requests
 * were meant to be distinct calls — a salted re-ask, or the same prompt in another stage,
 * iteration or campaign, repeats a body on purpose — so a body may be served as many times as
 * there are distinct logged calls (campaign, stage, iteration, request key) for it on this
 * server, and no more. Never checked against the `llm_calls` unique index, which would pass by
 * construction.
 */
import type { Db } from '../../core/db/connection';
import { paidTwice as countsPaidTwice } from '../../infra/sim/request-hashes';
import type { RequestCount, SimServer } from '../../infra/sim/server';
import { requestHash } from '../../infra/sim/server';

interface OnSim {
  sim: SimServer;
  clients: { db: Db };
}

export interface PaidTwice {
  /** The simulator's hash of the request body. */
  hash: string;
  /** Times the server answered it 200. */
  served: number;
  /** Distinct calls the log meant it to be, over every campaign on this server. */
  calls: number;
  purposes: string[];
}

interface Requests {
  /** Body hash → distinct logged calls for it on this server. */
  calls: Map<string, number>;
  /** Body hashes of the campaigns under test (of one purpose, when asked). */
  ofCampaigns: Set<string>;
  /** Of those, the ones logged as answered (status ok). */
  okOfCampaigns: Set<string>;
  purposes: Map<string, Set<string>>;
}

/** The requests logged against this simulator (every campaign, every status), by body hash. */
async function requestsOnSim(h: OnSim, campaignIds: readonly string[], purpose?: string): Promise<Requests> {
  const rows = await h.clients.db
    .selectFrom('llm_calls')
    .select(['campaign_id', 'stage', 'iteration', 'request_hash', 'purpose', 'request', 'status'])
    .where('base_url', '=', h.sim.url)
    .execute();
  const keys = new Map<string, Set<string>>();
  const purposes = new Map<string, Set<string>>();
  const ofCampaigns = new Set<string>();
  const okOfCampaigns = new Set<string>();
  for (const r of rows) {
    const body: unknown = typeof r.request === 'string' ? JSON.parse(r.request) : r.request;
    const hash = requestHash(body);
    const key = `${r.campaign_id}\u0000${r.stage}\u0000${r.iteration}\u0000${r.request_hash}`;
    (keys.get(hash) ?? keys.set(hash, new Set()).get(hash))?.add(key);
    (purposes.get(hash) ?? purposes.set(hash, new Set()).get(hash))?.add(r.purpose);
    if (campaignIds.includes(r.campaign_id) && (purpose === undefined || r.purpose === purpose)) {
      ofCampaigns.add(hash);
      if (r.status === 'ok') okOfCampaigns.add(hash);
    }
  }
  return { calls: new Map([...keys].map(([h, k]) => [h, k.size])), ofCampaigns, okOfCampaigns, purposes };
}

/** Request counts of several lives of one server (e.g. before and after a restart), added up. */
function added(all: ReadonlyArray<Readonly<Record<string, RequestCount>>>): Record<string, RequestCount> {
  const out: Record<string, RequestCount> = {};
  for (const counts of all)
    for (const [hash, c] of Object.entries(counts)) {
      const o = (out[hash] ??= { requests: 0, served: 0 });
      o.requests += c.requests;
      o.served += c.served;
    }
  return out;
}

/**
 * The campaigns' requests the server answered 200 more often than they were distinct calls.
 * `earlier`: the request counts of the server's earlier lives on the same URL (before a restart).
 */
export async function paidTwice(
  h: OnSim,
  campaignIds: readonly string[],
  earlier: ReadonlyArray<Readonly<Record<string, RequestCount>>> = [],
): Promise<PaidTwice[]> {
  const { calls, ofCampaigns, okOfCampaigns, purposes } = await requestsOnSim(h, campaignIds);
  // So that this check cannot pass vacuously: every call logged ok is one the server answered.
  const counts = added([...earlier, h.sim.stats().requestCounts]);
  const unseen = [...okOfCampaigns].filter((hash) => (counts[hash]?.served ?? 0) === 0);
  if (okOfCampaigns.size === 0 || unseen.length > 0)
    throw new Error(
      `${unseen.length} of ${okOfCampaigns.size} calls logged ok were never answered by the simulator: ` +
        'the request hashes do not match what it received (or its stats were reset)',
    );
  return countsPaidTwice(counts, ofCampaigns)
    .map(({ hash, served }) => ({
      hash,
      served,
      calls: calls.get(hash) ?? 0,
      purposes: [...(purposes.get(hash) ?? [])],
    }))
    .filter((p) => p.served > p.calls);
}

/**
 * Answers 200 the server gave to the campaigns' distinct request bodies (of one purpose), by its
 * own count; bodies another campaign on this server also sent are counted with its answers.
 */
export async function servedFor(
  h: OnSim,
  campaignIds: readonly string[],
  where: { purpose?: string } = {},
): Promise<{ served: number; bodies: number }> {
  const { ofCampaigns } = await requestsOnSim(h, campaignIds, where.purpose);
  const counts = h.sim.stats().requestCounts;
  let served = 0;
  for (const hash of ofCampaigns) served += counts[hash]?.served ?? 0;
  return { served, bodies: ofCampaigns.size };
}
