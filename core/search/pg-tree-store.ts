/**
 * Search trees in PostgreSQL (migration 012): the store a search keeps its tree in between steps
 * (core/search/tree.ts), one per campaign, stage, iteration and question; and the readers the
 * audit shows a question's trees with.
 */
import { sql } from 'kysely';
import { retryOnConnectionLoss, type Db } from '../db/connection';
import type { SearchNode, SearchTreeStore } from './tree';

/** Whose tree: one question's search in one stage iteration. */
export interface SearchTreeKey {
  campaignId: string;
  stage: string;
  iteration: number;
  questionId: string;
}

export interface PgTreeStoreOptions {
  /** How long a load or save is tried again while the database is away (default 60 s). */
  reconnectWithinMs?: number;
}

/** How long a tree's statements are tried again while the database is away, by default. */
const RECONNECT_RETRY_MS = 60_000;
/** Nodes per insert: 8 parameters a row, well under PostgreSQL's 65,535 per statement. */
const NODES_PER_INSERT = 1_000;

/** The tree of `key`, kept in `search_trees` (its last saved step) and `search_nodes`. */
export function pgTreeStore<N extends SearchNode>(
  db: Db,
  key: SearchTreeKey,
  opts: PgTreeStoreOptions = {},
): SearchTreeStore<N> {
  const withinMs = opts.reconnectWithinMs ?? RECONNECT_RETRY_MS;
  const cols = {
    campaign_id: key.campaignId,
    stage: key.stage,
    iteration: key.iteration,
    question_id: key.questionId,
  };
  return {
    // Read-only, so always safe to run again. Repeatable read: the step and the nodes are of one
    // moment, not a step from before a concurrent save and nodes from after it.
    load: () =>
      retryOnConnectionLoss(
        () =>
          db
            .transaction()
            .setIsolationLevel('repeatable read')
            .execute(async (trx) => {
              const tree = await trx
                .selectFrom('search_trees')
                .select('step')
                .where('campaign_id', '=', cols.campaign_id)
                .where('stage', '=', cols.stage)
                .where('iteration', '=', cols.iteration)
                .where('question_id', '=', cols.question_id)
                .executeTakeFirst();
              if (!tree) return null;
              const rows = await trx
                .selectFrom('search_nodes')
                .select(['node_id', 'parent_id', 'depth', 'data'])
                .where('campaign_id', '=', cols.campaign_id)
                .where('stage', '=', cols.stage)
                .where('iteration', '=', cols.iteration)
                .where('question_id', '=', cols.question_id)
                .orderBy('node_id')
                .execute();
              return { step: tree.step, nodes: rows.map((r) => toNode<N>(r)) };
            }),
        withinMs,
      ),

    // The step's nodes and its step row commit together: a crash leaves either all of the step or
    // none of it, never nodes the step row does not cover. Had part of a step's nodes been left
    // behind, a resumed search would still be right — it reruns the step, whose calls the call
    // log answers with the same replies, so it makes the same nodes and upserts them by key — but
    // the audit would show a step that never finished.
    //
    // The step row only moves forward: a save of a step already recorded (this transaction run
    // again after its commit's reply was lost) or of an earlier one (a stale attempt still
    // running beside its retry) changes nothing, so it cannot roll nodes back to an older step.
    // That also makes the transaction safe to run again after a connection loss.
    save: (nodes, step) =>
      retryOnConnectionLoss(
        () =>
          db.transaction().execute(async (trx) => {
            // First, so that it takes the tree's row lock: saves of one tree run one at a time.
            const advanced = await trx
              .insertInto('search_trees')
              .values({ ...cols, step })
              .onConflict((oc) =>
                oc
                  .columns(['campaign_id', 'stage', 'iteration', 'question_id'])
                  .doUpdateSet({ step, updated_at: sql<Date>`now()` })
                  .where('search_trees.step', '<', step),
              )
              .returning('step')
              .executeTakeFirst();
            if (!advanced) return;
            for (let i = 0; i < nodes.length; i += NODES_PER_INSERT) {
              await trx
                .insertInto('search_nodes')
                .values(nodes.slice(i, i + NODES_PER_INSERT).map((n) => ({ ...cols, ...toRow(n) })))
                .onConflict((oc) =>
                  oc
                    .columns(['campaign_id', 'stage', 'iteration', 'question_id', 'node_id'])
                    .doUpdateSet((eb) => ({
                      parent_id: eb.ref('excluded.parent_id'),
                      depth: eb.ref('excluded.depth'),
                      data: eb.ref('excluded.data'),
                      updated_at: sql<Date>`now()`,
                    })),
                )
                .execute();
            }
          }),
        withinMs,
      ),
  };
}

function toRow(node: SearchNode): { node_id: number; parent_id: number | null; depth: number; data: string } {
  const { id, parentId, depth, ...data } = node;
  return { node_id: id, parent_id: parentId, depth, data: JSON.stringify(data) };
}

/** A node as its search made it: `data` is what `toRow` saved of an N, so it is trusted as one. */
function toNode<N extends SearchNode>(row: {
  node_id: number;
  parent_id: number | null;
  depth: number;
  data: Record<string, unknown>;
}): N {
  return { ...row.data, id: row.node_id, parentId: row.parent_id, depth: row.depth } as N;
}

/** One saved node, with whose tree it is in. */
export interface SearchNodeRow {
  iteration: number;
  questionId: string;
  id: number;
  parentId: number | null;
  depth: number;
  /** The node's own fields (those of its search's node type), less id, parentId and depth. */
  data: Record<string, unknown>;
  updatedAt: Date;
}

/** The saved nodes of a stage's trees, by iteration, question and node id; optionally of one. */
export async function searchTreeRows(
  db: Db,
  campaignId: string,
  stage: string,
  filter: { iteration?: number; questionId?: string } = {},
): Promise<SearchNodeRow[]> {
  let q = db
    .selectFrom('search_nodes')
    .select(['iteration', 'question_id', 'node_id', 'parent_id', 'depth', 'data', 'updated_at'])
    .where('campaign_id', '=', campaignId)
    .where('stage', '=', stage);
  if (filter.iteration !== undefined) q = q.where('iteration', '=', filter.iteration);
  if (filter.questionId !== undefined) q = q.where('question_id', '=', filter.questionId);
  const rows = await q.orderBy('iteration').orderBy('question_id').orderBy('node_id').execute();
  return rows.map((r) => ({
    iteration: r.iteration,
    questionId: r.question_id,
    id: r.node_id,
    parentId: r.parent_id,
    depth: r.depth,
    data: r.data,
    updatedAt: r.updated_at,
  }));
}

/** A node of the audit's tree: its own fields, and its children in creation order. */
export interface AuditNode {
  id: number;
  depth: number;
  children: AuditNode[];
  [field: string]: unknown;
}

/** One iteration's tree of a question, as `meteorctl audit` shows it. */
export interface AuditTree {
  iteration: number;
  /** The last finished step (round, rollout). */
  step: number;
  /** Nodes in the tree. */
  size: number;
  /** Null only for a tree saved without nodes. */
  root: AuditNode | null;
  updatedAt: Date;
}

/** A question's search trees in a stage, one per iteration, nested from the root. */
export async function searchTreeAudit(
  db: Db,
  campaignId: string,
  stage: string,
  questionId: string,
): Promise<AuditTree[]> {
  const [trees, rows] = await Promise.all([
    db
      .selectFrom('search_trees')
      .select(['iteration', 'step', 'updated_at'])
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', stage)
      .where('question_id', '=', questionId)
      .orderBy('iteration')
      .execute(),
    searchTreeRows(db, campaignId, stage, { questionId }),
  ]);
  return trees.map((t) => {
    const own = rows.filter((r) => r.iteration === t.iteration);
    return {
      iteration: t.iteration,
      step: t.step,
      size: own.length,
      root: nest(own),
      updatedAt: t.updated_at,
    };
  });
}

/** Links one tree's rows (in node id order, so each node's children come in creation order). */
function nest(rows: readonly SearchNodeRow[]): AuditNode | null {
  const byId = new Map<number, AuditNode>();
  // The structural fields last: a search's own field of the same name cannot hide them.
  for (const r of rows) byId.set(r.id, { ...r.data, id: r.id, depth: r.depth, children: [] });
  let root: AuditNode | null = null;
  for (const r of rows) {
    const node = byId.get(r.id) as AuditNode;
    if (r.parentId === null) root = node;
    // The parent is there: search_nodes_parent (migration 012) lets no node in without it.
    else byId.get(r.parentId)?.children.push(node);
  }
  return root;
}
