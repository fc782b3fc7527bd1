/**
 * The initial schema. Every record table has a primary key made of business keys
 * (campaign, stage, iteration, question, …) so that writes are upserts: a retried activity or a
 * crashed worker can never duplicate a record.
 */
import { sql, type Kysely } from 'kysely';

// Migrations see the database as it was when they were written, not the current types: untyped.
type AnyDb = Kysely<unknown>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createTable('campaigns')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('domain', 'text', (c) => c.notNull())
    .addColumn('spec', 'jsonb', (c) => c.notNull())
    .addColumn('spec_file', 'text')
    .addColumn('spec_dir', 'text', (c) => c.notNull())
    .addColumn('workflow_id', 'text', (c) => c.notNull().unique())
    .addColumn('task_queue', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('created'))
    .addColumn('error', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('questions')
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('split', 'text', (c) => c.notNull().check(sql`split in ('train', 'eval')`))
    .addColumn('ordinal', 'integer', (c) => c.notNull())
    .addColumn('title', 'text')
    .addColumn('question', 'text', (c) => c.notNull())
    .addColumn('reference', 'text')
    .addColumn('content_hash', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('questions_pk', ['campaign_id', 'id'])
    .addUniqueConstraint('questions_split_ordinal', ['campaign_id', 'split', 'ordinal'])
    .execute();

  await db.schema
    .createTable('model_versions')
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
    .addColumn('label', 'text', (c) => c.notNull())
    .addColumn('parent_label', 'text')
    .addColumn('served_model', 'text', (c) => c.notNull())
    .addColumn('stage', 'text')
    .addColumn('iteration', 'integer')
    .addColumn('dataset_id', 'bigint')
    .addColumn('finetune_job_id', 'bigint')
    .addColumn('checkpoint_uri', 'text')
    .addColumn('deployed_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('model_versions_pk', ['campaign_id', 'label'])
    .execute();

  await db.schema
    .createTable('stage_runs')
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
    .addColumn('stage', 'text', (c) => c.notNull())
    .addColumn('iteration', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('model_in', 'text', (c) => c.notNull())
    .addColumn('model_out', 'text')
    .addColumn('total', 'integer', (c) => c.notNull())
    .addColumn('metrics', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('started_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('finished_at', 'timestamptz')
    .addPrimaryKeyConstraint('stage_runs_pk', ['campaign_id', 'stage', 'iteration'])
    .execute();

  await db.schema
    .createTable('llm_calls')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
    .addColumn('stage', 'text', (c) => c.notNull())
    .addColumn('iteration', 'integer', (c) => c.notNull())
    .addColumn('request_hash', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('base_url', 'text', (c) => c.notNull())
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('prompt_version', 'text', (c) => c.notNull())
    .addColumn('request', 'jsonb', (c) => c.notNull())
    .addColumn('response', 'jsonb')
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('ok', 'error')`))
    .addColumn('error', 'text')
    .addColumn('http_status', 'integer')
    .addColumn('prompt_tokens', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('completion_tokens', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('latency_ms', 'integer', (c) => c.notNull())
    .addColumn('cost_usd', 'double precision', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  // One successful call per request within a stage run: a retried activity reuses it.
  await sql`create unique index llm_calls_ok_key on llm_calls (campaign_id, stage, iteration, request_hash) where status = 'ok'`.execute(
    db,
  );
  await db.schema
    .createIndex('llm_calls_campaign')
    .on('llm_calls')
    .columns(['campaign_id', 'created_at'])
    .execute();

  await db.schema
    .createTable('distill_records')
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
    .addColumn('iteration', 'integer', (c) => c.notNull())
    .addColumn('question_id', 'text', (c) => c.notNull())
    .addColumn('model_in', 'text', (c) => c.notNull())
    .addColumn('guideline', 'text', (c) => c.notNull())
    .addColumn('answer', 'text', (c) => c.notNull())
    .addColumn('guideline_corrected', 'boolean', (c) => c.notNull())
    .addColumn('correction', 'text')
    .addColumn('guideline_call_id', 'bigint', (c) => c.notNull().references('llm_calls.id'))
    .addColumn('answer_call_id', 'bigint', (c) => c.notNull().references('llm_calls.id'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('distill_records_pk', ['campaign_id', 'iteration', 'question_id'])
    .addForeignKeyConstraint('distill_records_question', ['campaign_id', 'question_id'], 'questions', [
      'campaign_id',
      'id',
    ])
    .execute();

  await db.schema
    .createTable('datasets')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
    .addColumn('stage', 'text', (c) => c.notNull())
    .addColumn('iteration', 'integer', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('format', 'text', (c) => c.notNull())
    .addColumn('uri', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('rows', 'integer', (c) => c.notNull())
    .addColumn('bytes', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('datasets_key', ['campaign_id', 'stage', 'iteration', 'format'])
    .execute();

  await db.schema
    .createTable('finetune_jobs')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
    .addColumn('stage', 'text', (c) => c.notNull())
    .addColumn('iteration', 'integer', (c) => c.notNull())
    .addColumn('idempotency_key', 'text', (c) => c.notNull().unique())
    .addColumn('backend', 'text', (c) => c.notNull())
    .addColumn('external_id', 'text')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('base_model', 'text', (c) => c.notNull())
    .addColumn('dataset_id', 'bigint', (c) => c.notNull().references('datasets.id'))
    .addColumn('output_dir', 'text', (c) => c.notNull())
    .addColumn('checkpoint_uri', 'text')
    .addColumn('error', 'text')
    .addColumn('submitted_at', 'timestamptz')
    .addColumn('finished_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('finetune_events')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('job_id', 'bigint', (c) => c.notNull().references('finetune_jobs.id').onDelete('cascade'))
    .addColumn('at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('message', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: AnyDb): Promise<void> {
  for (const t of [
    'finetune_events',
    'finetune_jobs',
    'datasets',
    'distill_records',
    'llm_calls',
    'stage_runs',
    'model_versions',
    'questions',
    'campaigns',
  ]) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
