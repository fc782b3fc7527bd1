/**
 * Task evolution (stages/evolve): questions the strong model wrote join the training split, marked
 * as such — `origin` 'evolved' and the seed they were rewritten from — so the audit of every stage
 * can say a question is synthetic. `evolved_questions` is the stage's record: one row per seed and
 * iteration, whatever became of the rewrite (kept, rejected by the novelty check, unparseable).
 */
import { sql, type Kysely } from 'kysely';

type AnyDb = Kysely<unknown>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .alterTable('questions')
    .addColumn('origin', 'text', (c) =>
      c
        .notNull()
        .defaultTo('given')
        .check(sql`origin in ('given', 'evolved')`),
    )
    .addColumn('evolved_from', 'text')
    .execute();
  // Both or neither: an evolved question always names its seed.
  await sql`alter table questions add constraint questions_evolved_from
    check ((origin = 'evolved') = (evolved_from is not null))`.execute(db);
  await sql`alter table questions add constraint questions_evolved_from_fk
    foreign key (campaign_id, evolved_from) references questions (campaign_id, id)`.execute(db);

  await db.schema
    .createTable('evolved_questions')
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
    .addColumn('iteration', 'integer', (c) => c.notNull())
    .addColumn('seed_id', 'text', (c) => c.notNull())
    .addColumn('method', 'text', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) =>
      c.notNull().check(sql`outcome in ('kept', 'rejected', 'unparseable')`),
    )
    // Why a rewrite was rejected; null otherwise.
    .addColumn('reason', 'text', (c) => c.check(sql`reason in ('near-duplicate', 'near-held-out')`))
    // The question kept (a row of `questions`), or null.
    .addColumn('question_id', 'text')
    // The rewrite as the strong model wrote it (kept or not); null when its reply never parsed.
    .addColumn('title', 'text')
    .addColumn('question', 'text')
    // Kept: the closest existing question; rejected: the one it was too similar to.
    .addColumn('closest_id', 'text')
    .addColumn('similarity', 'float8')
    .addColumn('call_id', 'bigint', (c) => c.notNull().references('llm_calls.id'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('evolved_questions_pk', ['campaign_id', 'iteration', 'seed_id'])
    .addForeignKeyConstraint('evolved_questions_seed', ['campaign_id', 'seed_id'], 'questions', [
      'campaign_id',
      'id',
    ])
    .addForeignKeyConstraint('evolved_questions_question', ['campaign_id', 'question_id'], 'questions', [
      'campaign_id',
      'id',
    ])
    .execute();
}

export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropTable('evolved_questions').ifExists().execute();
  // Without the marking they would pass for given questions. Records made on them (distill's…)
  // reference them and make this fail, rather than leave records of unmarked synthetic questions.
  await sql`delete from questions where origin = 'evolved'`.execute(db);
  await sql`alter table questions drop constraint if exists questions_evolved_from_fk`.execute(db);
  await sql`alter table questions drop constraint if exists questions_evolved_from`.execute(db);
  await db.schema.alterTable('questions').dropColumn('origin').dropColumn('evolved_from').execute();
}
