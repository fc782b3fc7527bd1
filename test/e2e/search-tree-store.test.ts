/**
 * Search trees in PostgreSQL (core/search/pg-tree-store.ts): SRA-MCTS over the simulator with its
 * tree in the database, killed before a round's save and resumed with a fresh store, ends with the
 * tree of an uninterrupted run; rStar's nodes come back as saved; a stale save changes nothing;
 * and the audit nests each iteration's tree as its rows say.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Endpoint } from '../../core/llm/gateway';
import { LlmGateway } from '../../core/llm/gateway';
import {
  pgTreeStore,
  searchTreeAudit,
  searchTreeRows,
  type AuditNode,
  type SearchNodeRow,
  type SearchTreeKey,
} from '../../core/search/pg-tree-store';
import { rstarSearch, type RStarNode } from '../../core/search/rstar';
import { llmRStarPolicy } from '../../core/search/rstar-policy';
import { sraMcts, type SraMctsStore, type TreeNode } from '../../core/search/sra-mcts';
import { llmSraMctsPolicy } from '../../core/search/sra-mcts-policy';
import type { SearchNode, SearchTreeStore } from '../../core/search/tree';
import { campaignForCalls, startHarness, type Harness } from '../support/harness';
import { memoryTreeStore } from '../support/memory-tree-store';

let h: Harness;
let weak: Endpoint;
let campaignId: string;
let questions: { id: string; title: string | null; question: string }[];
const DOMAIN = 'Kubernetes operations';
const MCTS = 'mcts-tree';
const RSTAR = 'rstar-tree';

beforeAll(async () => {
  h = await startHarness({ worker: false });
  const made = await campaignForCalls(h, { name: 'search-tree-store' });
  campaignId = made.campaignId;
  weak = { ...made.spec.models.weak, role: 'weak' };
  // The campaign's own questions: a tree's rows reference them.
  questions = await h.clients.db
    .selectFrom('questions')
    .select(['id', 'title', 'question'])
    .where('campaign_id', '=', campaignId)
    .where('split', '=', 'train')
    .orderBy('ordinal')
    .limit(3)
    .execute();
  expect(questions).toHaveLength(3);
}, 60_000);

afterAll(async () => {
  await h?.close();
});

const key = (stage: string, iteration: number, q = questions[0]!): SearchTreeKey => ({
  campaignId,
  stage,
  iteration,
  questionId: q.id,
});

/** `store`, but the save of `killAtStep` fails once, as a worker killed before it saved would. */
function killing<N extends SearchNode>(
  store: SearchTreeStore<N>,
  killAtStep: number,
): { store: SearchTreeStore<N>; saved: number[] } {
  let kill: number | undefined = killAtStep;
  const saved: number[] = [];
  return {
    saved,
    store: {
      load: () => store.load(),
      async save(nodes, step) {
        if (kill === step) {
          kill = undefined;
          throw new Error('worker killed');
        }
        await store.save(nodes, step);
        saved.push(step);
      },
    },
  };
}

const mcts = (iteration: number, store: SraMctsStore, q = questions[0]!) =>
  sraMcts(
    llmSraMctsPolicy({
      // A new gateway for each attempt, as a restarted worker has.
      llm: new LlmGateway(h.clients.db),
      scope: { campaignId, stage: MCTS, iteration },
      endpoint: weak,
      domain: DOMAIN,
      question: { title: q.title, question: q.question },
      temperature: 0.7,
      attempts: 2,
    }),
    store,
    { iterationLimit: 3 },
  );

describe('search trees in PostgreSQL', () => {
  it('an SRA-MCTS search killed before a save resumes from the saved round, and ends with the uninterrupted tree', async () => {
    const reference = await mcts(1, pgTreeStore<TreeNode>(h.clients.db, key(MCTS, 1)));
    expect(reference.rounds).toBe(3);

    const crashing = killing(pgTreeStore<TreeNode>(h.clients.db, key(MCTS, 2)), 2);
    await expect(mcts(2, crashing.store)).rejects.toThrow('worker killed');
    // Round 1 is saved whole and nothing of round 2 is.
    const afterCrash = await pgTreeStore<TreeNode>(h.clients.db, key(MCTS, 2)).load();
    expect(afterCrash?.step).toBe(1);
    expect(afterCrash?.nodes.every((n) => n.round <= 1)).toBe(true);

    // A fresh store object over the same key, as a restarted worker makes.
    const resuming = killing(pgTreeStore<TreeNode>(h.clients.db, key(MCTS, 2)), -1);
    const resumed = await mcts(2, resuming.store);
    expect(resuming.saved).toEqual([2, 3]);
    expect(resumed).toEqual(reference);

    const whole = await pgTreeStore<TreeNode>(h.clients.db, key(MCTS, 1)).load();
    const again = await pgTreeStore<TreeNode>(h.clients.db, key(MCTS, 2)).load();
    expect(again).toEqual(whole);
    expect(whole?.step).toBe(3);
    for (const iteration of [1, 2]) {
      const rows = await searchTreeRows(h.clients.db, campaignId, MCTS, {
        iteration,
        questionId: questions[0]!.id,
      });
      expect(rows).toHaveLength(reference.nodes);
      expect(rows.map((r) => r.id)).toEqual([...Array(reference.nodes).keys()]);
    }
  });

  it('the audit nests each iteration of a question as its rows say', async () => {
    const trees = await searchTreeAudit(h.clients.db, campaignId, MCTS, questions[0]!.id);
    expect(trees.map((t) => [t.iteration, t.step])).toEqual([
      [1, 3],
      [2, 3],
    ]);
    for (const t of trees) {
      const rows = await searchTreeRows(h.clients.db, campaignId, MCTS, {
        iteration: t.iteration,
        questionId: questions[0]!.id,
      });
      expect(t.size).toBe(rows.length);
      expect(t.root).not.toBeNull();
      expect(flatten(t.root!)).toEqual(expectedTree(rows));
      // The node's own fields are there, beside the structure.
      expect(t.root).toMatchObject({ id: 0, depth: 0, step: '', round: 0 });
      expect(t.root!.children.length).toBeGreaterThan(0);
    }
    // Another question's tree is not mixed in.
    expect(await searchTreeAudit(h.clients.db, campaignId, MCTS, questions[1]!.id)).toEqual([]);
  });

  it('rStar nodes come back with every field, and its search resumes from the database', async () => {
    const policy = (iteration: number) =>
      llmRStarPolicy({
        llm: new LlmGateway(h.clients.db),
        scope: { campaignId, stage: RSTAR, iteration },
        endpoint: weak,
        domain: DOMAIN,
        question: { title: questions[1]!.title, question: questions[1]!.question },
        samples: 4,
        temperature: 0.8,
      });
    const memory = memoryTreeStore<RStarNode>();
    const reference = await rstarSearch(policy(1), memory.store, { rollouts: 6 });

    const k = key(RSTAR, 2, questions[1]);
    const crashing = killing(pgTreeStore<RStarNode>(h.clients.db, k), 4);
    await expect(rstarSearch(policy(2), crashing.store, { rollouts: 6 })).rejects.toThrow('worker killed');
    const resumed = await rstarSearch(policy(2), pgTreeStore<RStarNode>(h.clients.db, k), { rollouts: 6 });
    expect(resumed.all()).toEqual(reference.all());
    const loaded = await pgTreeStore<RStarNode>(h.clients.db, k).load();
    expect(loaded).toEqual({ step: 6, nodes: reference.all() });
    expect(loaded?.nodes.some((n) => n.answer !== null && n.terminal)).toBe(true);
  });

  it('load(save(x)) is x; a save of an earlier or the same step changes nothing', async () => {
    const store = pgTreeStore<RStarNode>(h.clients.db, key(RSTAR, 3, questions[2]));
    expect(await store.load()).toBeNull();
    const nodes: RStarNode[] = [
      rnode({ id: 0, parentId: null, depth: 0, action: null, expanded: true, explored: true, n: 2, q: 0.75 }),
      rnode({ id: 1, parentId: 0, depth: 1, action: 'A5', text: 'Given: "x" \\ y\n', q: 0.1 + 0.2, n: 1 }),
      rnode({
        id: 2,
        parentId: 0,
        depth: 1,
        action: 'A2',
        text: 'Ünïcode ✓',
        answer: '42',
        confidence: 2 / 3,
        terminal: true,
        q: 1e-7,
        n: 3,
        explored: true,
      }),
    ];
    await store.save(nodes, 1);
    expect(await store.load()).toEqual({ step: 1, nodes });

    const changed = { ...nodes[1]!, q: 0.5, n: 2, expanded: true };
    const added = rnode({ id: 3, parentId: 1, depth: 2, action: 'A1', text: 'next' });
    await store.save([changed, added], 2);
    const step2 = { step: 2, nodes: [nodes[0]!, changed, nodes[2]!, added] };
    expect(await store.load()).toEqual(step2);

    // A stale attempt's save (step 1) and a rerun of the last one's transaction (step 2).
    await store.save([{ ...nodes[1]!, text: 'stale' }], 1);
    await store.save([{ ...added, text: 'again' }], 2);
    expect(await store.load()).toEqual(step2);
  });
});

function rnode(n: Partial<RStarNode> & SearchNode): RStarNode {
  return {
    action: null,
    text: '',
    answer: null,
    confidence: 0,
    terminal: false,
    q: 0,
    n: 0,
    expanded: false,
    explored: false,
    ...n,
  };
}

interface Flat {
  id: number;
  depth: number;
  parentId: number | null;
  children: number[];
  data: Record<string, unknown>;
}

/** Every node of an audit tree once, with its parent and its children's ids, by id. */
function flatten(root: AuditNode): Flat[] {
  const out: Flat[] = [];
  const walk = (node: AuditNode, parentId: number | null) => {
    const { id, depth, children, ...data } = node;
    out.push({ id, depth, parentId, children: children.map((c) => c.id), data });
    for (const c of children) {
      expect(c.depth).toBe(depth + 1);
      walk(c, id);
    }
  };
  walk(root, null);
  return out.sort((a, b) => a.id - b.id);
}

/** The same, recomputed from the rows alone. */
function expectedTree(rows: readonly SearchNodeRow[]): Flat[] {
  return rows.map((r) => ({
    id: r.id,
    depth: r.depth,
    parentId: r.parentId,
    children: rows.filter((c) => c.parentId === r.id).map((c) => c.id),
    data: r.data,
  }));
}
