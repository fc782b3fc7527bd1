/**
 * Search trees (core/search/tree.ts): the nodes of one question's tree in a stage iteration, and
 * the last step (round, rollout) whose nodes are all saved — so a search resumed after a crash
 * continues after it, and `meteorctl audit` can show the tree.
 */
import { sql, type Kysely } from 'kysely';

type AnyDb = Kysely<unknown>;

const TREE = ['campaign_id', 'stage', 'iteration', 'question_id'] as const;

export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createTable('search_trees')
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
    .addColumn('stage', 'text', (c) => c.notNull())
    .addColumn('iteration', 'integer', (c) => c.notNull())
    .addColumn('question_id', 'text', (c) => c.notNull())
    .addColumn('step', 'integer', (c) => c.notNull().check(sql`step >= 0`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('search_trees_pk', [...TREE])
    .addForeignKeyConstraint('search_trees_question', ['campaign_id', 'question_id'], 'questions', [
      'campaign_id',
      'id',
    ])
    .execute();

  await db.schema
    .createTable('search_nodes')
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
    .addColumn('stage', 'text', (c) => c.notNull())
    .addColumn('iteration', 'integer', (c) => c.notNull())
    .addColumn('question_id', 'text', (c) => c.notNull())
    .addColumn('node_id', 'integer', (c) => c.notNull())
    .addColumn('parent_id', 'integer')
    .addColumn('depth', 'integer', (c) => c.notNull())
    // The node's own fields (a search's node type), less id, parentId and depth.
    .addColumn('data', 'jsonb', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('search_nodes_pk', [...TREE, 'node_id'])
    .addForeignKeyConstraint('search_nodes_question', ['campaign_id', 'question_id'], 'questions', [
      'campaign_id',
      'id',
    ])
    // A parent is always saved by the time its child is (made in an earlier step, or earlier in
    // the same one), so every node reaches the root: the audit's tree loses none.
    .addForeignKeyConstraint(
      'search_nodes_parent',
      [...TREE, 'parent_id'],
      'search_nodes',
      [...TREE, 'node_id'],
      (fk) => fk.onDelete('cascade'),
    )
    .execute();
}

export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropTable('search_nodes').ifExists().execute();
  await db.schema.dropTable('search_trees').ifExists().execute();
}
