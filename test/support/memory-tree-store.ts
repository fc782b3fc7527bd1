/**
 * A search tree's store in memory (core/search/tree.ts), for tests of the searches: `killAtStep`
 * makes that step's save fail once, as a worker killed before it saved would.
 */
import type { SearchNode, SearchTreeStore } from '../../core/search/tree';

export function memoryTreeStore<N extends SearchNode>(
  opts: { killAtStep?: number; onSave?: (step: number) => void } = {},
): { store: SearchTreeStore<N>; nodes: Map<number, N> } {
  const nodes = new Map<number, N>();
  let last = 0;
  let kill = opts.killAtStep;
  const store: SearchTreeStore<N> = {
    async load() {
      return nodes.size === 0 ? null : { nodes: [...nodes.values()].map((n) => ({ ...n })), step: last };
    },
    async save(changed, step) {
      if (kill === step) {
        kill = undefined;
        throw new Error('worker killed');
      }
      for (const n of changed) nodes.set(n.id, { ...n });
      last = step;
      opts.onSave?.(step);
    },
  };
  return { store, nodes };
}
