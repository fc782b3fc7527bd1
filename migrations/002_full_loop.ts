/**
 * Stages 2 and 3 and the evaluation: assessment rounds, preference pairs, evaluation answers and
 * judgments — each keyed by its business key, so every write is an upsert.
 */
import { sql, type Kysely } from 'kysely';

type AnyDb = Kysely<unknown>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createTable('assess_rounds')
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
    .addColumn('iteration', 'integer', (c) => c.notNull())
    .addColumn('question_id', 'text', (c) => c.notNull())
    .addColumn('round', 'integer', (c) => c.notNull())
    .addColumn('model_in', 'text', (c) => c.notNull())
    .addColumn('answer', 'text', (c) => c.notNull())
    // correct | incorrect | unparseable (the critic's reply never parsed, even when asked again)
    .addColumn('verdict', 'text', (c) =>
      c.notNull().check(sql`verdict in ('correct', 'incorrect', 'unparseable')`),
    )
    .addColumn('feedback', 'text')
    .addColumn('answer_call_id', 'bigint', (c) => c.notNull().references('llm_calls.id'))
    .addColumn('verdict_call_id', 'bigint', (c) => c.notNull().references('llm_calls.id'))
    .addColumn('verdict_attempts', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('assess_rounds_pk', ['campaign_id', 'iteration', 'question_id', 'round'])
    .addForeignKeyConstraint('assess_rounds_question', ['campaign_id', 'question_id'], 'questions', [
      'campaign_id',
      'id',
    ])
    .execute();

  await db.schema
    .createTable('preference_pairs')
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
    .addColumn('iteration', 'integer', (c) => c.notNull())
    .addColumn('question_id', 'text', (c) => c.notNull())
    .addColumn('model_in', 'text', (c) => c.notNull())
    // beam | best-of-n
    .addColumn('method', 'text', (c) => c.notNull())
    .addColumn('chosen', 'text', (c) => c.notNull())
    .addColumn('rejected', 'text', (c) => c.notNull())
    .addColumn('similarity', 'double precision', (c) => c.notNull())
    .addColumn('kept', 'boolean', (c) => c.notNull())
    .addColumn('drop_reason', 'text')
    .addColumn('critique_agrees', 'boolean')
    .addColumn('greedy_call_id', 'bigint', (c) => c.notNull().references('llm_calls.id'))
    .addColumn('high_call_id', 'bigint', (c) => c.notNull().references('llm_calls.id'))
    .addColumn('critique_call_ids', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('preference_pairs_pk', ['campaign_id', 'iteration', 'question_id'])
    .addForeignKeyConstraint('preference_pairs_question', ['campaign_id', 'question_id'], 'questions', [
      'campaign_id',
      'id',
    ])
    .execute();

  await db.schema
    .createTable('eval_answers')
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
    .addColumn('model_label', 'text', (c) => c.notNull())
    .addColumn('question_id', 'text', (c) => c.notNull())
    .addColumn('served_model', 'text', (c) => c.notNull())
    .addColumn('answer', 'text', (c) => c.notNull())
    .addColumn('call_id', 'bigint', (c) => c.notNull().references('llm_calls.id'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('eval_answers_pk', ['campaign_id', 'model_label', 'question_id'])
    .execute();

  await db.schema
    .createTable('judgments')
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
    // The model compared with the base model (M0) on this question.
    .addColumn('model_label', 'text', (c) => c.notNull())
    .addColumn('question_id', 'text', (c) => c.notNull())
    // 'model-first': the candidate is answer A; 'base-first': the base model's answer is A.
    .addColumn('position', 'text', (c) => c.notNull().check(sql`position in ('model-first', 'base-first')`))
    .addColumn('judge_model', 'text', (c) => c.notNull())
    .addColumn('prompt_version', 'text', (c) => c.notNull())
    .addColumn('raw_text', 'text', (c) => c.notNull())
    // ok | unparseable
    .addColumn('status', 'text', (c) => c.notNull())
    // Per dimension, from the candidate's side: 'model' | 'base' | 'tie'; null when unparseable.
    .addColumn('verdicts', 'jsonb')
    // Judge's 1–10 scores of the candidate and of the base, per dimension and overall.
    .addColumn('scores', 'jsonb')
    .addColumn('call_id', 'bigint', (c) => c.notNull().references('llm_calls.id'))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('judgments_pk', ['campaign_id', 'model_label', 'question_id', 'position'])
    .execute();
}

export async function down(db: AnyDb): Promise<void> {
  for (const t of ['judgments', 'eval_answers', 'preference_pairs', 'assess_rounds']) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
