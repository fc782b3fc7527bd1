/**
 * Task evolution as a stage, end to end on the simulator (a simulation of the strong model:
 * infra/sim): evolve → distill on 20 example questions plus one seed that copies a held-out
 * question. Everything is recomputed from rows: which rewrites were novel (core/text-similarity),
 * that nothing near a held-out question joined training, that distill worked on the given and the
 * evolved questions, the audit's synthetic marks; requests are counted at the simulator.
 */
import { readFile } from 'node:fs/promises';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignStatus } from '../../client/status';
import { noveltyText } from '../../core/evolution/novelty';
import { LlmGateway } from '../../core/llm/gateway';
import { auditRecords } from '../../core/records';
import { tokenJaccard } from '../../core/text-similarity';
import { evolveActivities, evolvedQuestionId } from '../../stages/evolve/batch';
import type { BatchInput, BatchResult, StageProgress } from '../../workflows/types';
import {
  EXAMPLE_EVAL,
  campaignForCalls,
  countRows,
  exampleQuestions,
  launch,
  sleep,
  startHarness,
  waitDone,
  writeQuestions,
  writeSpec,
  type CampaignStatusView,
  type ExampleQuestion,
  type Harness,
} from '../support/harness';
import { paidTwice } from '../support/paid-twice';

const MAX_SIMILARITY = 0.8;
const EVOLVE_BATCH = 8;

/** A held-out question long enough that any rewrite of a copy of it stays near it. */
const HELD_OUT: ExampleQuestion = {
  id: 'evolve-heldout-drain',
  title: 'Node drain stalls during a cluster upgrade',
  question:
    'We are upgrading a 40-node cluster from 1.28 to 1.29 by replacing nodes one at a time. On several nodes ' +
    '`kubectl drain --ignore-daemonsets --delete-emptydir-data` hangs for hours, repeating `Cannot evict pod as it ' +
    "would violate the pod's disruption budget` for ledger-db-0 in the finance namespace. The StatefulSet has three " +
    'replicas, a PodDisruptionBudget with minAvailable 3, local persistent volumes pinned by node affinity, and a ' +
    'preStop hook that flushes its write-ahead log to object storage. Meanwhile the cluster autoscaler keeps adding ' +
    'nodes, alerts fire for replication lag, and our maintenance window closes at dawn. How do we finish the upgrade ' +
    'safely without losing data or breaking quorum?',
  reference:
    'A PodDisruptionBudget with minAvailable equal to the replica count allows no voluntary disruption, so the ' +
    'eviction API refuses every eviction and drain retries forever. Lower it to minAvailable 2 (or maxUnavailable 1) ' +
    'for the window, drain one node at a time, and wait for the replica to rejoin and catch up before the next.',
};

/** The held-out question, leaked into the training file (a data error the stage must not spread). */
const LEAKY_SEED: ExampleQuestion = {
  id: 'evolve-leaky-seed',
  title: HELD_OUT.title,
  question: HELD_OUT.question.replace('How do we finish', 'How can we finish'),
};

interface QuestionRowView {
  id: string;
  split: 'train' | 'eval';
  ordinal: number;
  title: string | null;
  question: string;
  origin: 'given' | 'evolved';
  evolved_from: string | null;
}

async function questionsOf(h: Harness, campaignId: string): Promise<QuestionRowView[]> {
  return h.clients.db
    .selectFrom('questions')
    .select(['id', 'split', 'ordinal', 'title', 'question', 'origin', 'evolved_from'])
    .where('campaign_id', '=', campaignId)
    .orderBy('split', 'desc')
    .orderBy('ordinal')
    .execute();
}

async function evolvedOf(h: Harness, campaignId: string) {
  return h.clients.db
    .selectFrom('evolved_questions')
    .selectAll()
    .where('campaign_id', '=', campaignId)
    .orderBy('seed_id')
    .execute();
}

/** One attempt of a batch activity, outside any worker. */
function runBatch(
  activity: (input: BatchInput) => Promise<BatchResult>,
  input: BatchInput,
): Promise<BatchResult> {
  return new MockActivityEnvironment().run(activity, input);
}

/** Requests the simulator answered 200 for one structured task (json_schema name). */
function servedAtSim(h: Harness, schema: string): number {
  return h.sim.stats().recent.filter((r) => r.responseFormat === `json_schema:${schema}` && r.status === 200)
    .length;
}

describe('evolve stage before distill', () => {
  let h: Harness;
  let campaignId: string;
  let final: CampaignStatusView;
  let seeds: ExampleQuestion[];
  let heldOut: ExampleQuestion[];
  /** Every stage entry the campaign's status showed while it ran. */
  const seen: StageProgress[] = [];

  beforeAll(async () => {
    // Some latency, so a poll sees distill's entry before its first batch reports.
    h = await startHarness({ latencyMs: 200 });
    seeds = [LEAKY_SEED, ...(await exampleQuestions(20))];
    const exampleEval = (await readFile(EXAMPLE_EVAL, 'utf8'))
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as ExampleQuestion);
    heldOut = [...exampleEval, HELD_OUT];
    const spec = await writeSpec(h, {
      questions: {
        train: await writeQuestions(h.tmp, 'evolve-train.jsonl', seeds),
        eval: await writeQuestions(h.tmp, 'evolve-eval.jsonl', heldOut),
      },
      stages: { evolve: { enabled: true, batchSize: EVOLVE_BATCH, maxSimilarity: MAX_SIMILARITY } },
    });
    ({ campaignId } = await launch(h, spec));
    let done = false;
    const poll = (async () => {
      while (!done) {
        const s = await campaignStatus(h.clients, campaignId);
        if (s.source === 'workflow') seen.push(...s.stages.map((x) => ({ ...x })));
        await sleep(40);
      }
    })();
    try {
      final = await waitDone(h, campaignId, 150_000);
    } finally {
      done = true;
      await poll;
    }
  }, 180_000);

  afterAll(async () => {
    await h?.close();
  });

  it('completes: evolve first, then distill on the given and the evolved questions (M0 → M1)', async () => {
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    expect(final.stages.map((s) => s.stage)).toEqual(['evolve', 'distill']);
    expect(final.lineage.map((m) => m.label)).toEqual(['M0', 'M1']);
    const kept = (await evolvedOf(h, campaignId)).filter((r) => r.outcome === 'kept').length;
    const total = seeds.length + kept;
    expect(final.stages[0]).toMatchObject({ stage: 'evolve', total: seeds.length, records: seeds.length });
    expect(final.stages[1]).toMatchObject({ stage: 'distill', total, records: total });
    // The stage run counted them too, and the status showed distill's true total all along.
    const runs = await h.clients.db
      .selectFrom('stage_runs')
      .select(['stage', 'total', 'metrics'])
      .where('campaign_id', '=', campaignId)
      .execute();
    expect(runs.find((r) => r.stage === 'distill')?.total).toBe(total);
    const whileRunning = seen.filter((s) => s.stage === 'distill');
    expect(whileRunning.some((s) => s.status === 'running')).toBe(true);
    for (const s of whileRunning) expect(s.total).toBe(total);
  });

  it('keeps only rewrites that are novel against every question, held-out ones first of all', async () => {
    const questions = await questionsOf(h, campaignId);
    const records = await evolvedOf(h, campaignId);
    expect(records.map((r) => r.seed_id).sort()).toEqual(seeds.map((s) => s.id).sort());
    const kept = records.filter((r) => r.outcome === 'kept');
    const rejected = records.filter((r) => r.outcome === 'rejected');
    expect(kept.length).toBeGreaterThan(0);
    expect(rejected.length).toBeGreaterThan(1);

    // Kept questions are training questions of their own, after the given ones, marked evolved.
    const train = questions.filter((q) => q.split === 'train');
    const evolved = train.filter((q) => q.origin === 'evolved');
    expect(evolved.map((q) => q.id).sort()).toEqual(kept.map((r) => evolvedQuestionId(r.seed_id)).sort());
    expect(train.map((q) => q.ordinal)).toEqual(train.map((_, i) => i));
    expect(train.slice(0, seeds.length).every((q) => q.origin === 'given')).toBe(true);
    for (const q of evolved) {
      const r = kept.find((k) => k.question_id === q.id);
      expect(q.evolved_from).toBe(r?.seed_id);
      expect(noveltyText(q)).toBe(noveltyText({ title: r?.title || null, question: r?.question ?? '' }));
    }

    // Recomputed: every kept question is below maxSimilarity to every other question, held-out included.
    for (const q of evolved) {
      for (const other of questions) {
        if (other.id === q.id) continue;
        expect(tokenJaccard(noveltyText(q), noveltyText(other)), `${q.id} ~ ${other.id}`).toBeLessThan(
          MAX_SIMILARITY,
        );
      }
    }
    const text = new Map(questions.map((q) => [q.id, noveltyText(q)]));
    for (const r of kept) {
      expect(r.similarity).toBeLessThan(MAX_SIMILARITY);
      expect(
        tokenJaccard(noveltyText({ title: r.title, question: r.question ?? '' }), text.get(r.closest_id!)!),
      ).toBeCloseTo(r.similarity!, 12);
    }
    // Rejected ones were at or above it against the question they name.
    for (const r of rejected) {
      const sim = tokenJaccard(
        noveltyText({ title: r.title, question: r.question ?? '' }),
        text.get(r.closest_id!)!,
      );
      expect(sim).toBeCloseTo(r.similarity!, 12);
      expect(sim).toBeGreaterThanOrEqual(MAX_SIMILARITY);
      if (r.reason === 'near-held-out')
        expect(questions.find((q) => q.id === r.closest_id)?.split).toBe('eval');
    }
    // The copy of a held-out question: its rewrite is named near that question and kept out of training.
    const leak = records.find((r) => r.seed_id === LEAKY_SEED.id);
    expect(leak).toMatchObject({ outcome: 'rejected', reason: 'near-held-out', closest_id: HELD_OUT.id });
    expect(questions.some((q) => q.evolved_from === LEAKY_SEED.id)).toBe(false);

    // The figures kept with the stage run are the rows'.
    const run = await h.clients.db
      .selectFrom('stage_runs')
      .select('metrics')
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', 'evolve')
      .executeTakeFirstOrThrow();
    expect(run.metrics).toMatchObject({
      kept: kept.length,
      rejected: rejected.length,
      nearHeldOut: rejected.filter((r) => r.reason === 'near-held-out').length,
      unparseable: records.filter((r) => r.outcome === 'unparseable').length,
    });
    process.stderr.write(
      `[evolve-stage] ${seeds.length} seeds: ${kept.length} kept, ${rejected.length} rejected ` +
        `(${rejected.filter((r) => r.reason === 'near-held-out').length} near a held-out question), ` +
        `${records.length - kept.length - rejected.length} unparseable\n`,
    );
  });

  it('asked the strong model once per seed, showing it training questions only', async () => {
    expect(servedAtSim(h, 'evolved_question')).toBe(seeds.length);
    const requests = await h.clients.db
      .selectFrom('llm_calls')
      .select(['request', 'role'])
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', 'evolve')
      .execute();
    expect(requests).toHaveLength(seeds.length);
    const escaped = (s: string) => JSON.stringify(s).slice(1, -1);
    for (const r of requests) {
      expect(r.role).toBe('strong');
      const body = JSON.stringify(r.request);
      expect(seeds.filter((s) => body.includes(escaped(s.question)))).toHaveLength(1);
      for (const e of heldOut) expect(body).not.toContain(escaped(e.question));
    }
  });

  it('distills every given and every evolved question once, and nothing else', async () => {
    const train = (await questionsOf(h, campaignId)).filter((q) => q.split === 'train');
    const records = await h.clients.db
      .selectFrom('distill_records')
      .select('question_id')
      .where('campaign_id', '=', campaignId)
      .execute();
    expect(records.map((r) => r.question_id).sort()).toEqual(train.map((q) => q.id).sort());
    // One strong answer per question, counted at the simulator.
    expect(servedAtSim(h, 'strong_answer')).toBe(train.length);
    const ds = await h.clients.db
      .selectFrom('datasets')
      .select('rows')
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', 'distill')
      .where('format', '=', 'openai')
      .executeTakeFirstOrThrow();
    expect(ds.rows).toBe(train.length);
  });

  it("marks distill's audit lines of evolved questions synthetic, and audits each seed's rewrite", async () => {
    const questions = await questionsOf(h, campaignId);
    const lines: Array<Record<string, unknown>> = [];
    for await (const l of auditRecords(h.clients.db, campaignId, 'distill')) lines.push(l);
    const evolved = questions.filter((q) => q.origin === 'evolved');
    expect(lines).toHaveLength(questions.filter((q) => q.split === 'train').length);
    for (const l of lines) {
      const q = questions.find((x) => x.id === l.questionId);
      if (q?.origin === 'evolved') expect(l).toMatchObject({ synthetic: true, evolvedFrom: q.evolved_from });
      else expect(l).not.toHaveProperty('synthetic');
    }
    expect(lines.filter((l) => l.synthetic === true)).toHaveLength(evolved.length);

    const audit: Array<Record<string, unknown>> = [];
    for await (const l of auditRecords(h.clients.db, campaignId, 'evolve')) audit.push(l);
    expect(audit.map((l) => l.questionId)).toEqual(seeds.map((s) => s.id));
    const records = await evolvedOf(h, campaignId);
    for (const l of audit) {
      const r = records.find((x) => x.seed_id === l.questionId)!;
      expect(l).toMatchObject({
        stage: 'evolve',
        method: r.method,
        outcome: r.outcome,
        reason: r.reason,
        closest: r.closest_id === null ? null : { questionId: r.closest_id, similarity: r.similarity },
        llmCallIds: { evolve: r.call_id },
      });
      expect(l).not.toHaveProperty('synthetic');
    }
    const calls = await h.clients.db
      .selectFrom('llm_calls')
      .select(['id', 'purpose', 'status'])
      .where(
        'id',
        'in',
        records.map((r) => r.call_id),
      )
      .execute();
    expect(calls).toHaveLength(seeds.length);
    for (const c of calls) expect(c).toMatchObject({ purpose: 'evolve-question', status: 'ok' });
  });

  it('redoes nothing on a retried batch, and decides a lost record again from the call log', async () => {
    const { db } = h.clients;
    const acts = evolveActivities({
      db,
      llm: new LlmGateway(db),
      artifactsDir: h.artifactsDir,
      env: {},
      hostId: 'test',
    });
    const batch = { campaignId, iteration: 1, modelIn: 'sim-weak-8b', offset: 0, limit: EVOLVE_BATCH };
    const questionsBefore = await questionsOf(h, campaignId);
    const recordsBefore = await evolvedOf(h, campaignId);
    const callsBefore = await countRows(h, 'llm_calls', campaignId);
    const simBefore = h.sim.stats().requests;

    const again = await runBatch(acts.evolveBatch, batch);
    expect(again).toMatchObject({ processed: EVOLVE_BATCH, created: 0, failed: 0 });

    // Lose a rejected seed's record of the batch, as if its write had never happened.
    const lost = recordsBefore.find(
      (r) => r.outcome === 'rejected' && seeds.findIndex((s) => s.id === r.seed_id) < EVOLVE_BATCH,
    )!;
    expect(lost).toBeDefined();
    await db
      .deleteFrom('evolved_questions')
      .where('campaign_id', '=', campaignId)
      .where('seed_id', '=', lost.seed_id)
      .execute();
    const redo = await runBatch(acts.evolveBatch, batch);
    expect(redo).toMatchObject({ processed: EVOLVE_BATCH, created: 1, failed: 0 });

    const strip = <T extends { created_at: unknown }>(rows: T[]) => rows.map(({ created_at: _, ...r }) => r);
    expect(strip(await evolvedOf(h, campaignId))).toEqual(strip(recordsBefore));
    expect(await questionsOf(h, campaignId)).toEqual(questionsBefore);
    expect(await countRows(h, 'llm_calls', campaignId)).toBe(callsBefore);
    expect(h.sim.stats().requests).toBe(simBefore);
    expect(await paidTwice(h, [campaignId])).toEqual([]);
  });
});

describe('evolve batches run twice at once (overlapping attempts)', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ worker: false, latencyMs: 40 });
  }, 60_000);

  afterAll(async () => {
    await h?.close();
  });

  it('decide each seed once: no question twice, no request paid twice', async () => {
    const seeds = await exampleQuestions(12);
    const { campaignId } = await campaignForCalls(h, {
      name: 'evolve-overlap',
      questions: { train: await writeQuestions(h.tmp, 'overlap-train.jsonl', seeds) },
      stages: { evolve: { enabled: true } },
    });
    const { db } = h.clients;
    const deps = { db, artifactsDir: h.artifactsDir, env: {}, hostId: 'test' };
    // Two workers' attempts of the same batch, each with its own gateway and known questions.
    const a = evolveActivities({ ...deps, llm: new LlmGateway(db) });
    const b = evolveActivities({ ...deps, llm: new LlmGateway(db) });
    const batch = { campaignId, iteration: 1, modelIn: 'sim-weak-8b', offset: 0, limit: seeds.length };
    const [ra, rb] = await Promise.all([runBatch(a.evolveBatch, batch), runBatch(b.evolveBatch, batch)]);
    expect(ra.created + rb.created).toBe(seeds.length);

    const records = await evolvedOf(h, campaignId);
    expect(records).toHaveLength(seeds.length);
    const questions = await questionsOf(h, campaignId);
    const train = questions.filter((q) => q.split === 'train');
    expect(train.map((q) => q.ordinal)).toEqual(train.map((_, i) => i));
    expect(
      train
        .filter((q) => q.origin === 'evolved')
        .map((q) => q.id)
        .sort(),
    ).toEqual(
      records
        .filter((r) => r.outcome === 'kept')
        .map((r) => evolvedQuestionId(r.seed_id))
        .sort(),
    );
    expect(servedAtSim(h, 'evolved_question')).toBe(seeds.length);
    expect(await paidTwice(h, [campaignId])).toEqual([]);
  });
});
