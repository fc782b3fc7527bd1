/**
 * SRA-MCTS through the real gateway against the simulator (a simulation of the current model:
 * infra/sim): the reflection, proposal and self-evaluation prompts of stages/mcts/prompts.ts over
 * HTTP, every call logged. Measures the calls per question at the paper's defaults, and shows that
 * a search killed mid-round and resumed from its saved tree makes exactly the requests of an
 * uninterrupted one at the server (the round run again is answered from the call log).
 * The `mcts` stage runs this search per question: test/e2e/mcts-stage.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Endpoint } from '../../core/llm/gateway';
import { LlmGateway } from '../../core/llm/gateway';
import { sraMcts, type SraMctsStore, type TreeNode } from '../../core/search/sra-mcts';
import { llmSraMctsPolicy } from '../../core/search/sra-mcts-policy';
import {
  exampleQuestions,
  startHarness,
  type ExampleQuestion,
  type Harness,
  campaignForCalls,
} from '../support/harness';
import { memoryTreeStore } from '../support/memory-tree-store';

let h: Harness;
let ep: Endpoint;
let campaignId: string;
let questions: ExampleQuestion[];
const DOMAIN = 'Kubernetes operations';

beforeAll(async () => {
  h = await startHarness({ worker: false });
  const made = await campaignForCalls(h, { name: 'mcts-search' });
  campaignId = made.campaignId;
  ep = { ...made.spec.models.weak, role: 'weak' };
  questions = await exampleQuestions(3);
}, 60_000);

afterAll(async () => {
  await h?.close();
});

const memoryStore = (o?: Parameters<typeof memoryTreeStore>[0]) => memoryTreeStore<TreeNode>(o);

const search = (
  q: ExampleQuestion,
  iteration: number,
  store: SraMctsStore,
  llm = new LlmGateway(h.clients.db),
) =>
  sraMcts(
    llmSraMctsPolicy({
      llm,
      scope: { campaignId, stage: 'mcts-search', iteration },
      endpoint: ep,
      domain: DOMAIN,
      question: { title: q.title ?? null, question: q.question },
      temperature: 0.7,
      attempts: 2,
    }),
    store,
  );

describe('SRA-MCTS over HTTP (simulated model)', () => {
  it('searches each question at the defaults, every call logged once', async () => {
    const perQuestion: number[] = [];
    for (const [i, q] of questions.entries()) {
      const before = h.sim.stats().served;
      const r = await search(q, i + 1, memoryStore().store);
      perQuestion.push(h.sim.stats().served - before);
      expect(r.steps.length).toBeGreaterThan(0);
      expect(r.value).toBeGreaterThanOrEqual(0);
      expect(r.value).toBeLessThanOrEqual(10);
      // Each step is a sentence the model proposed, none twice on one path.
      expect(new Set(r.steps).size).toBe(r.steps.length);
    }
    const calls = await h.clients.db
      .selectFrom('llm_calls')
      .select(['purpose', 'status'])
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', 'mcts-search')
      .execute();
    expect(calls.every((c) => c.status === 'ok')).toBe(true);
    expect(new Set(calls.map((c) => c.purpose))).toEqual(
      new Set(['mcts-reflect', 'mcts-propose', 'mcts-score']),
    );
    expect(calls).toHaveLength(perQuestion.reduce((s, n) => s + n, 0));
    process.stderr.write(`[mcts] calls per question at the defaults: ${perQuestion.join(', ')}\n`);
  });

  it('a search killed mid-round and resumed makes no request twice at the server', async () => {
    const q = questions[0]!;
    const whole = memoryStore();
    const before = h.sim.stats().served;
    const reference = await search(q, 101, whole.store);
    const wholeRequests = h.sim.stats().served - before;

    const crashing = memoryStore({ killAtStep: 2 });
    const start = h.sim.stats().served;
    // A new gateway for each attempt, as a restarted worker has.
    await expect(search(q, 102, crashing.store)).rejects.toThrow('worker killed');
    const resumed = await search(q, 102, crashing.store, new LlmGateway(h.clients.db));
    expect(h.sim.stats().served - start).toBe(wholeRequests);
    expect(resumed).toEqual(reference);
    const sorted = (m: Map<number, TreeNode>) => [...m.values()].sort((a, b) => a.id - b.id);
    expect(sorted(crashing.nodes)).toEqual(sorted(whole.nodes));
  });
});
