/**
 * rStar's generator search and discriminator (core/search/rstar.ts) on a scripted policy: the
 * action rules, UCT, what a rollout expands and back-propagates, the depth limit, a search resumed
 * after a crash, and the mutual-consistency pick. The policy is a script of the model's answers.
 */
import { describe, expect, it } from 'vitest';
import {
  allowedActions,
  mutualConsistency,
  rstarSearch,
  RStarTree,
  uct,
  type Generated,
  type RStarAction,
  type RStarNode,
  type RStarPolicy,
} from '../../core/search/rstar';
import { memoryTreeStore } from '../support/memory-tree-store';

/** A2 samples two completions: "42" (3 of 4) and "41" (1 of 4); the other actions make one step. */
function scripted() {
  const calls: Array<{ action: RStarAction; depth: number }> = [];
  const policy: RStarPolicy = {
    async generate(path, action): Promise<Generated[]> {
      calls.push({ action, depth: path.length });
      if (action === 'A2')
        return [
          { text: 'the rest, to 42', answer: '42', confidence: 0.75, final: true },
          { text: 'the rest, to 41', answer: '41', confidence: 0.25, final: true },
        ];
      return [{ text: `${action} at depth ${path.length + 1}`, answer: null, confidence: 0, final: false }];
    },
  };
  return { policy, calls };
}

const memoryStore = (o?: Parameters<typeof memoryTreeStore>[0]) => memoryTreeStore<RStarNode>(o);

describe('rStar', () => {
  it('allows A5 only at the root and A4 only after A3', () => {
    expect(allowedActions({ parentId: null, action: null })).toEqual(['A1', 'A2', 'A3', 'A5']);
    expect(allowedActions({ parentId: 0, action: 'A3' })).toEqual(['A2', 'A3', 'A4']);
    expect(allowedActions({ parentId: 0, action: 'A4' })).toEqual(['A2', 'A3']);
    expect(allowedActions({ parentId: 0, action: 'A1' })).toEqual(['A1', 'A2']);
    expect(allowedActions({ parentId: 0, action: 'A5' })).toEqual(['A1', 'A2', 'A3']);
  });

  it('UCT: an unvisited child first, else Q/N + c·sqrt(ln N_parent / N)', () => {
    expect(uct({ q: 0, n: 0 }, { n: 4 }, 2)).toBe(Infinity);
    expect(uct({ q: 1.5, n: 2 }, { n: 4 }, 2)).toBeCloseTo(0.75 + 2 * Math.sqrt(Math.log(4) / 2), 12);
  });

  it('a rollout expands the leaf with every allowed action, simulates to a terminal node and adds its reward along the path', async () => {
    const { policy, calls } = scripted();
    const tree = await rstarSearch(policy, memoryStore().store, { rollouts: 1, seed: 3 });
    // The root's four actions: A1, A2 (two completions), A3, A5: five children.
    expect(calls.slice(0, 4).map((c) => c.action)).toEqual(['A1', 'A2', 'A3', 'A5']);
    expect(tree.children(tree.root)).toHaveLength(5);
    // Every node on the rollout's path got the terminal node's reward once.
    const walked = tree.all().filter((n) => n.n > 0);
    const end = walked.find((n) => n.terminal)!;
    expect(end).toBeDefined();
    for (const n of walked) expect(n).toMatchObject({ n: 1, q: end.confidence, explored: true });
    expect(tree.root.n).toBe(1);
    // Every expanded node was expanded once, with exactly its allowed actions.
    for (const n of tree.all().filter((x) => x.expanded)) {
      expect(new Set(tree.children(n).map((c) => c.action))).toEqual(new Set(allowedActions(n)));
    }
  });

  it('sums rewards over rollouts, visits every root child before UCT, and stops at maxDepth', async () => {
    const { policy } = scripted();
    const tree = await rstarSearch(policy, memoryStore().store, { rollouts: 16, seed: 5, maxDepth: 5 });
    expect(tree.root.n).toBe(16);
    const terminalsOnPaths = tree.root.q;
    expect(terminalsOnPaths).toBeGreaterThan(0);
    // The root's Q is the sum of its children's (every rollout passes one child).
    const kids = tree.children(tree.root);
    expect(kids.reduce((s, c) => s + c.q, 0)).toBeCloseTo(tree.root.q, 12);
    expect(kids.reduce((s, c) => s + c.n, 0)).toBe(16);
    expect(kids.every((c) => c.explored)).toBe(true);
    for (const n of tree.all()) {
      expect(n.depth).toBeLessThanOrEqual(5);
      if (n.depth === 5) expect(n.terminal).toBe(true);
      if (n.terminal) expect(tree.children(n)).toHaveLength(0);
    }
  });

  it('a search killed mid-rollout resumes from its store and ends with the same tree', async () => {
    const whole = memoryStore();
    const reference = await rstarSearch(scripted().policy, whole.store, { rollouts: 8, seed: 9 });
    const crashing = memoryStore({ killAtStep: 5 });
    await expect(rstarSearch(scripted().policy, crashing.store, { rollouts: 8, seed: 9 })).rejects.toThrow(
      'worker killed',
    );
    const again = scripted();
    const resumed = await rstarSearch(again.policy, crashing.store, { rollouts: 8, seed: 9 });
    // Nothing of the four saved rollouts is generated again: the root is not re-expanded.
    expect(again.calls.filter((c) => c.depth === 0)).toEqual([]);
    expect(resumed.all()).toEqual(reference.all());
  });

  it('keeps the candidates the discriminator agrees with, and picks the best of them by reward × confidence', async () => {
    const { policy } = scripted();
    const tree = await rstarSearch(policy, memoryStore().store, { rollouts: 16, seed: 5 });
    const cuts: number[] = [];
    // The discriminator completes every cut trajectory to "42".
    const { candidates, pick } = await mutualConsistency(
      tree,
      async (prefix) => {
        cuts.push(prefix.length);
        return '42';
      },
      { seed: 2 },
    );
    expect(candidates.length).toBe(tree.terminals().filter((n) => n.answer !== null).length);
    for (const c of candidates) {
      expect(c.consistent).toBe(c.node.answer === '42');
      // Cut at 20–50 % of the trajectory: a step given and one left to complete when it has two;
      // a one-step trajectory is solved again from the question alone.
      if (c.path.length > 1) {
        expect(c.cut).toBeGreaterThanOrEqual(1);
        expect(c.cut).toBeLessThanOrEqual(Math.min(c.path.length - 1, Math.ceil(c.path.length * 0.5)));
      } else expect(c.cut).toBe(0);
      expect(c.score).toBeCloseTo((c.node.n > 0 ? c.node.q / c.node.n : 0) * c.node.confidence, 12);
    }
    const best = Math.max(...candidates.filter((c) => c.consistent).map((c) => c.score));
    expect(pick?.node.answer).toBe('42');
    expect(pick?.score).toBe(best);
    // A discriminator that never agrees leaves no pick.
    const none = await mutualConsistency(tree, async () => 'something else', { seed: 2 });
    expect(none.pick).toBeNull();
  });

  it('builds a tree from saved nodes with their parent links', () => {
    const t = new RStarTree([
      {
        id: 1,
        parentId: 0,
        depth: 1,
        action: 'A2',
        text: 't',
        answer: '1',
        confidence: 1,
        terminal: true,
        q: 1,
        n: 1,
        expanded: false,
        explored: true,
      },
      {
        id: 0,
        parentId: null,
        depth: 0,
        action: null,
        text: '',
        answer: null,
        confidence: 0,
        terminal: false,
        q: 1,
        n: 1,
        expanded: true,
        explored: true,
      },
    ]);
    expect(t.root.id).toBe(0);
    expect(t.path(t.children(t.root)[0]!).map((n) => n.id)).toEqual([1]);
  });
});
