/**
 * SRA-MCTS (arXiv 2411.11053; REFERENCE §7): Monte Carlo tree search over natural-language
 * reasoning steps, one model as policy and value. The mechanics of the paper's code, as a pure
 * engine over an injected policy (the model's calls) and an injected store (the persisted tree):
 *
 * - selection: from the root, while a node is fully expanded, its child of highest UCB,
 *   V + c·sqrt(2 ln N_parent / n) (an unvisited child: V + inf); ties drawn by a seeded PRNG;
 *   a selected node whose value reaches the value gate (`endGate`) ends the search;
 * - expansion: a reflection on the node's steps (or `end` when they already solve the problem),
 *   then `branch` proposals of a next step, each told the proposals before it; each new child is
 *   scored by the model's self-evaluation (0–10);
 * - roll-out (greedy): from the best child, `rollForwardSteps` times `rollBranch` proposals, the
 *   best-scored kept; the child's value becomes (1 − α)·V + α·(best value seen);
 * - back-propagation: up from the expanded node, each visit counted and each expanded node's value
 *   the visit-weighted mean of its children's.
 *
 * After `iterationLimit` rounds without reaching the gate, the answer is the highest-valued node
 * (an unexpanded node's own value, an expanded one's best descendant's).
 *
 * Durability: the store gets every node new or changed in a round, with the round's number, when
 * the round ends; a search resumed from the store continues at the next round. A round cut off by
 * a crash runs again — its model calls are the same requests (same path, same history, same
 * seeded draws), so the gateway's call log answers them without paying twice.
 */
import { mulberry32 } from '../evaluation/stats';
import { SearchTree, type SearchNode, type SearchTreeStore } from './tree';

/** The search's settings; the defaults are the paper's code's (MCTS_Task). */
export interface SraMctsOptions {
  /** Proposals per expansion. */
  branch: number;
  /** Proposals per roll-out step. */
  rollBranch: number;
  /** Steps of a roll-out. */
  rollForwardSteps: number;
  /** Rounds (selection, expansion, roll-out, back-propagation) at most. */
  iterationLimit: number;
  /** A selected node valued at least this ends the search (the value gate). */
  endGate: number;
  /** c of UCB. */
  explorationConstant: number;
  /** Weight of the roll-out's best value in the rolled node's value. */
  alpha: number;
  /** UCB bonus of an unvisited child. */
  inf: number;
  /** The lowest score (and the start of a roll-out's best). */
  low: number;
  /** Seeds the tie-breaking draws (with the round), so a rerun draws the same. */
  seed: number;
}

export const SRA_MCTS_DEFAULTS: SraMctsOptions = {
  branch: 3,
  rollBranch: 2,
  rollForwardSteps: 1,
  iterationLimit: 2,
  endGate: 8.8,
  explorationConstant: 0.5,
  alpha: 0.5,
  inf: 8,
  low: 0,
  seed: 170,
};

/** A node of the tree: the step it adds to its parent's (the root adds none). */
export interface TreeNode extends SearchNode {
  /** The reasoning step this node adds ('' for the root). */
  step: string;
  value: number;
  visits: number;
  fullyExpanded: boolean;
  /** The reflection on this node's steps; null until asked. */
  reflection: Reflection | null;
  /** The round that created it (0: the root). */
  round: number;
}

export type Reflection = { end: true } | { end: false; text: string };

/** The model's side of the search; every call goes through the gateway (logged, reused). */
export interface SraMctsPolicy {
  /** Whether the steps so far solve the problem, and if not, what the next step should address. */
  reflect(steps: readonly string[]): Promise<Reflection>;
  /** One next step after `steps`, unlike the `earlier` proposals; null when none came. */
  propose(
    steps: readonly string[],
    reflection: string | null,
    earlier: readonly string[],
  ): Promise<string | null>;
  /** The model's self-evaluation of the steps so far, 0–10. */
  score(steps: readonly string[]): Promise<number>;
}

/** Where the tree is kept between rounds (a table, in the stage); a step is a round. */
export type SraMctsStore = SearchTreeStore<TreeNode>;

export interface SraMctsResult {
  /** The chosen path's steps, root excluded, in order. */
  steps: string[];
  /** The chosen node's value. */
  value: number;
  /** True when a node reached the value gate; false when the best node after the rounds. */
  reachedGate: boolean;
  rounds: number;
  nodes: number;
}

export async function sraMcts(
  policy: SraMctsPolicy,
  store: SraMctsStore,
  options: Partial<SraMctsOptions> = {},
): Promise<SraMctsResult> {
  const o = { ...SRA_MCTS_DEFAULTS, ...options };
  const saved = await store.load();
  const tree = new Tree(
    saved?.nodes ?? [
      {
        id: 0,
        parentId: null,
        depth: 0,
        step: '',
        value: 0,
        visits: 0,
        fullyExpanded: false,
        reflection: null,
        round: 0,
      },
    ],
  );
  let round = saved?.step ?? 0;
  while (round < o.iterationLimit) {
    // Seeded by the round: a round run again after a crash draws what it drew the first time.
    const rand = mulberry32((o.seed * 1_000_003 + round + 1) >>> 0);
    const selected = select(tree, o, rand);
    if (selected.value >= o.endGate) return result(tree, selected, true, round);
    round++;
    tree.beginRound(round);
    const expanded = await expand(tree, selected, policy, o);
    if (expanded.reflection?.end !== true && expanded.fullyExpanded) {
      const rolled = bestChild(tree, expanded, o, rand);
      if (rolled) {
        const best = await rollOut(tree, rolled, policy, o);
        rolled.value = rolled.value * (1 - o.alpha) + best * o.alpha;
        rolled.visits++;
        tree.touch(rolled);
      }
    }
    backPropagate(tree, expanded);
    await store.save(tree.changed(), round);
  }
  return result(tree, tree.bestByValue(tree.root), false, round);
}

function result(tree: Tree, node: TreeNode, reachedGate: boolean, rounds: number): SraMctsResult {
  return { steps: tree.steps(node), value: node.value, reachedGate, rounds, nodes: tree.size };
}

/** Down the fully expanded nodes by UCB. */
function select(tree: Tree, o: SraMctsOptions, rand: () => number): TreeNode {
  let node = tree.root;
  while (node.fullyExpanded) {
    const next = bestChild(tree, node, o, rand);
    if (!next) break;
    node = next;
  }
  return node;
}

/** The child of highest UCB; ties drawn at random (seeded). */
export function bestChild(
  tree: Pick<Tree, 'children'>,
  node: TreeNode,
  o: Pick<SraMctsOptions, 'explorationConstant' | 'inf' | 'low'>,
  rand: () => number,
): TreeNode | null {
  let best = o.low;
  let bests: TreeNode[] = [];
  for (const child of tree.children(node)) {
    const u = ucb(child, node, o);
    if (u > best) {
      best = u;
      bests = [child];
    } else if (u === best) bests.push(child);
  }
  if (bests.length === 0) return null;
  return bests[Math.floor(rand() * bests.length)] ?? null;
}

export function ucb(
  child: Pick<TreeNode, 'value' | 'visits'>,
  parent: Pick<TreeNode, 'visits'>,
  o: Pick<SraMctsOptions, 'explorationConstant' | 'inf'>,
): number {
  if (child.visits === 0) return child.value + o.inf;
  return child.value + o.explorationConstant * Math.sqrt((2 * Math.log(parent.visits)) / child.visits);
}

async function expand(
  tree: Tree,
  node: TreeNode,
  policy: SraMctsPolicy,
  o: SraMctsOptions,
): Promise<TreeNode> {
  const steps = tree.steps(node);
  if (node.reflection === null) {
    node.reflection = await policy.reflect(steps);
    tree.touch(node);
  }
  if (node.reflection.end) return node;
  const reflection = node.reflection.text;
  const proposals: string[] = [];
  const earlier: string[] = [];
  for (let i = 0; i < o.branch; i++) {
    const p = await policy.propose(steps, reflection, earlier);
    if (p === null) continue;
    earlier.push(p);
    if (!proposals.includes(p)) proposals.push(p);
  }
  if (proposals.length === 0) {
    node.reflection = { end: true };
    tree.touch(node);
    return node;
  }
  for (const step of proposals) {
    const child = tree.add(node, step);
    child.value = await policy.score([...steps, step]);
  }
  node.fullyExpanded = true;
  tree.touch(node);
  return node;
}

/** Greedy roll-out from `node`: the best value seen (the node's own when it is already solved). */
async function rollOut(
  tree: Tree,
  node: TreeNode,
  policy: SraMctsPolicy,
  o: SraMctsOptions,
): Promise<number> {
  let steps = tree.steps(node);
  if (node.reflection === null) {
    node.reflection = await policy.reflect(steps);
    tree.touch(node);
  }
  if (node.reflection.end) return node.value;
  let best = o.low;
  let reflection: string | null = node.reflection.text;
  for (let i = 0; i < o.rollForwardSteps; i++) {
    const candidates: string[] = [];
    for (let j = 0; j < o.rollBranch; j++) {
      const p = await policy.propose(steps, reflection, candidates);
      if (p !== null) candidates.push(p);
    }
    if (candidates.length === 0) break;
    const scored = await Promise.all(
      candidates.map(async (c) => ({ c, v: await policy.score([...steps, c]) })),
    );
    const top = scored.reduce((a, b) => (b.v > a.v ? b : a));
    steps = [...steps, top.c];
    best = Math.max(best, top.v);
    // Whether to go on; after the last step nothing would read it.
    if (i === o.rollForwardSteps - 1) break;
    const r = await policy.reflect(steps);
    if (r.end) break;
    reflection = r.text;
  }
  return best;
}

function backPropagate(tree: Tree, from: TreeNode): void {
  for (let node: TreeNode | null = from; node; node = tree.parent(node)) {
    node.visits++;
    if (node.fullyExpanded) {
      let weighted = 0;
      let visits = 0;
      for (const c of tree.children(node)) {
        weighted += c.value * c.visits;
        visits += c.visits;
      }
      if (visits > 0) node.value = weighted / visits;
    }
    tree.touch(node);
  }
}

/** The tree in memory, with the round that creates nodes. */
export class Tree extends SearchTree<TreeNode> {
  private round = 0;

  /** The steps from the root to `node`. */
  steps(node: TreeNode): string[] {
    return this.path(node).map((n) => n.step);
  }

  beginRound(round: number): void {
    this.round = round;
    this.beginStep();
  }

  add(parent: TreeNode, step: string): TreeNode {
    return this.insert({
      id: this.size,
      parentId: parent.id,
      depth: parent.depth + 1,
      step,
      value: 0,
      visits: 0,
      fullyExpanded: false,
      reflection: null,
      round: this.round,
    });
  }

  /** The highest-valued node under `node`: itself when unexpanded, else its best descendant (ties: the later). */
  bestByValue(node: TreeNode): TreeNode {
    if (!node.fullyExpanded) return node;
    let best = node;
    for (const c of this.children(node)) {
      const sub = this.bestByValue(c);
      if (sub.value >= best.value) best = sub;
    }
    return best;
  }
}
