/**
 * The SRA-MCTS engine's mechanics (core/search/sra-mcts.ts) on a scripted policy: what it asks,
 * which node UCB picks, the values back-propagation leaves, the value gate, and a search resumed
 * from its store after a crash. The policy here is a script of the model's answers, so every
 * count and value below is worked out by hand.
 */
import { describe, expect, it } from 'vitest';
import { sraMcts, ucb, type Reflection, type SraMctsPolicy, type TreeNode } from '../../core/search/sra-mcts';
import { memoryTreeStore } from '../support/memory-tree-store';

/** Proposals are named by path: the k-th proposal after steps a/b is "a/b>k". */
function scripted(
  scores: Record<string, number>,
  opts: { endAt?: (steps: readonly string[]) => boolean } = {},
) {
  const calls: Array<{ kind: 'reflect' | 'propose' | 'score'; path: string }> = [];
  const path = (steps: readonly string[]) => steps.join('/');
  const policy: SraMctsPolicy = {
    async reflect(steps): Promise<Reflection> {
      calls.push({ kind: 'reflect', path: path(steps) });
      return opts.endAt?.(steps) ? { end: true } : { end: false, text: `next after ${path(steps)}` };
    },
    async propose(steps, _reflection, earlier) {
      calls.push({ kind: 'propose', path: path(steps) });
      return `${steps.at(-1) ?? 'root'}>${earlier.length}`;
    },
    async score(steps) {
      calls.push({ kind: 'score', path: path(steps) });
      return scores[steps.at(-1) ?? ''] ?? 1;
    },
  };
  return { policy, calls };
}

const memoryStore = (o?: Parameters<typeof memoryTreeStore>[0]) => memoryTreeStore<TreeNode>(o);

describe('SRA-MCTS', () => {
  it('UCB: an unvisited child gets the inf bonus; a visited one c·sqrt(2 ln N / n)', () => {
    const o = { explorationConstant: 0.5, inf: 8 };
    expect(ucb({ value: 3, visits: 0 }, { visits: 5 }, o)).toBe(11);
    expect(ucb({ value: 3, visits: 2 }, { visits: 5 }, o)).toBeCloseTo(
      3 + 0.5 * Math.sqrt((2 * Math.log(5)) / 2),
      12,
    );
  });

  it('expands branch children, rolls out the best, back-propagates, and picks the unvisited sibling next', async () => {
    // Root's children score 6, 5, 4; roll-out candidates after "root>0" score 8 and 2.
    const { policy, calls } = scripted({
      'root>0': 6,
      'root>1': 5,
      'root>2': 4,
      'root>0>0': 8,
      'root>0>1': 2,
    });
    const { store, nodes } = memoryStore();
    const r = await sraMcts(policy, store, { iterationLimit: 1 });
    // Round 1: reflect on the root, 3 proposals, 3 scores; roll-out from root>0: reflect, 2
    // proposals, 2 scores (no reflection after the last roll-out step).
    expect(calls.map((c) => c.kind)).toEqual([
      'reflect',
      ...Array(3).fill('propose'),
      ...Array(3).fill('score'),
      'reflect',
      ...Array(2).fill('propose'),
      ...Array(2).fill('score'),
    ]);
    expect(r.nodes).toBe(4);
    // The rolled child: (1 − α)·6 + α·8 = 7, one visit; the root: the visit-weighted mean, 7.
    const byStep = new Map([...nodes.values()].map((n) => [n.step, n]));
    expect(byStep.get('root>0')).toMatchObject({ value: 7, visits: 1 });
    expect(byStep.get('root>1')).toMatchObject({ value: 5, visits: 0 });
    expect(byStep.get('')).toMatchObject({ value: 7, visits: 1, fullyExpanded: true });
    // No gate reached: the best node by value, root>0 (7).
    expect(r).toMatchObject({ steps: ['root>0'], value: 7, reachedGate: false, rounds: 1 });

    // Round 2 (resumed from the store): root>0 has UCB 7 + 0.5·sqrt(2 ln 1 / 1) = 7; root>1 has
    // 5 + 8 = 13, so the search expands root>1, not the better-valued node.
    calls.length = 0;
    const r2 = await sraMcts(policy, store, { iterationLimit: 2 });
    expect(calls[0]).toEqual({ kind: 'reflect', path: 'root>1' });
    expect(calls.filter((c) => c.path === '')).toEqual([]);
    expect(r2.nodes).toBe(7);
    expect(r2.rounds).toBe(2);
  });

  it('stops at a selected node whose value reaches the gate', async () => {
    // root>0 scores 9.5 and its roll-out 9: (9.5 + 9) / 2 = 9.25 ≥ 8.8, and its UCB (9.25) beats
    // the others' 0 + 8 and 0.5 + 8.
    const { policy } = scripted({ 'root>0': 9.5, 'root>1': 0, 'root>2': 0.5, 'root>0>0': 9, 'root>0>1': 3 });
    const r = await sraMcts(policy, memoryStore().store, { iterationLimit: 5 });
    expect(r).toMatchObject({ steps: ['root>0'], value: 9.25, reachedGate: true, rounds: 1 });
  });

  it('marks a solved node as ended: no expansion, nothing to roll out', async () => {
    const { policy, calls } = scripted({}, { endAt: () => true });
    const r = await sraMcts(policy, memoryStore().store, { iterationLimit: 3 });
    expect(calls.map((c) => c.kind)).toEqual(['reflect']);
    expect(r).toMatchObject({ steps: [], nodes: 1, reachedGate: false, rounds: 3 });
  });

  it('a search killed mid-round resumes from its store: rounds saved are not asked again, the tree is the same', async () => {
    const scores = { 'root>0': 6, 'root>1': 5, 'root>2': 4, 'root>1>0': 7, 'root>1>1': 3, 'root>1>2': 2 };
    const ref = scripted(scores);
    const callsBefore = new Map<number, number>();
    const whole = memoryStore({ onSave: (r) => callsBefore.set(r + 1, ref.calls.length) });
    const reference = await sraMcts(ref.policy, whole.store, { iterationLimit: 4 });

    const crashing = memoryStore({ killAtStep: 3 });
    const first = scripted(scores);
    await expect(sraMcts(first.policy, crashing.store, { iterationLimit: 4 })).rejects.toThrow(
      'worker killed',
    );
    const again = scripted(scores);
    const resumed = await sraMcts(again.policy, crashing.store, { iterationLimit: 4 });
    // The killed run made rounds 1–3; the resumed one starts at round 3 again (its calls are the
    // same requests, which the gateway answers from its log) and asks nothing of rounds 1 and 2.
    const round3 = callsBefore.get(3)!;
    expect(first.calls).toEqual(ref.calls.slice(0, callsBefore.get(4)));
    expect(again.calls).toEqual(ref.calls.slice(round3));
    expect(resumed).toEqual(reference);
    const sorted = (m: Map<number, TreeNode>) => [...m.values()].sort((a, b) => a.id - b.id);
    expect(sorted(crashing.nodes)).toEqual(sorted(whole.nodes));
  });
});
