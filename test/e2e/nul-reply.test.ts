/**
 * A weak model that writes U+0000 in its replies (a byte-fallback token; the simulator's
 * `nulInReply` quirk plays it). PostgreSQL stores that character in neither text nor jsonb, and a
 * reply carrying one used to fail the statement logging it together with the other answers of its
 * group: the batch failed, the paid answers were never logged, and each retry paid for them again.
 * Now the reply is stored with U+FFFD in its place, and the campaign completes with every answer
 * paid for once, counted at the model server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  exampleQuestions,
  launch,
  startHarness,
  waitDone,
  writeQuestions,
  writeSpec,
  type Harness,
} from '../support/harness';
import { paidTwice } from '../support/paid-twice';

const QUESTIONS = 6;
let h: Harness;
let train: string;

beforeAll(async () => {
  h = await startHarness({ latencyMs: 5 });
  train = await writeQuestions(h.tmp, 'train.jsonl', await exampleQuestions(QUESTIONS));
  h.sim.setQuirks('sim-weak-8b', { nulInReply: true });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('a model that writes U+0000', () => {
  it('is logged and recorded with U+FFFD in its place, and nothing is paid twice', async () => {
    const spec = await writeSpec(h, { name: 'nul-reply', questions: { train } });
    const servedBefore = h.sim.stats().served;
    const { campaignId } = await launch(h, spec);
    const final = await waitDone(h, campaignId, 90_000);
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');

    const records = await h.clients.db
      .selectFrom('distill_records as r')
      .innerJoin('llm_calls as c', 'c.id', 'r.guideline_call_id')
      .select(['r.question_id', 'r.guideline', 'c.response'])
      .where('r.campaign_id', '=', campaignId)
      .execute();
    expect(records).toHaveLength(QUESTIONS);
    for (const r of records) {
      // The simulator put the NUL after the guideline's first word.
      expect(r.guideline).toMatch(/^\S+\uFFFD /);
      expect(r.guideline).not.toContain('\u0000');
      // The log holds the reply the record was made from.
      expect((r.response as { choices: string[] }).choices[0]).toBe(r.guideline);
    }

    expect(await paidTwice(h, [campaignId])).toEqual([]);
    // Every answer the server gave this campaign (no other ran meanwhile) is a logged call.
    const logged = await h.clients.db
      .selectFrom('llm_calls')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('campaign_id', '=', campaignId)
      .where('status', 'in', ['ok', 'duplicate'])
      .executeTakeFirstOrThrow();
    expect(h.sim.stats().served - servedBefore).toBe(Number(logged.n));
  });
});
