/**
 * A paid call the database refuses to log, here a request whose JSON holds half a surrogate pair
 * (question files refuse one, but any caller of the gateway can send it). The answers of many
 * calls are logged in one statement (group commit), and such a row used to fail them all: paid
 * answers went unlogged, and each retry paid for them again. Now the other answers of its
 * statement are logged `ok`; the refused call fails alone, with the database's reason, and is
 * logged as an error that says why, with its cost, so the audit and the budget still see it.
 * Against the real simulator and PostgreSQL; the server's own count says what was paid.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDataException } from '../../core/db/connection';
import { LlmGateway, type ChatRequest, type Endpoint } from '../../core/llm/gateway';
import { campaignForCalls, startHarness, type Harness } from '../support/harness';

const PRICE = { inputPerMTok: 2.5, outputPerMTok: 10 };
const CALLS = 12;
const REFUSED = 6;
const STAGE = 'unstorable-call';

let h: Harness;
let ep: Endpoint;
let campaignId: string;

beforeAll(async () => {
  // Every answer arrives within a few ms of the others, so most share one logging statement.
  h = await startHarness({ latencyMs: 150, worker: false });
  const made = await campaignForCalls(h, { name: 'unstorable-call', models: { weak: { pricing: PRICE } } });
  campaignId = made.campaignId;
  ep = { ...made.spec.models.weak, role: 'weak' };
});

afterAll(async () => {
  await h?.close();
});

function request(i: number): ChatRequest {
  const problem = i === REFUSED ? 'kubelet \uD800 down' : 'kubelet down';
  return {
    purpose: 'unstorable-test',
    promptVersion: 'v1',
    messages: [{ role: 'user', content: `Node ${i} is NotReady: ${problem}. Why?` }],
  };
}

describe('a call the database refuses to log', () => {
  it('fails alone; the answers logged with it are kept, and it is logged as an error with its cost', async () => {
    const gateway = new LlmGateway(h.clients.db, {});
    const servedBefore = h.sim.stats().served;
    const scope = { campaignId, stage: STAGE, iteration: 0 };
    const results = await Promise.allSettled(
      Array.from({ length: CALLS }, (_, i) => gateway.chat(scope, ep, request(i))),
    );

    expect(h.sim.stats().served - servedBefore).toBe(CALLS);
    results.forEach((r, i) => {
      if (i !== REFUSED) {
        expect(r.status, `call ${i}`).toBe('fulfilled');
        return;
      }
      expect(r.status).toBe('rejected');
      const reason = r.status === 'rejected' ? (r.reason as unknown) : null;
      expect(isDataException(reason) ? reason.code : String(reason)).toBe('22P02');
    });

    const rows = await h.clients.db
      .selectFrom('llm_calls')
      .select(['status', 'error', 'cost_usd', 'request'])
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', STAGE)
      .execute();
    expect(rows.filter((r) => r.status === 'ok')).toHaveLength(CALLS - 1);
    const refused = rows.filter((r) => r.status === 'error');
    expect(refused).toHaveLength(1);
    expect(refused[0]?.error).toMatch(/paid for, but the database refused to log it: invalid input syntax/);
    expect(refused[0]?.cost_usd).toBeGreaterThan(0);
    expect(JSON.stringify(refused[0]?.request)).toContain('kubelet \uFFFD down');
  });
});
