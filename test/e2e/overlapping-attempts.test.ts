/**
 * Two overlapping attempts of one batch asking the same request (a start-to-close timeout fired
 * while the first attempt still runs): two gateways, as in two workers, against the real
 * simulator and Postgres. The first claims the request and the second waits for its answer, so
 * the model server — by its own count of requests by content — is paid once; where a claim lapsed
 * and both paid, the second answer is logged as a duplicate and `campaign status` shows the cost
 * of both. Status cost is checked against what the server says it served (its token counts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { campaignStatus } from '../../client/status';
import { RequestClaims } from '../../core/llm/claims';
import { LlmGateway, type ChatRequest, type Endpoint } from '../../core/llm/gateway';
import { callCost } from '../../core/llm/pricing';
import { requestHash } from '../../infra/sim/server';
import { startHarness, waitFor, type Harness, campaignForCalls } from '../support/harness';

let h: Harness;
let ep: Endpoint;
let campaignId: string;

beforeAll(async () => {
  // Slow enough answers that the second attempt starts while the first is in flight.
  h = await startHarness({ latencyMs: 600, worker: false });
  // A campaign row for the calls; no worker runs it, so only this test's calls are logged.
  const made = await campaignForCalls(h, { name: 'overlap' });
  campaignId = made.campaignId;
  ep = { ...made.spec.models.strong, role: 'strong' };
});

afterAll(async () => {
  await h?.close();
});

const scope = (stage: string) => ({ campaignId, stage, iteration: 0 });

function request(question: string): ChatRequest {
  return {
    purpose: 'overlap-test',
    promptVersion: 'v1',
    messages: [
      { role: 'system', content: 'Answer the question.' },
      { role: 'user', content: question },
    ],
  };
}

/** The body as the simulator hashes it: what the gateway logged in `llm_calls.request`. */
async function loggedHashes(stage: string): Promise<Set<string>> {
  const rows = await h.clients.db
    .selectFrom('llm_calls')
    .select('request')
    .where('campaign_id', '=', campaignId)
    .where('stage', '=', stage)
    .execute();
  return new Set(
    rows.map((r) => requestHash(typeof r.request === 'string' ? JSON.parse(r.request) : r.request)),
  );
}

async function statusCost(stage: string): Promise<number> {
  const status = await campaignStatus(h.clients, campaignId);
  expect(status.source).toBe('database');
  return status.costUsd - (await otherStagesCost(stage));
}

async function otherStagesCost(stage: string): Promise<number> {
  const rows = await h.clients.db
    .selectFrom('llm_calls')
    .select(['cost_usd'])
    .where('campaign_id', '=', campaignId)
    .where('stage', '!=', stage)
    .where('status', 'in', ['ok', 'duplicate'])
    .execute();
  return rows.reduce((s, r) => s + r.cost_usd, 0);
}

async function statuses(stage: string): Promise<string[]> {
  const rows = await h.clients.db
    .selectFrom('llm_calls')
    .select('status')
    .where('campaign_id', '=', campaignId)
    .where('stage', '=', stage)
    .orderBy('id')
    .execute();
  return rows.map((r) => r.status);
}

describe('overlapping attempts of one batch', () => {
  it('the second attempt waits for the first one’s answer: the server is paid once', async () => {
    h.sim.reset();
    const first = new LlmGateway(h.clients.db);
    const second = new LlmGateway(h.clients.db);
    const req = request('How do I roll back a Kubernetes deployment to the previous version?');
    const [a, b] = await Promise.all([
      first.chat(scope('distill'), ep, req),
      second.chat(scope('distill'), ep, req),
    ]);

    // Records of both attempts point at the one logged call.
    expect(b.callId).toBe(a.callId);
    expect([a.reused, b.reused].sort()).toEqual([false, true]);
    // The server's own count, by content: one request, answered once.
    const hashes = await loggedHashes('distill');
    expect(hashes.size).toBe(1);
    const counts = h.sim.stats().requestCounts;
    const [hash] = [...hashes];
    expect(counts[hash ?? '']).toEqual({ requests: 1, served: 1 });
    expect(h.sim.paidTwice(hashes)).toEqual([]);
    expect(await statuses('distill')).toEqual(['ok']);

    // Status cost = what the server served, at the endpoint's prices.
    const served = h.sim.stats().byModel['sim-strong'];
    const paid = callCost(ep.pricing, 'online', {
      promptTokens: served?.promptTokens ?? 0,
      completionTokens: served?.completionTokens ?? 0,
    });
    expect(paid).toBeGreaterThan(0);
    expect(await statusCost('distill')).toBeCloseTo(paid, 10);
    // No claim is left held: the one left is marked answered (deleted when the stage finishes).
    const claims = await h.clients.db
      .selectFrom('llm_call_claims')
      .select(sql<boolean>`lease_until = 'infinity'`.as('answered'))
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', 'distill')
      .execute();
    expect(claims.map((c) => c.answered)).toEqual([true]);
    process.stderr.write(
      `[overlap] concurrent attempts: server served ${counts[hash ?? '']?.served} time(s), status cost $${paid.toFixed(6)}\n`,
    );
  });

  it('a claim whose holder died lapses, and the next attempt pays once', async () => {
    h.sim.reset();
    const req = request('Why does my container keep restarting with CrashLoopBackOff?');
    const gateway = new LlmGateway(h.clients.db);
    // Learn the gateway's key for this request from a first call in another stage, then leave a
    // dead attempt's claim on it in this stage (lease 2 s, never renewed).
    await gateway.chat(scope('probe'), ep, req);
    const [probe] = await h.clients.db
      .selectFrom('llm_calls')
      .select('request_hash')
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', 'probe')
      .execute();
    if (!probe) throw new Error('probe call not logged');
    await h.clients.db
      .insertInto('llm_call_claims')
      .values({
        campaign_id: campaignId,
        stage: 'assess',
        iteration: 0,
        request_hash: probe.request_hash,
        owner: 'dead-attempt',
        lease_until: new Date(Date.now() + 60_000),
      })
      .execute();
    const leaseUntil = Date.now() + 2000;
    await h.clients.db
      .updateTable('llm_call_claims')
      .set({ lease_until: new Date(leaseUntil) })
      .where('owner', '=', 'dead-attempt')
      .execute();
    h.sim.reset();
    const result = await gateway.chat(scope('assess'), ep, req);
    expect(result.reused).toBe(false);
    // Sent once, and only after the dead attempt's lease lapsed.
    const { served, recent } = h.sim.stats();
    expect(served).toBe(1);
    expect(Date.parse(recent[0]?.at ?? '')).toBeGreaterThanOrEqual(leaseUntil);
    expect(await statuses('assess')).toEqual(['ok']);
  });

  it('answers paid twice (a lapsed claim) are logged as a duplicate and counted in status cost', async () => {
    h.sim.reset();
    const first = new LlmGateway(h.clients.db);
    const second = new LlmGateway(h.clients.db);
    const req = request(
      'My pod stays in Pending state forever after I apply the deployment. What should I check?',
    );
    const firstCall = first.chat(scope('contrast'), ep, req);
    // The first attempt's claim is gone while its request is in flight, as when its lease lapsed
    // (a holder frozen past its lease): the second attempt claims the request and pays for it too.
    await waitFor(
      'the first attempt to claim the request',
      async () =>
        (await h.clients.db
          .selectFrom('llm_call_claims')
          .select('owner')
          .where('campaign_id', '=', campaignId)
          .where('stage', '=', 'contrast')
          .executeTakeFirst()) ?? undefined,
      10_000,
      10,
    );
    await h.clients.db.deleteFrom('llm_call_claims').where('campaign_id', '=', campaignId).execute();
    const [a, b] = await Promise.all([firstCall, second.chat(scope('contrast'), ep, req)]);

    expect(b.callId).toBe(a.callId);
    const hashes = await loggedHashes('contrast');
    // The server was paid twice for this request, by its own count...
    expect(h.sim.paidTwice(hashes)).toEqual([{ hash: [...hashes][0], served: 2 }]);
    // ...and the log says so: one kept call, one duplicate carrying its tokens and cost.
    expect((await statuses('contrast')).sort()).toEqual(['duplicate', 'ok']);
    const served = h.sim.stats().byModel['sim-strong'];
    const paid = callCost(ep.pricing, 'online', {
      promptTokens: served?.promptTokens ?? 0,
      completionTokens: served?.completionTokens ?? 0,
    });
    expect(await statusCost('contrast')).toBeCloseTo(paid, 10);
    process.stderr.write(
      `[overlap] lapsed claim: server served 2 times, status cost $${paid.toFixed(6)} (= both answers)\n`,
    );
  });

  it('renewing held claims never waits on a claim another statement has locked (no deadlock with the answer log)', async () => {
    // Short leases, renewed every 200 ms. Claim A and B, then lock B from another transaction as
    // the statement logging B's answer does: A must still be renewed. Waiting on B instead is how
    // renewal and the answer log deadlocked in 100k-question runs, and the victim was paid again.
    const claims = new RequestClaims(h.clients.db, { leaseMs: 600, pollMs: 50 });
    const key = (requestHash: string) => ({ ...scope('renew-skip-locked'), requestHash });
    const none = async () => null;
    const a = await claims.claimOrWait(key('a'), none, (row) => row);
    const b = await claims.claimOrWait(key('b'), none, (row) => row);
    expect('claim' in a && 'claim' in b).toBe(true);
    await h.clients.db.transaction().execute(async (trx) => {
      await sql`select 1 from llm_call_claims where campaign_id = ${campaignId}
        and stage = 'renew-skip-locked' and request_hash = 'b' for update`.execute(trx);
      // Two leases' time with B locked: A lapsed unless the renewals went on without B. Read on
      // this transaction's own connection (clock_timestamp: now() is its start), because renewals
      // stuck on B would hold the pool's.
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      const { rows } = await sql<{ live: boolean }>`
        select lease_until > clock_timestamp() as live from llm_call_claims
        where campaign_id = ${campaignId} and stage = 'renew-skip-locked' and request_hash = 'a'`.execute(
        trx,
      );
      expect(rows[0]?.live).toBe(true);
    });
    if ('claim' in a) await a.claim.release();
    if ('claim' in b) await b.claim.release();
  });
});
