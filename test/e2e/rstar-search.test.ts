/**
 * rStar through the real gateway against the simulator (a simulation of the models: infra/sim):
 * the five generator actions and the discriminator's completions over HTTP, every call logged.
 * Measures the calls per question at the defaults (16 rollouts, 4 completions per action), checks
 * the mutual-consistency pick against the discriminator's logged answers, and shows that a search
 * killed mid-rollout and resumed from its saved tree makes exactly the requests of an
 * uninterrupted one at the server. Not yet stage 3's decode method: the stage registry comes first.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Endpoint } from '../../core/llm/gateway';
import { LlmGateway } from '../../core/llm/gateway';
import { mutualConsistency, rstarSearch, type RStarNode, type RStarStore } from '../../core/search/rstar';
import { llmDiscriminator, llmRStarPolicy, normalizeAnswer } from '../../core/search/rstar-policy';
import {
  exampleQuestions,
  startHarness,
  type ExampleQuestion,
  type Harness,
  campaignForCalls,
} from '../support/harness';
import { memoryTreeStore } from '../support/memory-tree-store';

let h: Harness;
let weak: Endpoint;
let campaignId: string;
let questions: ExampleQuestion[];
const DOMAIN = 'Kubernetes operations';

beforeAll(async () => {
  h = await startHarness({ worker: false });
  const made = await campaignForCalls(h, { name: 'rstar-search' });
  campaignId = made.campaignId;
  weak = { ...made.spec.models.weak, role: 'weak' };
  questions = await exampleQuestions(2);
}, 60_000);

afterAll(async () => {
  await h?.close();
});

const memoryStore = (o?: Parameters<typeof memoryTreeStore>[0]) => memoryTreeStore<RStarNode>(o);

const scope = (iteration: number) => ({ campaignId, stage: 'rstar-search', iteration });
const question = (q: ExampleQuestion) => ({ title: q.title ?? null, question: q.question });
const search = (q: ExampleQuestion, iteration: number, store: RStarStore) =>
  rstarSearch(
    llmRStarPolicy({
      llm: new LlmGateway(h.clients.db),
      scope: scope(iteration),
      endpoint: weak,
      domain: DOMAIN,
      question: question(q),
      samples: 4,
      temperature: 0.8,
    }),
    store,
  );

describe('rStar over HTTP (simulated models)', () => {
  it('searches with the five actions, and keeps the candidates the discriminator agrees with', async () => {
    const perQuestion: number[] = [];
    for (const [i, q] of questions.entries()) {
      const before = h.sim.stats().served;
      const tree = await search(q, i + 1, memoryStore().store);
      const generated = h.sim.stats().served - before;
      expect(tree.root.n).toBe(16);
      expect(new Set(tree.all().map((n) => n.action))).toEqual(new Set([null, 'A1', 'A2', 'A3', 'A4', 'A5']));
      const finals = tree.terminals().filter((n) => n.answer !== null);
      expect(finals.length).toBeGreaterThan(0);
      for (const n of finals) {
        expect(n.confidence).toBeGreaterThan(0);
        expect(n.confidence).toBeLessThanOrEqual(1);
      }
      const { candidates, pick } = await mutualConsistency(
        tree,
        llmDiscriminator({
          llm: new LlmGateway(h.clients.db),
          scope: scope(i + 1),
          endpoint: weak,
          domain: DOMAIN,
          question: question(q),
        }),
        { normalize: normalizeAnswer },
      );
      perQuestion.push(h.sim.stats().served - before);
      expect(candidates).toHaveLength(finals.length);
      for (const c of candidates) {
        expect(c.consistent).toBe(
          c.discriminatorAnswer !== null &&
            normalizeAnswer(c.discriminatorAnswer) === normalizeAnswer(c.node.answer!),
        );
      }
      const best = candidates.filter((c) => c.consistent).sort((a, b) => b.score - a.score)[0] ?? null;
      expect(pick?.node.id ?? null).toBe(best?.node.id ?? null);
      process.stderr.write(
        `[rstar] question ${i + 1}: ${generated} generator calls, ${perQuestion[i]! - generated} discriminator calls, ` +
          `${tree.size} nodes, ${candidates.filter((c) => c.consistent).length}/${candidates.length} consistent\n`,
      );
    }
    const purposes = await h.clients.db
      .selectFrom('llm_calls')
      .select('purpose')
      .distinct()
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', 'rstar-search')
      .execute();
    expect(new Set(purposes.map((p) => p.purpose))).toEqual(
      new Set(['rstar-A1', 'rstar-A2', 'rstar-A3', 'rstar-A4', 'rstar-A5', 'rstar-discriminate']),
    );
  });

  it('a search killed mid-rollout and resumed makes no request twice at the server', async () => {
    const q = questions[0]!;
    const whole = memoryStore();
    const before = h.sim.stats().served;
    const reference = await search(q, 101, whole.store);
    const wholeRequests = h.sim.stats().served - before;
    const crashing = memoryStore({ killAtStep: 6 });
    const start = h.sim.stats().served;
    await expect(search(q, 102, crashing.store)).rejects.toThrow('worker killed');
    const resumed = await search(q, 102, crashing.store);
    expect(h.sim.stats().served - start).toBe(wholeRequests);
    expect(resumed.all()).toEqual(reference.all());
  });
});
