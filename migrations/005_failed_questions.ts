/**
 * Questions a stage gave up on (a 400/413/422 for that prompt, retries exhausted, replies that
 * never parse): the stage goes on without them, and `campaign retry-failed` retries them later.
 * One row per (campaign, stage, iteration, question); `resolved_at` is set once a retry made
 * the question's record.
 */
import { sql, type Kysely } from 'kysely';

type AnyDb = Kysely<unknown>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createTable('failed_questions')
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
    .addColumn('stage', 'text', (c) => c.notNull())
    .addColumn('iteration', 'integer', (c) => c.notNull())
    .addColumn('question_id', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('http_status', 'integer')
    // The LLM calls made for the question in this stage iteration (failed attempts included).
    .addColumn('call_ids', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    // How many times the question was given up on (the first run, then each retry-failed).
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('resolved_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('failed_questions_pk', ['campaign_id', 'stage', 'iteration', 'question_id'])
    .execute();
}

export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropTable('failed_questions').execute();
}
