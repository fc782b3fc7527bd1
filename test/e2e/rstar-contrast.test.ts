/**
 * Stage 3 with rStar's decode (`stages.contrast.method: rstar`) against servers without beam search
 * (the simulator refusing use_beam_search; a simulation of the models, infra/sim): the generator's
 * search on the weak endpoint with the current model, the discriminator on its own server, and the
 * pairs recomputed from rows — each candidate's check from the discriminator's logged call, the
 * pick from the candidates and the saved tree, the chosen text from the pick's nodes, the rejected
 * output from the greedy call. Counts the generator and discriminator requests per question at
 * rStar's defaults (16 rollouts, 4 completions per action) and checks none was paid twice. Then
 * the launch refusals: method rstar without models.discriminator, a discriminator endpoint that
 * does not serve its model, and cuts out of order — each naming its field and creating nothing.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../core/errors';
import type { ChatMessage } from '../../core/llm/types';
import { extractFinalAnswer, rstarActionPrompt, rstarDiscriminatePrompt } from '../../core/prompts/rstar';
import { auditRecords } from '../../core/records';
import type { RStarAction } from '../../core/search/rstar';
import { normalizeAnswer } from '../../core/search/rstar-policy';
import { tokenJaccard } from '../../core/text-similarity';
import { startSimServer, type SimServer } from '../../infra/sim/server';
import {
  EXAMPLE_EVAL,
  EXAMPLE_TRAIN,
  exampleQuestions,
  launch,
  startHarness,
  waitDone,
  writeQuestions,
  writeSpec,
  type CampaignStatusView,
  type ExampleQuestion,
  type Harness,
} from '../support/harness';
import { paidTwice } from '../support/paid-twice';

const QUESTIONS = 6;
const ROLLOUTS = 16;
const MAX_SIMILARITY = 0.9;
/** The simulator's small model: the discriminator is a second model of the weak one's size. */
const DISCRIMINATOR_MODEL = 'sim-weak-8b';

interface NodeRow {
  id: number;
  parentId: number | null;
  action: RStarAction | null;
  text: string;
  answer: string | null;
  confidence: number;
  terminal: boolean;
  q: number;
  n: number;
}

interface CallRow {
  id: string;
  role: string;
  base_url: string;
  model: string;
  purpose: string;
  status: string;
  request: { messages: ChatMessage[]; n?: number; temperature?: number } & Record<string, unknown>;
  response: { choices: string[] } | null;
}

let h: Harness;
/** The discriminator's own server (also without beam search). */
let discSim: SimServer;
let campaignId: string;
let final: CampaignStatusView;
let questions: ExampleQuestion[];
let domain: string;

async function callsOf(ids: readonly string[]): Promise<Map<string, CallRow>> {
  if (ids.length === 0) return new Map();
  const rows = await h.clients.db
    .selectFrom('llm_calls')
    .select(['id', 'role', 'base_url', 'model', 'purpose', 'status', 'request', 'response'])
    .where('id', 'in', [...ids])
    .execute();
  return new Map(rows.map((r) => [String(r.id), r as unknown as CallRow]));
}

function pairsOf(id: string) {
  return h.clients.db
    .selectFrom('preference_pairs')
    .selectAll()
    .where('campaign_id', '=', id)
    .orderBy('question_id')
    .execute();
}

function candidatesOf(id: string, questionId: string) {
  return h.clients.db
    .selectFrom('rstar_candidates')
    .selectAll()
    .where('campaign_id', '=', id)
    .where('iteration', '=', 1)
    .where('question_id', '=', questionId)
    .orderBy('node_id')
    .execute();
}

/** A question's saved search tree, as the engine's nodes. */
async function treeOf(id: string, questionId: string): Promise<Map<number, NodeRow>> {
  const rows = await h.clients.db
    .selectFrom('search_nodes')
    .select(['node_id', 'parent_id', 'data'])
    .where('campaign_id', '=', id)
    .where('stage', '=', 'contrast')
    .where('iteration', '=', 1)
    .where('question_id', '=', questionId)
    .orderBy('node_id')
    .execute();
  return new Map(
    rows.map((r) => [
      r.node_id,
      { ...(r.data as Omit<NodeRow, 'id' | 'parentId'>), id: r.node_id, parentId: r.parent_id },
    ]),
  );
}

/** Root excluded, from the root's child down to `id`. */
function pathTo(tree: Map<number, NodeRow>, id: number): NodeRow[] {
  const path: NodeRow[] = [];
  for (let n = tree.get(id); n && n.parentId !== null; n = tree.get(n.parentId)) path.unshift(n);
  return path;
}

const stepsOf = (path: readonly NodeRow[]) => path.map((n) => ({ action: n.action, text: n.text }));
const questionOf = (id: string) => {
  const q = questions.find((x) => x.id === id)!;
  return { title: q.title ?? null, question: q.question };
};

beforeAll(async () => {
  h = await startHarness({ rejectBeamSearch: true });
  discSim = await startSimServer({
    port: 0,
    knowledgeFiles: [EXAMPLE_TRAIN, EXAMPLE_EVAL],
    rejectBeamSearch: true,
  });
  questions = await exampleQuestions(QUESTIONS);
  const spec = await writeSpec(h, {
    name: 'k8s-rstar',
    questions: { train: await writeQuestions(h.tmp, 'train.jsonl', questions) },
    models: { discriminator: { baseURL: discSim.url, model: DISCRIMINATOR_MODEL, concurrency: 4 } },
    stages: {
      distill: { enabled: false },
      contrast: {
        enabled: true,
        iterations: 1,
        method: 'rstar',
        maxSimilarity: MAX_SIMILARITY,
        batchSize: 3,
      },
    },
  });
  const launched = await launch(h, spec);
  campaignId = launched.campaignId;
  final = await waitDone(h, campaignId, 150_000);
  const row = await h.clients.db
    .selectFrom('campaigns')
    .select('domain')
    .where('id', '=', campaignId)
    .executeTakeFirstOrThrow();
  domain = row.domain;
}, 180_000);

afterAll(async () => {
  await discSim?.close();
  await h?.close();
});

describe('contrast with method rstar on servers without beam search', () => {
  it('completes: one pair per question, a preference fine-tune M0 → M1, no beam search asked for', async () => {
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    expect(final.lineage.map((m) => [m.label, m.parent, m.stage])).toEqual([
      ['M0', null, null],
      ['M1', 'M0', 'contrast'],
    ]);
    const pairs = await pairsOf(campaignId);
    expect(pairs.map((p) => p.question_id).sort()).toEqual(questions.map((q) => q.id).sort());
    for (const p of pairs)
      expect(p).toMatchObject({ method: 'rstar', model_in: final.lineage[0]!.servedModel });
    for (const sim of [h.sim, discSim]) {
      const recent = sim.stats().recent;
      expect(recent.length).toBeGreaterThan(0);
      expect(recent.filter((r) => r.use_beam_search !== undefined || r.status !== 200)).toEqual([]);
    }
  });

  it("saves each question's tree: every rollout, from the root", async () => {
    const trees = await h.clients.db
      .selectFrom('search_trees')
      .select(['question_id', 'step'])
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', 'contrast')
      .where('iteration', '=', 1)
      .execute();
    expect(trees.map((t) => t.question_id).sort()).toEqual(questions.map((q) => q.id).sort());
    for (const t of trees) {
      expect(t.step).toBe(ROLLOUTS);
      const tree = await treeOf(campaignId, t.question_id);
      expect(tree.size).toBeGreaterThan(1);
      expect(tree.get(0)).toMatchObject({ parentId: null, action: null, n: ROLLOUTS });
      expect(new Set([...tree.values()].map((n) => n.action))).toContain('A5');
    }
  });

  it('checks every candidate with the discriminator on its own endpoint, as its logged calls say', async () => {
    let consistentQuestions = 0;
    for (const q of questions) {
      const tree = await treeOf(campaignId, q.id);
      const candidates = await candidatesOf(campaignId, q.id);
      // A candidate per terminal node with an answer, and no other.
      const terminals = [...tree.values()].filter((n) => n.terminal && n.answer !== null).map((n) => n.id);
      expect(candidates.map((c) => c.node_id)).toEqual(terminals);
      const calls = await callsOf(candidates.map((c) => String(c.discriminator_call_id)));
      for (const c of candidates) {
        const node = tree.get(c.node_id)!;
        const path = pathTo(tree, c.node_id);
        expect(c.answer).toBe(node.answer);
        expect(c.steps).toBe(path.length);
        expect(c.score).toBeCloseTo((node.n > 0 ? node.q / node.n : 0) * node.confidence, 12);
        // Cut at 20–50 % of the trajectory; a one-step trajectory is solved from the question alone.
        if (path.length === 1) expect(c.cut).toBe(0);
        else {
          expect(c.cut).toBeGreaterThanOrEqual(Math.max(1, Math.round(0.2 * path.length)));
          expect(c.cut).toBeLessThanOrEqual(
            Math.min(path.length - 1, Math.max(1, Math.round(0.5 * path.length))),
          );
        }
        const call = calls.get(String(c.discriminator_call_id))!;
        expect(call).toMatchObject({
          role: 'discriminator',
          base_url: discSim.url,
          model: DISCRIMINATOR_MODEL,
          purpose: 'rstar-discriminate',
          status: 'ok',
        });
        expect(call.request.messages).toEqual(
          rstarDiscriminatePrompt(domain, questionOf(q.id), stepsOf(path.slice(0, c.cut))),
        );
        const answered = extractFinalAnswer(call.response!.choices[0]!);
        expect(c.discriminator_answer).toBe(answered);
        expect(c.consistent).toBe(
          answered !== null && normalizeAnswer(answered) === normalizeAnswer(c.answer),
        );
      }
      if (candidates.some((c) => c.consistent)) consistentQuestions++;
    }
    // The simulated discriminator agrees on some questions and on none of another's candidates.
    expect(consistentQuestions).toBeGreaterThan(0);
    expect(consistentQuestions).toBeLessThan(QUESTIONS);
  });

  it('chooses the best consistent trajectory, rejects the greedy decode, and drops questions without one', async () => {
    const pairs = await pairsOf(campaignId);
    const greedyCalls = await callsOf(pairs.map((p) => String(p.greedy_call_id)));
    for (const p of pairs) {
      const greedy = greedyCalls.get(String(p.greedy_call_id))!;
      expect(greedy).toMatchObject({ purpose: 'greedy', role: 'weak', model: final.lineage[0]!.servedModel });
      expect(greedy.request).toMatchObject({ n: 1, temperature: 0 });
      expect(p.rejected).toBe(greedy.response!.choices[0]);

      const tree = await treeOf(campaignId, p.question_id);
      const consistent = (await candidatesOf(campaignId, p.question_id)).filter((c) => c.consistent);
      // Highest score; the earliest node on a tie.
      const best = consistent.reduce<(typeof consistent)[number] | null>(
        (b, c) => (b === null || c.score > b.score ? c : b),
        null,
      );
      if (best === null) {
        expect(p).toMatchObject({
          chosen: '',
          kept: false,
          drop_reason: 'no-consistent-trajectory',
          chosen_path: null,
          chosen_call_ids: null,
          similarity: 0,
        });
        continue;
      }
      const path = pathTo(tree, best.node_id);
      expect(p.chosen_path).toEqual(path.map((n) => n.id));
      expect(p.chosen).toBe(
        [...path.map((n) => n.text.trim()).filter((t) => t !== ''), `The answer is: ${best.answer}`].join(
          '\n',
        ),
      );
      expect(p.similarity).toBeCloseTo(tokenJaccard(p.chosen, p.rejected), 12);
      expect(p.kept).toBe(p.similarity < MAX_SIMILARITY);
      expect(p.drop_reason).toBe(p.kept ? null : 'near-identical');
      // Each step's generator call: its action, on the weak endpoint with the current model, asked
      // after exactly the steps before it.
      const callIds = p.chosen_call_ids!;
      expect(callIds).toHaveLength(path.length);
      expect(String(p.high_call_id)).toBe(callIds[callIds.length - 1]);
      const calls = await callsOf(callIds);
      path.forEach((node, i) => {
        const call = calls.get(callIds[i]!)!;
        expect(call).toMatchObject({
          purpose: `rstar-${node.action}`,
          role: 'weak',
          model: final.lineage[0]!.servedModel,
          base_url: h.sim.url,
        });
        expect(call.request.messages).toEqual(
          rstarActionPrompt(domain, questionOf(p.question_id), stepsOf(path.slice(0, i)), node.action!),
        );
      });
    }
    expect(pairs.some((p) => p.kept)).toBe(true);
    expect(pairs.some((p) => p.drop_reason === 'no-consistent-trajectory')).toBe(true);
  });

  it('reports its figures from the rows, and trains on the kept pairs only', async () => {
    const pairs = await pairsOf(campaignId);
    const counts = await h.clients.db
      .selectFrom('rstar_candidates')
      .select([
        sql<number>`count(*)::int`.as('all'),
        sql<number>`count(*) filter (where consistent)::int`.as('ok'),
      ])
      .where('campaign_id', '=', campaignId)
      .executeTakeFirstOrThrow();
    const run = await h.clients.db
      .selectFrom('stage_runs')
      .select('metrics')
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', 'contrast')
      .executeTakeFirstOrThrow();
    expect(run.metrics).toMatchObject({
      pairs: QUESTIONS,
      kept: pairs.filter((p) => p.kept).length,
      droppedNearIdentical: pairs.filter((p) => p.drop_reason === 'near-identical').length,
      droppedNoConsistent: pairs.filter((p) => p.drop_reason === 'no-consistent-trajectory').length,
      rstarCandidates: counts.all,
      rstarConsistent: counts.ok,
    });
    expect(run.metrics.consistentShare).toBeCloseTo(counts.ok / counts.all, 12);
    const datasets = await h.clients.db
      .selectFrom('datasets')
      .select('rows')
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', 'contrast')
      .execute();
    expect(datasets.length).toBeGreaterThan(0);
    for (const d of datasets) expect(d.rows).toBe(pairs.filter((p) => p.kept).length);
  });

  it('audits each pair with its candidates, the chosen path, and the discriminator and trajectory calls', async () => {
    const pairs = new Map((await pairsOf(campaignId)).map((p) => [p.question_id, p]));
    const lines: Array<Record<string, unknown>> = [];
    for await (const line of auditRecords(h.clients.db, campaignId, 'contrast')) lines.push(line);
    expect(lines).toHaveLength(QUESTIONS);
    for (const l of lines) {
      const p = pairs.get(l.questionId as string)!;
      const candidates = await candidatesOf(campaignId, p.question_id);
      const rstar = l.rstar as {
        candidates: number;
        consistent: number;
        chosenPath: number[] | null;
        checks: unknown[];
      };
      expect(l).toMatchObject({ method: 'rstar', kept: p.kept, dropReason: p.drop_reason });
      expect(rstar).toMatchObject({
        candidates: candidates.length,
        consistent: candidates.filter((c) => c.consistent).length,
        chosenPath: p.chosen_path,
      });
      expect(rstar.checks).toHaveLength(candidates.length);
      const ids = l.llmCallIds as {
        high: string;
        greedy: string;
        discriminator: string[];
        trajectory: string[];
      };
      expect(new Set(ids.discriminator)).toEqual(
        new Set(candidates.map((c) => String(c.discriminator_call_id))),
      );
      expect(ids.trajectory).toEqual(p.chosen_call_ids ?? []);
      expect(String(ids.high)).toBe(String(p.high_call_id));
    }
  });

  it('pays for no request twice, and logs the requests per question', async () => {
    expect(await paidTwice(h, [campaignId])).toEqual([]);
    expect(await paidTwice({ sim: discSim, clients: h.clients }, [campaignId])).toEqual([]);
    const calls = await h.clients.db
      .selectFrom('llm_calls')
      .select(['role', 'purpose', 'request'])
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', 'contrast')
      .where('status', '=', 'ok')
      .execute();
    const perQuestion = questions.map((q) => {
      const needle = JSON.stringify(q.question).slice(1, -1);
      const mine = calls.filter((c) => JSON.stringify(c.request).includes(needle));
      return {
        generator: mine.filter((c) => c.role === 'weak' && c.purpose.startsWith('rstar-')).length,
        discriminator: mine.filter((c) => c.role === 'discriminator').length,
        greedy: mine.filter((c) => c.purpose === 'greedy').length,
      };
    });
    // Each logged call is a request the servers answered once (paidTwice above): these are their counts.
    const sum = (k: 'generator' | 'discriminator') => perQuestion.reduce((s, c) => s + c[k], 0);
    expect(sum('discriminator')).toBe(discSim.stats().served);
    expect(sum('generator') + perQuestion.length).toBe(h.sim.stats().served);
    for (const c of perQuestion) {
      expect(c.greedy).toBe(1);
      expect(c.generator).toBeGreaterThan(0);
      expect(c.discriminator).toBeGreaterThan(0);
    }
    process.stderr.write(
      `[rstar-contrast] requests per question at ${ROLLOUTS} rollouts, 4 completions per action: ` +
        perQuestion
          .map((c, i) => `q${i + 1} ${c.generator} generator + ${c.discriminator} discriminator`)
          .join('; ') +
        ` (mean ${(sum('generator') / QUESTIONS).toFixed(1)} + ${(sum('discriminator') / QUESTIONS).toFixed(1)}, plus 1 greedy)\n`,
    );
  });
});

describe('launching method rstar refuses bad input, creating nothing', () => {
  /** Rows of campaigns named `name` and of their questions. */
  async function rowsNamed(name: string): Promise<number> {
    const row = await h.clients.db
      .selectFrom('campaigns')
      .leftJoin('questions', 'questions.campaign_id', 'campaigns.id')
      .select(sql<number>`count(*)::int`.as('n'))
      .where('campaigns.name', '=', name)
      .executeTakeFirstOrThrow();
    return row.n;
  }

  async function refused(name: string, overrides: Record<string, unknown>): Promise<string> {
    const spec = await writeSpec(h, {
      name,
      stages: { distill: { enabled: false }, contrast: { enabled: true, method: 'rstar' } },
      ...overrides,
    });
    const err = await launch(h, spec).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err, 'expected the launch to be refused').toBeInstanceOf(UserError);
    expect(await rowsNamed(name)).toBe(0);
    return (err as UserError).message;
  }

  it('without models.discriminator: names the field and says what to do', async () => {
    const message = await refused('k8s-rstar-no-disc', {});
    expect(message).toMatch(/models\.discriminator: required while stages\.contrast\.method is rstar/);
    expect(message).toMatch(/best-of-n/);
  });

  it('a discriminator endpoint that does not serve its model: preflight names models.discriminator', async () => {
    const message = await refused('k8s-rstar-bad-disc', {
      models: { discriminator: { baseURL: discSim.url, model: 'sim-missing' } },
    });
    expect(message).toContain(`models.discriminator: ${discSim.url} does not serve model "sim-missing"`);
  });

  it('cuts out of order: names stages.contrast.rstar.cutTo', async () => {
    const message = await refused('k8s-rstar-bad-cut', {
      models: { discriminator: { baseURL: discSim.url, model: DISCRIMINATOR_MODEL } },
      stages: {
        distill: { enabled: false },
        contrast: { enabled: true, method: 'rstar', rstar: { cutFrom: 0.6, cutTo: 0.3 } },
      },
    });
    expect(message).toContain('stages.contrast.rstar.cutTo: at least cutFrom');
  });
});
