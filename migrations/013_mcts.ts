/**
 * The `mcts` stage (SRA-MCTS, stages/mcts/): per question and iteration, the search's outcome —
 * the chosen reasoning path and the answer made of it — and, per search round, the ids of the LLM
 * calls the round made (a round's calls are known only to the attempt that ran it, so they are
 * kept as the round is saved: the record's audit then leads to every call behind its tree). The
 * tree itself is in search_trees / search_nodes (migration 012), stage 'mcts'.
 */
import { sql, type Kysely } from 'kysely';

type AnyDb = Kysely<unknown>;

const KEY = ['campaign_id', 'iteration', 'question_id'] as const;

export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createTable('mcts_records')
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
    .addColumn('iteration', 'integer', (c) => c.notNull())
    .addColumn('question_id', 'text', (c) => c.notNull())
    .addColumn('model_in', 'text', (c) => c.notNull())
    // The chosen path's steps, root excluded, in order: a JSON array of strings.
    .addColumn('steps', 'jsonb', (c) => c.notNull().check(sql`jsonb_typeof(steps) = 'array'`))
    // The final answer made of the steps (stages/mcts/batch.ts finalAnswer).
    .addColumn('answer', 'text', (c) => c.notNull())
    // The chosen node's self-evaluated value, 0–10.
    .addColumn('value', 'double precision', (c) => c.notNull().check(sql`value >= 0 and value <= 10`))
    .addColumn('reached_gate', 'boolean', (c) => c.notNull())
    .addColumn('rounds', 'integer', (c) => c.notNull().check(sql`rounds >= 0`))
    .addColumn('nodes', 'integer', (c) => c.notNull().check(sql`nodes >= 1`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('mcts_records_pk', [...KEY])
    .addForeignKeyConstraint('mcts_records_question', ['campaign_id', 'question_id'], 'questions', [
      'campaign_id',
      'id',
    ])
    .execute();

  await db.schema
    .createTable('mcts_round_calls')
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
    .addColumn('iteration', 'integer', (c) => c.notNull())
    .addColumn('question_id', 'text', (c) => c.notNull())
    .addColumn('round', 'integer', (c) => c.notNull().check(sql`round >= 1`))
    // llm_calls ids as strings (bigint), in the order the round made them.
    .addColumn('call_ids', 'jsonb', (c) => c.notNull().check(sql`jsonb_typeof(call_ids) = 'array'`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('mcts_round_calls_pk', [...KEY, 'round'])
    .addForeignKeyConstraint('mcts_round_calls_question', ['campaign_id', 'question_id'], 'questions', [
      'campaign_id',
      'id',
    ])
    .execute();
}

export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropTable('mcts_round_calls').ifExists().execute();
  await db.schema.dropTable('mcts_records').ifExists().execute();
}
