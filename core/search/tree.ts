/**
 * What the tree searches (sra-mcts.ts, rstar.ts) share: a tree of nodes keyed by creation order,
 * the nodes a step (a round, a rollout) made or changed, and the store the tree is kept in between
 * steps — so a search resumed after a crash continues after its last saved step.
 */

/** A node's key (its creation order; 0 is the root) and its parent's. */
export interface SearchNode {
  id: number;
  parentId: number | null;
  depth: number;
}

/** Where a search keeps its tree between steps (a table, in a stage). */
export interface SearchTreeStore<N extends SearchNode> {
  /** The tree and the number of the last finished step, or null when the search has not started. */
  load(): Promise<{ nodes: N[]; step: number } | null>;
  /** Upserts the nodes new or changed in `step`, and records the step as finished. */
  save(nodes: readonly N[], step: number): Promise<void>;
}

/** A tree in memory, and which nodes the current step changed. */
export class SearchTree<N extends SearchNode> {
  private readonly nodes: N[];
  private readonly kids = new Map<number, N[]>();
  private dirty = new Set<N>();

  constructor(nodes: readonly N[]) {
    this.nodes = [...nodes].sort((a, b) => a.id - b.id).map((n) => ({ ...n }));
    for (const n of this.nodes) if (n.parentId !== null) this.link(n.parentId, n);
  }

  get root(): N {
    return this.nodes[0] as N;
  }

  get size(): number {
    return this.nodes.length;
  }

  all(): readonly N[] {
    return this.nodes;
  }

  children(node: N): readonly N[] {
    return this.kids.get(node.id) ?? [];
  }

  parent(node: N): N | null {
    return node.parentId === null ? null : (this.nodes[node.parentId] ?? null);
  }

  /** The nodes from the root's child down to `node`. */
  path(node: N): N[] {
    const out: N[] = [];
    for (let n: N | null = node; n && n.parentId !== null; n = this.parent(n)) out.unshift(n);
    return out;
  }

  /** Starts a step: what changes from here is what `changed` returns. */
  beginStep(): void {
    this.dirty = new Set();
  }

  /** Adds a node made with `id: this.size` under its parent. */
  protected insert(node: N): N {
    this.nodes.push(node);
    if (node.parentId !== null) this.link(node.parentId, node);
    this.dirty.add(node);
    return node;
  }

  touch(node: N): void {
    this.dirty.add(node);
  }

  /** Copies of the nodes the step made or changed, in creation order (what the store saves). */
  changed(): N[] {
    return [...this.dirty].sort((a, b) => a.id - b.id).map((n) => ({ ...n }));
  }

  private link(parentId: number, node: N): void {
    const siblings = this.kids.get(parentId);
    if (siblings) siblings.push(node);
    else this.kids.set(parentId, [node]);
  }
}
