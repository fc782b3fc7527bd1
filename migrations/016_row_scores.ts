/**
 * The training-row filter (`stages.<training stage>.filter`): each training example's score by
 * the judge or by the model itself, 1–10, and the call that gave it. The export keeps the rows
 * scored at least the threshold; the audit shows every score.
 */
import { sql, type Kysely } from 'kysely';

type AnyDb = Kysely<unknown>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createTable('row_scores')
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
    .addColumn('stage', 'text', (c) => c.notNull())
    .addColumn('iteration', 'integer', (c) => c.notNull())
    .addColumn('question_id', 'text', (c) => c.notNull())
    // The example's place among its question's examples, in the order the stage yields them.
    .addColumn('row', 'integer', (c) => c.notNull().check(sql`"row" >= 0`))
    .addColumn('scorer', 'text', (c) => c.notNull().check(sql`scorer in ('judge', 'self')`))
    // Null when the scorer's reply never parsed: the row is then left out, and counted.
    .addColumn('score', 'real')
    .addColumn('reason', 'text')
    .addColumn('call_id', 'bigint', (c) => c.notNull().references('llm_calls.id'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('row_scores_pk', ['campaign_id', 'stage', 'iteration', 'question_id', 'row'])
    .addForeignKeyConstraint('row_scores_question', ['campaign_id', 'question_id'], 'questions', [
      'campaign_id',
      'id',
    ])
    .execute();
}

export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropTable('row_scores').ifExists().execute();
}
