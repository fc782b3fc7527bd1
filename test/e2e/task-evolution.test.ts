/**
 * Task evolution over HTTP against the simulator (a simulation of the strong model: infra/sim):
 * the strong model rewrites training questions, and the novelty check keeps only questions that
 * are no near-copy of a training, held-out or earlier evolved question. The strong model is shown
 * training questions only. One evolution step on its own; the stage is test/e2e/evolve-stage.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { evolveQuestion, type EvolutionOutcome } from '../../core/evolution/evolve';
import { NoveltyFilter } from '../../core/evolution/novelty';
import type { Endpoint } from '../../core/llm/gateway';
import { LlmGateway } from '../../core/llm/gateway';
import { tokenJaccard } from '../../core/text-similarity';
import {
  EXAMPLE_EVAL,
  exampleQuestions,
  startHarness,
  type ExampleQuestion,
  type Harness,
  campaignForCalls,
} from '../support/harness';

/** Rewrites keep much of their seed by design; a near-copy shares almost all of it. */
const MAX_SIMILARITY = 0.8;
let h: Harness;
let strong: Endpoint;
let campaignId: string;
let train: ExampleQuestion[];
let heldOut: ExampleQuestion[];
const text = (q: { title?: string | null; question: string }) =>
  q.title ? `${q.title}\n\n${q.question}` : q.question;

beforeAll(async () => {
  h = await startHarness({ worker: false });
  const made = await campaignForCalls(h, { name: 'evolution' });
  campaignId = made.campaignId;
  strong = { ...made.spec.models.strong, role: 'strong' };
  train = await exampleQuestions(20);
  heldOut = (await readFile(EXAMPLE_EVAL, 'utf8'))
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as ExampleQuestion);
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('task evolution (simulated strong model)', () => {
  it('keeps rewritten questions that are new, drops near-copies, and never shows a held-out question', async () => {
    const novelty = new NoveltyFilter(
      [
        ...train.map((q) => ({ id: q.id, text: text(q), split: 'train' as const })),
        ...heldOut.map((q) => ({ id: q.id, text: text(q), split: 'eval' as const })),
      ],
      MAX_SIMILARITY,
    );
    const llm = new LlmGateway(h.clients.db);
    const outcomes: EvolutionOutcome[] = [];
    for (const [ordinal, q] of train.entries()) {
      outcomes.push(
        await evolveQuestion({
          llm,
          scope: { campaignId, stage: 'evolve', iteration: 1 },
          endpoint: strong,
          domain: 'Kubernetes operations',
          seed: { id: q.id, ordinal, title: q.title ?? null, question: q.question },
          attempts: 2,
          novelty,
          newId: (s) => `evolved-${s.id}`,
        }),
      );
    }
    const kept = outcomes.filter((o) => o.status === 'kept');
    const rejected = outcomes.filter((o) => o.status === 'rejected');
    expect(kept.length).toBeGreaterThan(0);
    expect(rejected.length).toBeGreaterThan(0);
    // Every method of Evol-Instruct was used, round-robin over the seeds.
    expect(new Set(outcomes.map((o) => o.method)).size).toBe(5);
    // Recomputed here: no kept question is near any training, held-out or earlier kept question.
    const earlier: string[] = [];
    for (const k of kept) {
      const t = text(k);
      for (const other of [...train.map(text), ...heldOut.map(text), ...earlier])
        expect(tokenJaccard(t, other)).toBeLessThan(MAX_SIMILARITY);
      earlier.push(t);
    }
    const known = new Map([...train, ...heldOut].map((q) => [q.id, text(q)]));
    for (const k of kept) known.set(`evolved-${k.seedId}`, text(k));
    for (const r of rejected) {
      expect(r.verdict.similarity).toBeGreaterThanOrEqual(MAX_SIMILARITY);
      expect(tokenJaccard(text(r), known.get(r.verdict.similarTo)!)).toBeCloseTo(r.verdict.similarity, 12);
    }
    // The strong model saw training questions only.
    const requests = await h.clients.db
      .selectFrom('llm_calls')
      .select('request')
      .where('campaign_id', '=', campaignId)
      .where('purpose', '=', 'evolve-question')
      .execute();
    expect(requests).toHaveLength(train.length);
    for (const r of requests) {
      const body = JSON.stringify(r.request);
      for (const e of heldOut) expect(body).not.toContain(JSON.stringify(e.question).slice(1, -1));
    }
    process.stderr.write(
      `[evolve] ${train.length} seeds: ${kept.length} kept, ${rejected.length} near-copies dropped\n`,
    );
  });
});
