/**
 * The `mcts` stage (SRA-MCTS, stages/mcts/) end to end on the simulator (a simulation of the
 * current model: infra/sim answers the reflection, step and step-score prompts). Three campaigns,
 * each with only mcts enabled:
 *
 * - at the search's defaults: one record per question whose chosen path, value and size are
 *   recomputed from the saved tree rows, the SFT dataset recomputed from the records, every call
 *   attributed to one question's rounds, the calls per question measured at the server, and
 *   `meteorctl audit tree`;
 * - a real `meteorctl worker` killed with SIGKILL while trees are mid-search, then a new one: the
 *   campaign completes, each tree continues after its last saved round (no call of a saved round is
 *   made again), and no request is paid twice at the server beyond those in flight at the kill;
 * - the stage's own budget (`stages.mcts.maxCostUsd`) pauses the campaign, and raising it completes.
 *
 * The three run at the same time (describe.concurrent), each on a harness of its own (its own
 * task queue, simulator and campaign): the killed worker's 20 s heartbeat timeout would otherwise
 * be the whole file waiting.
 */
import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignStatus } from '../../client/status';
import { auditRecords } from '../../core/records';
import { renderQuestion, sftSystemPrompt } from '../../core/prompts/common';
import {
  exampleQuestions,
  launch,
  meteorctl,
  startHarness,
  waitDone,
  waitFor,
  writeQuestions,
  writeSpec,
  type CampaignStatusView,
  type Harness,
} from '../support/harness';
import { paidTwice, servedFor } from '../support/paid-twice';
import { campaignResultWithin, exited, spawnHarnessWorker, stopProcesses } from '../support/worker-process';

const DOMAIN = 'Kubernetes operations and troubleshooting';
/** The paper's value gate (stages.mcts.endGate's default). */
const END_GATE = 8.8;

/** A file of the example's first `n` training questions (the simulator knows their references). */
async function trainFile(h: Harness, n: number): Promise<string> {
  return writeQuestions(h.tmp, `train-${n}.jsonl`, await exampleQuestions(n));
}

/** The stages of an mcts-only campaign (distill is on in the harness's spec; the rest are off). */
function mctsOnly(mcts: Record<string, unknown> = {}): Record<string, unknown> {
  return { distill: { enabled: false }, mcts: { enabled: true, ...mcts } };
}

interface RecordRow {
  question_id: string;
  model_in: string;
  steps: string[];
  answer: string;
  value: number;
  reached_gate: boolean;
  rounds: number;
  nodes: number;
}

async function recordsOf(h: Harness, campaignId: string): Promise<RecordRow[]> {
  return h.clients.db
    .selectFrom('mcts_records as r')
    .innerJoin('questions as q', (j) =>
      j.onRef('q.campaign_id', '=', 'r.campaign_id').onRef('q.id', '=', 'r.question_id'),
    )
    .select([
      'r.question_id',
      'r.model_in',
      'r.steps',
      'r.answer',
      'r.value',
      'r.reached_gate',
      'r.rounds',
      'r.nodes',
    ])
    .where('r.campaign_id', '=', campaignId)
    .where('r.iteration', '=', 1)
    .orderBy('q.ordinal')
    .execute();
}

interface NodeRow {
  question_id: string;
  node_id: number;
  parent_id: number | null;
  step: string;
  value: number;
  fullyExpanded: boolean;
  round: number;
}

/** The saved nodes of the campaign's mcts trees (iteration 1), by question, in node id order. */
async function treesOf(h: Harness, campaignId: string): Promise<Map<string, NodeRow[]>> {
  const rows = await h.clients.db
    .selectFrom('search_nodes')
    .select(['question_id', 'node_id', 'parent_id', 'data'])
    .where('campaign_id', '=', campaignId)
    .where('stage', '=', 'mcts')
    .where('iteration', '=', 1)
    .orderBy('question_id')
    .orderBy('node_id')
    .execute();
  const out = new Map<string, NodeRow[]>();
  for (const r of rows) {
    const d = r.data as { step: string; value: number; fullyExpanded: boolean; round: number };
    const list = out.get(r.question_id) ?? [];
    list.push({
      question_id: r.question_id,
      node_id: r.node_id,
      parent_id: r.parent_id,
      step: d.step,
      value: d.value,
      fullyExpanded: d.fullyExpanded,
      round: d.round,
    });
    out.set(r.question_id, list);
  }
  return out;
}

/** The last saved round of each of the campaign's mcts trees (iteration 1). */
async function savedRounds(h: Harness, campaignId: string): Promise<Map<string, number>> {
  const rows = await h.clients.db
    .selectFrom('search_trees')
    .select(['question_id', 'step'])
    .where('campaign_id', '=', campaignId)
    .where('stage', '=', 'mcts')
    .where('iteration', '=', 1)
    .execute();
  return new Map(rows.map((r) => [r.question_id, r.step]));
}

/** Each question's round → call ids (mcts_round_calls, iteration 1). */
async function roundCallsOf(h: Harness, campaignId: string): Promise<Map<string, Map<number, string[]>>> {
  const rows = await h.clients.db
    .selectFrom('mcts_round_calls')
    .select(['question_id', 'round', 'call_ids'])
    .where('campaign_id', '=', campaignId)
    .where('iteration', '=', 1)
    .execute();
  const out = new Map<string, Map<number, string[]>>();
  for (const r of rows) {
    const m = out.get(r.question_id) ?? new Map<number, string[]>();
    m.set(r.round, r.call_ids);
    out.set(r.question_id, m);
  }
  return out;
}

/**
 * The node a record's steps lead to in its saved tree, and the node the search should have chosen
 * without the gate: the highest-valued node, an expanded node's best descendant (ties: the later),
 * recomputed here from the rows (core/search/sra-mcts.ts bestByValue).
 */
function recompute(nodes: NodeRow[], steps: string[]): { end: NodeRow | null; best: NodeRow } {
  const children = (id: number) => nodes.filter((n) => n.parent_id === id);
  const root = nodes.find((n) => n.parent_id === null);
  if (!root) throw new Error('a tree without a root');
  let end: NodeRow | null = root;
  for (const s of steps) {
    const next: NodeRow | undefined = end ? children(end.node_id).find((c) => c.step === s) : undefined;
    end = next ?? null;
  }
  const bestOf = (n: NodeRow): NodeRow => {
    if (!n.fullyExpanded) return n;
    let best = n;
    for (const c of children(n.node_id)) {
      const sub = bestOf(c);
      if (sub.value >= best.value) best = sub;
    }
    return best;
  };
  return { end, best: bestOf(root) };
}

/** The SFT assistant text, written out here rather than taken from the stage's code. */
function expectedCompletion(steps: string[], answer: string): string {
  return `Reasoning:\n${steps.map((s, i) => `${i + 1}. ${s}`).join('\n')}\n\nFinal answer:\n${answer}`;
}

describe.concurrent('the mcts stage at the defaults', () => {
  const QUESTIONS = 8;
  let h: Harness;
  let campaignId: string;
  let final: CampaignStatusView;

  beforeAll(async () => {
    h = await startHarness();
    const spec = await writeSpec(h, {
      name: 'mcts-stage',
      questions: { train: await trainFile(h, QUESTIONS) },
      stages: mctsOnly(),
    });
    ({ campaignId } = await launch(h, spec));
    final = await waitDone(h, campaignId, 150_000);
  }, 180_000);

  afterAll(async () => {
    await h?.close();
  });

  it('completes: M0 → M1 made by the mcts fine-tune, one record per question', async () => {
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    expect(final.lineage.map((m) => [m.label, m.parent, m.stage, m.iteration])).toEqual([
      ['M0', null, null, null],
      ['M1', 'M0', 'mcts', 1],
    ]);
    expect(final.stages.find((s) => s.stage === 'mcts')).toMatchObject({
      status: 'completed',
      total: QUESTIONS,
      records: QUESTIONS,
      failed: 0,
    });
    const records = await recordsOf(h, campaignId);
    expect(records.map((r) => r.question_id)).toEqual((await exampleQuestions(QUESTIONS)).map((q) => q.id));
    for (const r of records) expect(r.model_in).toBe(final.lineage[0]?.servedModel);
  });

  it("each record is its saved tree's: node rows = nodes, rounds = the saved round, the path and value recomputed", async () => {
    const records = await recordsOf(h, campaignId);
    const trees = await treesOf(h, campaignId);
    const rounds = await savedRounds(h, campaignId);
    for (const r of records) {
      const nodes = trees.get(r.question_id) ?? [];
      expect(nodes).toHaveLength(r.nodes);
      expect(rounds.get(r.question_id)).toBe(r.rounds);
      expect(r.rounds).toBeGreaterThanOrEqual(1);
      expect(r.rounds).toBeLessThanOrEqual(2);
      expect(r.steps.length).toBeGreaterThan(0);
      const { end, best } = recompute(nodes, r.steps);
      // The steps are a path of the tree, from the root, and its last node's value is the record's.
      expect(end).not.toBeNull();
      expect(end?.value).toBe(r.value);
      if (r.reached_gate) expect(r.value).toBeGreaterThanOrEqual(END_GATE);
      else {
        expect(r.rounds).toBe(2);
        expect(end?.node_id).toBe(best.node_id);
      }
      // No step of the simulator states a final answer: the answer is the steps, one per line.
      expect(r.steps.some((s) => /^\s*(final\s+)?answer\s*:/i.test(s))).toBe(false);
      expect(r.answer).toBe(r.steps.join('\n'));
    }
    const run = await h.clients.db
      .selectFrom('stage_runs')
      .select('metrics')
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', 'mcts')
      .where('iteration', '=', 1)
      .executeTakeFirstOrThrow();
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(run.metrics).toMatchObject({
      questions: QUESTIONS,
      reachedGate: records.filter((r) => r.reached_gate).length,
      emptyPaths: 0,
    });
    const m = run.metrics as Record<string, number>;
    expect(m.meanNodes).toBeCloseTo(mean(records.map((r) => r.nodes)), 9);
    expect(m.meanValue).toBeCloseTo(mean(records.map((r) => r.value)), 9);
    expect(m.meanRounds).toBeCloseTo(mean(records.map((r) => r.rounds)), 9);
  });

  it('trains on question → reasoning + final answer, one row per record, recomputed from the rows', async () => {
    const ds = await h.clients.db
      .selectFrom('datasets')
      .selectAll()
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', 'mcts')
      .where('format', '=', 'openai')
      .executeTakeFirstOrThrow();
    expect(ds).toMatchObject({ iteration: 1, kind: 'sft', rows: QUESTIONS });
    const lines = (await readFile(fileURLToPath(ds.uri), 'utf8')).split('\n').filter((l) => l !== '');
    const questions = await h.clients.db
      .selectFrom('questions')
      .select(['id', 'title', 'question'])
      .where('campaign_id', '=', campaignId)
      .execute();
    const byId = new Map(questions.map((q) => [q.id, q]));
    const expected = (await recordsOf(h, campaignId)).map((r) => ({
      messages: [
        { role: 'system', content: sftSystemPrompt(DOMAIN) },
        { role: 'user', content: renderQuestion(byId.get(r.question_id) ?? { question: '?' }) },
        { role: 'assistant', content: expectedCompletion(r.steps, r.answer) },
      ],
    }));
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual(expected);
  });

  it("every call is one question's, in one round; the server answered each once; calls per question reported", async () => {
    const calls = await h.clients.db
      .selectFrom('llm_calls')
      .select(['id', 'purpose', 'status', 'model'])
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', 'mcts')
      .execute();
    expect(calls.every((c) => c.status === 'ok')).toBe(true);
    expect(new Set(calls.map((c) => c.purpose))).toEqual(
      new Set(['mcts-reflect', 'mcts-propose', 'mcts-score']),
    );
    // The current model, M0, on the weak endpoint.
    expect(new Set(calls.map((c) => c.model))).toEqual(new Set([final.lineage[0]?.servedModel]));

    const byRound = await roundCallsOf(h, campaignId);
    const records = await recordsOf(h, campaignId);
    // What the search asked, round by round (a request it repeats — a roll-out's proposal asked
    // again when its node is expanded — is the same logged call), and the distinct calls.
    const asked = records.map((r) => {
      const rounds = byRound.get(r.question_id) ?? new Map<number, string[]>();
      expect([...rounds.keys()].sort()).toEqual(Array.from({ length: r.rounds }, (_, i) => i + 1));
      return [...rounds.values()].flat();
    });
    const perQuestion = asked.map((ids) => [...new Set(ids)]);
    // No call is two questions', and every logged call is one of them.
    const attributed = perQuestion.flat();
    expect(new Set(attributed).size).toBe(attributed.length);
    expect(new Set(attributed)).toEqual(new Set(calls.map((c) => c.id)));
    // At the server: as many answers as logged calls, none paid twice.
    expect(await servedFor(h, [campaignId])).toEqual({ served: calls.length, bodies: calls.length });
    expect(await paidTwice(h, [campaignId])).toEqual([]);

    const counts = perQuestion.map((ids) => ids.length);
    const asks = asked.map((ids) => ids.length);
    process.stderr.write(
      `[mcts-stage] calls per question at the defaults (simulator): ${counts.join(', ')} paid ` +
        `(mean ${(attributed.length / counts.length).toFixed(1)}), ${asks.join(', ')} asked by the search; ` +
        `rounds ${records.map((r) => r.rounds).join(', ')}; ` +
        `nodes ${records.map((r) => r.nodes).join(', ')}; reached the gate ${records.filter((r) => r.reached_gate).length}/${records.length}\n`,
    );
    for (const n of counts) expect(n).toBeGreaterThan(0);
  });

  it('audits each record with its tree size and call ids, and `audit tree` prints the nested tree', async () => {
    const records = await recordsOf(h, campaignId);
    const byRound = await roundCallsOf(h, campaignId);
    const lines: Array<Record<string, unknown>> = [];
    for await (const line of auditRecords(h.clients.db, campaignId, 'mcts')) lines.push(line);
    expect(lines).toHaveLength(records.length);
    for (const [i, r] of records.entries()) {
      const rounds = byRound.get(r.question_id) ?? new Map<number, string[]>();
      expect(lines[i]).toMatchObject({
        stage: 'mcts',
        iteration: 1,
        questionId: r.question_id,
        steps: r.steps,
        answer: r.answer,
        value: r.value,
        reachedGate: r.reached_gate,
        rounds: r.rounds,
        tree: { nodes: r.nodes, savedNodes: r.nodes },
        llmCallIds: [...new Set([...rounds.entries()].sort((a, b) => a[0] - b[0]).flatMap(([, ids]) => ids))],
      });
    }

    const r = records[0]!;
    // Two independent reads: their CLI processes start together.
    const [cli, missing] = await Promise.all([
      meteorctl(h, [
        'audit',
        'tree',
        campaignId,
        '--stage',
        'mcts',
        '--question',
        r.question_id,
        '--iteration',
        '1',
      ]),
      meteorctl(h, ['audit', 'tree', campaignId, '--stage', 'mcts', '--question', 'no-such-q']),
    ]);
    expect(cli.code, cli.stderr).toBe(0);
    interface Printed {
      iteration: number;
      step: number;
      size: number;
      root: PrintedNode;
    }
    interface PrintedNode {
      id: number;
      depth: number;
      step: string;
      value: number;
      children: PrintedNode[];
    }
    const tree = JSON.parse(cli.stdout) as Printed;
    expect(tree).toMatchObject({ iteration: 1, step: r.rounds, size: r.nodes });
    const all: PrintedNode[] = [];
    const walk = (n: PrintedNode) => {
      all.push(n);
      for (const c of n.children) {
        expect(c.depth).toBe(n.depth + 1);
        walk(c);
      }
    };
    walk(tree.root);
    expect(all).toHaveLength(r.nodes);
    expect(tree.root).toMatchObject({ id: 0, depth: 0, step: '' });
    // The record's path is there, node by node.
    let at = tree.root;
    for (const s of r.steps) {
      const next = at.children.find((c) => c.step === s);
      expect(next, `step "${s}" under node ${at.id}`).toBeDefined();
      at = next!;
    }
    expect(at.value).toBe(r.value);

    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/no search tree for question no-such-q in stage mcts/);
  });
});

describe.concurrent('a worker killed with SIGKILL while mcts trees are mid-search', () => {
  const QUESTIONS = 8;
  const ITERATION_LIMIT = 3;
  /** Only the weak endpoint is called: the most requests one worker can have in flight. */
  const WEAK_CONCURRENCY = 4;
  const children: ChildProcess[] = [];
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ latencyMs: 60, worker: false });
  });

  afterAll(async () => {
    await stopProcesses(children, 'SIGKILL');
    await h?.close();
  });

  it('completes on a new worker; each tree goes on after its saved rounds; only calls in flight are paid twice', async () => {
    const specPath = await writeSpec(h, {
      name: 'mcts-kill',
      questions: { train: await trainFile(h, QUESTIONS) },
      models: { weak: { concurrency: WEAK_CONCURRENCY } },
      stages: mctsOnly({ batchSize: 2, iterationLimit: ITERATION_LIMIT }),
    });
    const first = await spawnHarnessWorker(h);
    children.push(first.child);
    const { campaignId, workflowId } = await launch(h, specPath);
    const db = h.clients.db;

    // Trees mid-search: some with a saved round and no record yet, and not every question done.
    await waitFor(
      'mcts trees mid-search',
      async () => {
        const row = await sql<{ mid: number; done: number }>`
          select (select count(*)::int from search_trees t
                   where t.campaign_id = ${campaignId} and t.stage = 'mcts' and t.step >= 1
                     and not exists (select 1 from mcts_records r where r.campaign_id = t.campaign_id
                                       and r.iteration = t.iteration and r.question_id = t.question_id)) as mid,
                 (select count(*)::int from mcts_records where campaign_id = ${campaignId}) as done`.execute(
          db,
        );
        const r = row.rows[0];
        return r && r.mid >= 2 && r.done < QUESTIONS ? r : null;
      },
      90_000,
      25,
    );
    const pid = first.child.pid;
    if (pid === undefined) throw new Error('worker has no pid');
    process.kill(pid, 'SIGKILL');
    await exited(first.child);
    expect(first.child.signalCode).toBe('SIGKILL');

    // The state the dead worker left.
    const roundsAtKill = await savedRounds(h, campaignId);
    const nodesAtKill = await treesOf(h, campaignId);
    const callsAtKill = await roundCallsOf(h, campaignId);
    const doneAtKill = new Set((await recordsOf(h, campaignId)).map((r) => r.question_id));
    const midSearch = [...roundsAtKill].filter(([q, step]) => step >= 1 && !doneAtKill.has(q));
    expect(midSearch.length).toBeGreaterThan(0);
    expect(doneAtKill.size).toBeLessThan(QUESTIONS);
    const okAtKill = await okCalls(campaignId);
    const servedAtKill = h.sim.stats().served;
    expect(servedAtKill - okAtKill).toBeLessThanOrEqual(WEAK_CONCURRENCY);

    const restartAt = new Date();
    const second = await spawnHarnessWorker(h);
    children.push(second.child);
    // The dead worker's batches come back after their heartbeat timeout (20 s).
    const result = await campaignResultWithin(h, workflowId, second, 120_000);
    expect(result.state).toBe('completed');

    const records = await recordsOf(h, campaignId);
    expect(records.map((r) => r.question_id)).toEqual((await exampleQuestions(QUESTIONS)).map((q) => q.id));
    const trees = await treesOf(h, campaignId);
    const rounds = await savedRounds(h, campaignId);
    const roundCalls = await roundCallsOf(h, campaignId);
    const callTimes = new Map(
      (
        await db
          .selectFrom('llm_calls')
          .select(['id', 'created_at'])
          .where('campaign_id', '=', campaignId)
          .where('status', '=', 'ok')
          .execute()
      ).map((c) => [c.id, c.created_at]),
    );
    for (const r of records) {
      expect(trees.get(r.question_id) ?? []).toHaveLength(r.nodes);
      expect(rounds.get(r.question_id)).toBe(r.rounds);
    }
    for (const [q, step] of midSearch) {
      const before = nodesAtKill.get(q) ?? [];
      const after = new Map((trees.get(q) ?? []).map((n) => [n.node_id, n]));
      // The nodes saved before the kill are all there, as they were made (parent, step, round).
      for (const n of before) {
        expect(after.get(n.node_id)).toMatchObject({ parent_id: n.parent_id, step: n.step, round: n.round });
      }
      // What came after is of later rounds only: the search went on from the saved round.
      const added = [...after.values()].filter((n) => !before.some((b) => b.node_id === n.node_id));
      for (const n of added) expect(n.round).toBeGreaterThan(step);
      expect(rounds.get(q)).toBeGreaterThan(step);
      // The saved rounds' calls are the ones made before the kill, none made again after the
      // restart; the rounds after them made calls of their own.
      const calls = roundCalls.get(q) ?? new Map<number, string[]>();
      for (let round = 1; round <= step; round++) {
        expect(calls.get(round)).toEqual(callsAtKill.get(q)?.get(round));
        for (const id of calls.get(round) ?? [])
          expect(callTimes.get(id)?.getTime()).toBeLessThan(restartAt.getTime());
      }
      const later = [...calls].filter(([round]) => round > step).flatMap(([, ids]) => ids);
      expect(later.length).toBeGreaterThan(0);
    }
    // Questions done before the kill were not searched again: their records are as they were.
    for (const q of doneAtKill) {
      expect(rounds.get(q)).toBe(roundsAtKill.get(q));
      expect(trees.get(q)).toEqual(nodesAtKill.get(q));
    }

    // Paid twice, by the server's own count: only what the dead worker had in flight, each once more.
    const paid = await paidTwice(h, [campaignId]);
    const sentBeforeRestart = new Set(
      h.sim
        .stats()
        .recent.filter((r) => Date.parse(r.at) < restartAt.getTime() && r.hash !== undefined)
        .map((r) => r.hash),
    );
    process.stderr.write(
      `[mcts-stage] kill: ${midSearch.length} trees mid-search (saved rounds ${midSearch.map(([, s]) => s).join(', ')}), ` +
        `${doneAtKill.size}/${QUESTIONS} done; ${servedAtKill} served, ${okAtKill} ok calls at the kill; ` +
        `${paid.length} request(s) paid twice\n`,
    );
    expect(paid.length).toBeLessThanOrEqual(WEAK_CONCURRENCY);
    expect(paid.filter((p) => !sentBeforeRestart.has(p.hash) || p.served !== p.calls + 1)).toEqual([]);
  }, 240_000);

  async function okCalls(campaignId: string): Promise<number> {
    const row = await h.clients.db
      .selectFrom('llm_calls')
      .select(sql<number>`count(*)::int`.as('n'))
      .where('campaign_id', '=', campaignId)
      .where('status', '=', 'ok')
      .executeTakeFirstOrThrow();
    return row.n;
  }
});

describe.concurrent("the mcts stage's own budget", () => {
  const QUESTIONS = 4;
  const WEAK_CONCURRENCY = 4;
  const PRICE = { inputPerMTok: 2.5, outputPerMTok: 10 };
  const BUDGET_USD = 0.01;
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ latencyMs: 20 });
  });

  afterAll(async () => {
    await h?.close();
  });

  it('stages.mcts.maxCostUsd pauses the campaign with the reason; raising it with --stage completes, nothing paid twice', async () => {
    const spec = await writeSpec(h, {
      name: 'mcts-budget',
      questions: { train: await trainFile(h, QUESTIONS) },
      // Priced, so that the search's calls (all on the weak endpoint) cost something.
      models: { weak: { concurrency: WEAK_CONCURRENCY, pricing: PRICE } },
      stages: mctsOnly({ batchSize: 2, maxCostUsd: BUDGET_USD }),
    });
    const { campaignId } = await launch(h, spec);
    const paused = await waitFor(
      'the campaign to pause on the mcts budget',
      async () => {
        const s = await campaignStatus(h.clients, campaignId);
        expect(s.state).not.toBe('failed');
        return s.state === 'paused' ? s : null;
      },
      90_000,
    );
    expect(paused.pauseReason).toMatch(
      /^budget of stage mcts reached: \$0\.0\d+ of \$0\.01; raise stages\.mcts\.maxCostUsd and resume/,
    );
    const db = h.clients.db;
    const recordsAtPause = (await recordsOf(h, campaignId)).length;
    expect(recordsAtPause).toBeLessThan(QUESTIONS);
    const jobs = await db
      .selectFrom('finetune_jobs')
      .select('id')
      .where('campaign_id', '=', campaignId)
      .execute();
    expect(jobs).toHaveLength(0);
    // At the server: what it answered, priced, overshoots the budget by at most the calls in flight.
    const weak = h.sim.stats().byModel['sim-weak-8b'];
    if (!weak) throw new Error('the simulator saw no weak request');
    const serverSpend =
      (weak.promptTokens * PRICE.inputPerMTok + weak.completionTokens * PRICE.outputPerMTok) / 1e6;
    const { maxCost } = await db
      .selectFrom('llm_calls')
      .select(sql<number>`coalesce(max(cost_usd), 0)::float8`.as('maxCost'))
      .where('campaign_id', '=', campaignId)
      .executeTakeFirstOrThrow();
    expect(serverSpend).toBeGreaterThanOrEqual(BUDGET_USD);
    expect(serverSpend - BUDGET_USD).toBeLessThanOrEqual(WEAK_CONCURRENCY * maxCost);

    const resumed = await meteorctl(h, [
      'campaign',
      'resume',
      campaignId,
      '--max-cost-usd',
      '100',
      '--stage',
      'mcts',
    ]);
    expect(resumed.code, resumed.stderr).toBe(0);
    const final = await waitDone(h, campaignId, 120_000);
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    expect(final.pauseReason).toBeNull();
    const records = await recordsOf(h, campaignId);
    expect(records).toHaveLength(QUESTIONS);
    const trees = await treesOf(h, campaignId);
    for (const r of records) expect(trees.get(r.question_id) ?? []).toHaveLength(r.nodes);
    // The searches cut off by the budget went on from their saved rounds: nothing answered twice.
    expect(await paidTwice(h, [campaignId])).toEqual([]);
    process.stderr.write(
      `[mcts-stage] budget: paused at $${serverSpend.toFixed(4)} of $${BUDGET_USD} with ${recordsAtPause}/${QUESTIONS} records\n`,
    );
  }, 240_000);
});
