/**
 * Evolution lines: the line and its fixed held-out set, its iterations (each a campaign, or
 * skipped), and its champion history (promotions by the gate or by people, rollbacks).
 */
import { sql, type Kysely } from 'kysely';

type AnyDb = Kysely<unknown>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createTable('lines')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('spec', 'jsonb', (c) => c.notNull())
    .addColumn('spec_file', 'text', (c) => c.notNull())
    .addColumn('spec_dir', 'text', (c) => c.notNull())
    .addColumn('schedule_id', 'text', (c) => c.notNull().unique())
    .addColumn('task_queue', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('deleted_at', 'timestamptz')
    .execute();

  // The held-out set is fixed when the line is created, so iterations are comparable.
  await db.schema
    .createTable('line_heldout')
    .addColumn('line', 'text', (c) => c.notNull().references('lines.name').onDelete('cascade'))
    .addColumn('ordinal', 'integer', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('title', 'text')
    .addColumn('question', 'text', (c) => c.notNull())
    .addColumn('reference', 'text')
    .addColumn('content_hash', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('line_heldout_pk', ['line', 'id'])
    .execute();

  await db.schema
    .createTable('line_iterations')
    .addColumn('line', 'text', (c) => c.notNull().references('lines.name').onDelete('cascade'))
    .addColumn('iteration', 'integer', (c) => c.notNull())
    // The Temporal workflow that ran it (one per scheduled start): a retry finds its row again.
    .addColumn('workflow_id', 'text', (c) => c.notNull().unique())
    .addColumn('campaign_id', 'text', (c) => c.references('campaigns.id'))
    // running | completed | failed | cancelled | skipped
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('questions_added', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('questions_replayed', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('promoted', 'boolean')
    .addColumn('reason', 'text')
    // The judged result against the champion: per gating dimension {winRate, tieAdjusted, ci}.
    .addColumn('gate', 'jsonb')
    .addColumn('started_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('finished_at', 'timestamptz')
    .addPrimaryKeyConstraint('line_iterations_pk', ['line', 'iteration'])
    .execute();

  await db.schema
    .createTable('line_champions')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('line', 'text', (c) => c.notNull().references('lines.name').onDelete('cascade'))
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id'))
    .addColumn('label', 'text', (c) => c.notNull())
    .addColumn('served_model', 'text', (c) => c.notNull())
    .addColumn('checkpoint_uri', 'text')
    // gate | promote | rollback
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('why', 'text')
    .addColumn('at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .alterTable('campaigns')
    .addColumn('line_name', 'text')
    .addColumn('line_iteration', 'integer')
    .execute();
  // M0 of a line iteration is the champion of another campaign: the lineage crosses campaigns.
  await db.schema
    .alterTable('model_versions')
    .addColumn('origin_campaign_id', 'text')
    .addColumn('origin_label', 'text')
    .execute();
  // Replayed training rows, per dataset: where each came from (a row of an earlier iteration's dataset).
  await db.schema
    .createTable('dataset_replay')
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
    .addColumn('stage', 'text', (c) => c.notNull())
    .addColumn('iteration', 'integer', (c) => c.notNull())
    .addColumn('source_campaign_id', 'text', (c) => c.notNull())
    .addColumn('source_iteration', 'integer', (c) => c.notNull())
    .addColumn('source_row', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('dataset_replay_pk', [
      'campaign_id',
      'stage',
      'iteration',
      'source_campaign_id',
      'source_iteration',
      'source_row',
    ])
    .execute();
}

export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropTable('dataset_replay').ifExists().execute();
  await db.schema
    .alterTable('model_versions')
    .dropColumn('origin_campaign_id')
    .dropColumn('origin_label')
    .execute();
  await db.schema.alterTable('campaigns').dropColumn('line_name').dropColumn('line_iteration').execute();
  for (const t of ['line_champions', 'line_iterations', 'line_heldout', 'lines']) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
