/**
 * The evaluation's self-correction probe (SCoRe): per model and held-out question, the model's
 * revision of its evaluation answer after SCoRe's second-turn instruction, and the strong model's
 * verdict on both attempts. The first attempt is the model's `eval_answers` row.
 */
import { sql, type Kysely } from 'kysely';

type AnyDb = Kysely<unknown>;

const verdict = sql`in ('correct', 'incorrect', 'unparseable')`;

export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createTable('self_corrections')
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
    .addColumn('model_label', 'text', (c) => c.notNull())
    .addColumn('question_id', 'text', (c) => c.notNull())
    .addColumn('served_model', 'text', (c) => c.notNull())
    .addColumn('revision', 'text', (c) => c.notNull())
    .addColumn('revision_call_id', 'bigint', (c) => c.notNull().references('llm_calls.id'))
    .addColumn('verdict_t1', 'text', (c) => c.notNull().check(sql`verdict_t1 ${verdict}`))
    .addColumn('feedback_t1', 'text')
    .addColumn('verdict_t1_call_id', 'bigint', (c) => c.notNull().references('llm_calls.id'))
    .addColumn('verdict_t2', 'text', (c) => c.notNull().check(sql`verdict_t2 ${verdict}`))
    .addColumn('feedback_t2', 'text')
    .addColumn('verdict_t2_call_id', 'bigint', (c) => c.notNull().references('llm_calls.id'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('self_corrections_pk', ['campaign_id', 'model_label', 'question_id'])
    .addForeignKeyConstraint('self_corrections_question', ['campaign_id', 'question_id'], 'questions', [
      'campaign_id',
      'id',
    ])
    .execute();
}

export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropTable('self_corrections').ifExists().execute();
}
