/**
 * rStar's generator search and its mutual-consistency check (arXiv 2408.06195; REFERENCE §7), as
 * a pure engine over an injected policy (the model's calls) and store (the persisted tree):
 *
 * - actions: A1 one next step; A2 the remaining steps to a final answer; A3 the next
 *   sub-question and its answer; A4 that sub-question answered again (only after A3); A5 the
 *   question rephrased as its conditions (only at the root). A node at `maxDepth` is terminal.
 * - a rollout: from the root, an unexplored child at random (seeded) when a node has one, else
 *   the child of highest UCT = Q/N + c·sqrt(ln N_parent / N) (an unvisited one first); the leaf
 *   reached is expanded with every allowed action, then simulated — a random child at each level
 *   down to a terminal node — and the terminal node's reward (its answer's self-consistency: the
 *   share of sampled completions that agree) is added to Q and N along the whole path.
 * - no intermediate self-reward: only terminal nodes carry one.
 *
 * Then the discriminator: each candidate trajectory (a terminal node with an answer) is cut at a
 * random step between 20 % and 50 % of its length; a second model completes it from there, and
 * the candidate is kept when both reach the same answer. The pick is the consistent candidate with
 * the highest reward × terminal confidence.
 *
 * Durability as in sra-mcts.ts: the nodes a rollout made or changed are saved with its number
 * when it ends; a search resumed from the store continues at the next rollout, and a rollout cut
 * off by a crash runs again with the same seeded draws (its calls answered from the call log).
 */
import { mulberry32 } from '../evaluation/stats';
import { SearchTree, type SearchNode, type SearchTreeStore } from './tree';

export const RSTAR_ACTIONS = ['A1', 'A2', 'A3', 'A4', 'A5'] as const;
export type RStarAction = (typeof RSTAR_ACTIONS)[number];

export interface RStarOptions {
  /** Rollouts of the search. */
  rollouts: number;
  /** c of UCT. */
  explorationConstant: number;
  /** Depth from which a node is terminal. */
  maxDepth: number;
  /** Share of a candidate's steps the discriminator is given: drawn in [from, to]. */
  cutFrom: number;
  cutTo: number;
  seed: number;
}

export const RSTAR_DEFAULTS: RStarOptions = {
  rollouts: 16,
  explorationConstant: 2,
  maxDepth: 5,
  cutFrom: 0.2,
  cutTo: 0.5,
  seed: 1,
};

export interface RStarNode extends SearchNode {
  /** The action that made it (null: the root, the question itself). */
  action: RStarAction | null;
  /** What it adds to the trajectory (a step, a sub-question and its answer, a rephrasing...). */
  text: string;
  /** Its final answer, when it reaches one. */
  answer: string | null;
  /** Self-consistency of its answer (0..1); 0 without one. */
  confidence: number;
  terminal: boolean;
  /** Total reward and visits (UCT). */
  q: number;
  n: number;
  /** Its children were generated. */
  expanded: boolean;
  /** Reached by a rollout at least once (UCT applies among explored siblings only). */
  explored: boolean;
}

/** What one action generates: one child or more (A2 groups sampled completions by answer). */
export interface Generated {
  text: string;
  answer: string | null;
  confidence: number;
  /** Reached a final answer (A2 always; A1/A3 when their step concludes). */
  final: boolean;
  /**
   * The logged call that generated it, for audits; not kept in the tree (a resumed search does not
   * generate its saved nodes again: asking the policy again returns the logged call).
   */
  callId?: string;
}

export interface RStarPolicy {
  /** The children `action` makes after the trajectory `path` (root excluded). */
  generate(path: readonly RStarNode[], action: RStarAction): Promise<Generated[]>;
}

/** The second model: completes a trajectory cut after `prefix`; its final answer. */
export type Discriminator = (prefix: readonly RStarNode[]) => Promise<string | null>;

/** Where the tree is kept between rollouts; a step is a rollout. */
export type RStarStore = SearchTreeStore<RStarNode>;

/** The actions allowed after a node (rStar's rules: A4 only after A3, A5 only at the root). */
export function allowedActions(node: Pick<RStarNode, 'action' | 'parentId'>): RStarAction[] {
  if (node.parentId === null) return ['A1', 'A2', 'A3', 'A5'];
  switch (node.action) {
    case 'A5':
      return ['A1', 'A2', 'A3'];
    case 'A3':
      return ['A2', 'A3', 'A4'];
    case 'A4':
      return ['A2', 'A3'];
    default:
      return ['A1', 'A2'];
  }
}

export function uct(child: Pick<RStarNode, 'q' | 'n'>, parent: Pick<RStarNode, 'n'>, c: number): number {
  if (child.n === 0) return Infinity;
  return child.q / child.n + c * Math.sqrt(Math.log(parent.n) / child.n);
}

/** Runs the rollouts (resuming after the last saved one); returns the tree. */
export async function rstarSearch(
  policy: RStarPolicy,
  store: RStarStore,
  options: Partial<RStarOptions> = {},
): Promise<RStarTree> {
  const o = { ...RSTAR_DEFAULTS, ...options };
  const saved = await store.load();
  const tree = new RStarTree(saved?.nodes ?? [rootNode()]);
  for (let rollout = (saved?.step ?? 0) + 1; rollout <= o.rollouts; rollout++) {
    const rand = mulberry32((o.seed * 1_000_003 + rollout) >>> 0);
    tree.beginStep();
    const path = select(tree, o, rand);
    const leaf = path[path.length - 1] as RStarNode;
    await expand(tree, leaf, policy, o);
    const tail = await simulate(tree, leaf, policy, o, rand);
    const full = [...path, ...tail];
    const end = full[full.length - 1] as RStarNode;
    const reward = end.terminal ? end.confidence : 0;
    for (const node of full) {
      node.q += reward;
      node.n += 1;
      node.explored = true;
      tree.touch(node);
    }
    await store.save(tree.changed(), rollout);
  }
  return tree;
}

function rootNode(): RStarNode {
  return {
    id: 0,
    parentId: null,
    depth: 0,
    action: null,
    text: '',
    answer: null,
    confidence: 0,
    terminal: false,
    q: 0,
    n: 0,
    expanded: false,
    explored: false,
  };
}

function select(tree: RStarTree, o: RStarOptions, rand: () => number): RStarNode[] {
  const path: RStarNode[] = [];
  let node = tree.root;
  for (;;) {
    path.push(node);
    const children = tree.children(node);
    if (!node.expanded || children.length === 0) return path;
    const unexplored = children.filter((c) => !c.explored);
    if (unexplored.length > 0) {
      path.push(unexplored[Math.floor(rand() * unexplored.length)] as RStarNode);
      return path;
    }
    node = children.reduce((best, c) =>
      uct(c, node, o.explorationConstant) > uct(best, node, o.explorationConstant) ? c : best,
    );
  }
}

async function expand(tree: RStarTree, node: RStarNode, policy: RStarPolicy, o: RStarOptions): Promise<void> {
  if (node.expanded || node.terminal) return;
  const path = tree.path(node);
  for (const action of allowedActions(node)) {
    for (const g of await policy.generate(path, action)) {
      tree.add(node, action, g, o.maxDepth);
    }
  }
  node.expanded = true;
  tree.touch(node);
}

/** A random child at each level down to a terminal node; the nodes walked (after `from`). */
async function simulate(
  tree: RStarTree,
  from: RStarNode,
  policy: RStarPolicy,
  o: RStarOptions,
  rand: () => number,
): Promise<RStarNode[]> {
  const walked: RStarNode[] = [];
  let node = from;
  while (!node.terminal) {
    await expand(tree, node, policy, o);
    const children = tree.children(node);
    if (children.length === 0) break;
    node = children[Math.floor(rand() * children.length)] as RStarNode;
    walked.push(node);
  }
  return walked;
}

export interface Candidate {
  node: RStarNode;
  /** The trajectory, root excluded. */
  path: RStarNode[];
  /** Mean reward of the terminal node (Q/N) × its confidence. */
  score: number;
  /** How many steps the discriminator was given, and what it answered. */
  cut: number;
  discriminatorAnswer: string | null;
  consistent: boolean;
}

/**
 * The mutual-consistency check over every terminal trajectory with an answer; the pick is the
 * consistent candidate of highest score (null when none is consistent). Answers compare after
 * `normalize` (trimmed and lower-cased by default).
 */
export async function mutualConsistency(
  tree: RStarTree,
  discriminate: Discriminator,
  options: Partial<Pick<RStarOptions, 'cutFrom' | 'cutTo' | 'seed'>> & {
    normalize?: (answer: string) => string;
  } = {},
): Promise<{ candidates: Candidate[]; pick: Candidate | null }> {
  const o = { ...RSTAR_DEFAULTS, ...options };
  const norm = options.normalize ?? ((a: string) => a.trim().toLowerCase());
  const rand = mulberry32(o.seed >>> 0);
  const candidates: Candidate[] = [];
  for (const node of tree.terminals()) {
    if (node.answer === null) continue;
    const path = tree.path(node);
    const share = o.cutFrom + (o.cutTo - o.cutFrom) * rand();
    // At least one step given and one left to complete; a one-step trajectory is solved again
    // from the question alone.
    const cut = Math.min(Math.max(1, Math.round(path.length * share)), Math.max(path.length - 1, 0));
    const answer = await discriminate(path.slice(0, cut));
    candidates.push({
      node,
      path,
      score: (node.n > 0 ? node.q / node.n : 0) * node.confidence,
      cut,
      discriminatorAnswer: answer,
      consistent: answer !== null && norm(answer) === norm(node.answer),
    });
  }
  const consistent = candidates.filter((c) => c.consistent);
  const pick = consistent.reduce<Candidate | null>(
    (best, c) => (best === null || c.score > best.score ? c : best),
    null,
  );
  return { candidates, pick };
}

/** The tree in memory. */
export class RStarTree extends SearchTree<RStarNode> {
  terminals(): RStarNode[] {
    return this.all().filter((n) => n.terminal);
  }

  add(parent: RStarNode, action: RStarAction, g: Generated, maxDepth: number): RStarNode {
    const depth = parent.depth + 1;
    return this.insert({
      id: this.size,
      parentId: parent.id,
      depth,
      action,
      text: g.text,
      answer: g.answer,
      confidence: g.answer === null ? 0 : g.confidence,
      terminal: g.final || depth >= maxDepth,
      q: 0,
      n: 0,
      expanded: false,
      explored: false,
    });
  }
}
