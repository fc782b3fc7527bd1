/**
 * A weak model that writes what PostgreSQL cannot store: U+0000 (a byte-fallback token; the
 * simulator's `nulInReply` quirk plays it), which neither text nor jsonb takes, or half a UTF-16
 * surrogate pair (`loneSurrogateInReply`: the JSON escape `\ud800` alone), which jsonb refuses. A
 * reply carrying either used to fail the statement logging it together with the other answers of
 * its group: the batch failed, the paid answers were never logged, and each retry paid for them
 * again. Now the reply is stored with U+FFFD in its place, and the campaign completes with every
 * answer paid for once, counted at the model server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasLoneSurrogate } from '../../core/db/storable-text';
import type { ModelQuirks } from '../../infra/sim/server';
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
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe.each<[string, string, ModelQuirks]>([
  ['U+0000', 'nul', { nulInReply: true }],
  ['half a surrogate pair', 'surrogate', { loneSurrogateInReply: true }],
])('a model that writes %s', (_what, name, quirks) => {
  it('is logged and recorded with U+FFFD in its place, and nothing is paid twice', async () => {
    h.sim.setQuirks('sim-weak-8b', quirks);
    try {
      const spec = await writeSpec(h, { name: `unstorable-${name}`, questions: { train } });
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
        // The simulator put the character after the guideline's first word.
        expect(r.guideline).toMatch(/^\S+\uFFFD /);
        expect(r.guideline).not.toContain('\u0000');
        expect(hasLoneSurrogate(r.guideline)).toBe(false);
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
    } finally {
      h.sim.setQuirks('sim-weak-8b', null);
    }
  });
});
