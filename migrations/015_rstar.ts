/**
 * rStar as stage 3's high-compute decode (`stages.contrast.method: rstar`): per question, every
 * candidate trajectory the discriminator checked (`rstar_candidates`, one row per terminal node of
 * the question's search tree in `search_nodes`, stage 'contrast'), and on the pair the chosen
 * trajectory's node path and the generator calls that made its steps — so the audit of a pair
 * leads to each call behind it and a test can recompute the pick from rows.
 */
import { sql, type Kysely } from 'kysely';

type AnyDb = Kysely<unknown>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createTable('rstar_candidates')
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
    .addColumn('iteration', 'integer', (c) => c.notNull())
    .addColumn('question_id', 'text', (c) => c.notNull())
    // The candidate's terminal node in the question's tree (search_nodes, stage 'contrast').
    .addColumn('node_id', 'integer', (c) => c.notNull())
    .addColumn('answer', 'text', (c) => c.notNull())
    // Mean reward of the terminal node (Q/N) × its confidence: what the pick ranks by.
    .addColumn('score', 'double precision', (c) => c.notNull())
    // Steps of the trajectory given to the discriminator, of `steps`.
    .addColumn('cut', 'integer', (c) => c.notNull().check(sql`cut >= 0`))
    .addColumn('steps', 'integer', (c) => c.notNull().check(sql`steps >= 1`))
    .addColumn('discriminator_answer', 'text')
    .addColumn('consistent', 'boolean', (c) => c.notNull())
    .addColumn('discriminator_call_id', 'bigint', (c) => c.notNull().references('llm_calls.id'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('rstar_candidates_pk', ['campaign_id', 'iteration', 'question_id', 'node_id'])
    .addForeignKeyConstraint('rstar_candidates_question', ['campaign_id', 'question_id'], 'questions', [
      'campaign_id',
      'id',
    ])
    .execute();

  // Null except for rstar pairs with a consistent trajectory.
  await db.schema
    .alterTable('preference_pairs')
    // Node ids from the root's child down to the chosen terminal node.
    .addColumn('chosen_path', 'jsonb')
    // The generator call that made each of those nodes, in the same order.
    .addColumn('chosen_call_ids', 'jsonb')
    .execute();
}

export async function down(db: AnyDb): Promise<void> {
  await db.schema
    .alterTable('preference_pairs')
    .dropColumn('chosen_path')
    .dropColumn('chosen_call_ids')
    .execute();
  await db.schema.dropTable('rstar_candidates').ifExists().execute();
}
