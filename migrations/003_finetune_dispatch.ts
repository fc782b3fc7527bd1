/**
 * Fine-tunes on clusters: a job row is claimed before its submit (so two attempts never both
 * submit), carries the folder it runs in, the queue that owns it (a host's queue for `local`),
 * what was submitted (script or manifest), the backend's own state words and its final loss.
 */
import { sql, type Kysely } from 'kysely';

type AnyDb = Kysely<unknown>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .alterTable('finetune_jobs')
    // The job's folder as the worker sees it and as the job sees it (shared storage).
    .addColumn('job_dir', 'text')
    .addColumn('job_dir_remote', 'text')
    // The task queue the job's submit/poll/cancel run on (a host queue for `local`).
    .addColumn('queue', 'text')
    .addColumn('name', 'text')
    // The model the job starts from: its label, served name and adapter (as the job sees it).
    .addColumn('parent_label', 'text')
    .addColumn('parent_served', 'text')
    .addColumn('parent_checkpoint', 'text')
    // Who is submitting: one attempt at a time (a later attempt may take over an earlier one's claim).
    .addColumn('claim_token', 'text')
    .addColumn('claim_attempt', 'integer')
    .addColumn('claimed_at', 'timestamptz')
    .addColumn('cancel_requested', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('submitted', 'text')
    .addColumn('detail', 'text')
    .addColumn('exit_code', 'integer')
    .addColumn('started_at', 'timestamptz')
    .addColumn('final_loss', 'double precision')
    .execute();
  await db.schema
    .createIndex('finetune_events_job')
    .on('finetune_events')
    .columns(['job_id', 'id'])
    .execute();
  await sql`create index finetune_jobs_campaign on finetune_jobs (campaign_id, stage, iteration)`.execute(db);
}

export async function down(db: AnyDb): Promise<void> {
  await sql`drop index if exists finetune_jobs_campaign`.execute(db);
  await db.schema.dropIndex('finetune_events_job').ifExists().execute();
  for (const c of [
    'job_dir',
    'job_dir_remote',
    'queue',
    'name',
    'parent_label',
    'parent_served',
    'parent_checkpoint',
    'claim_token',
    'claim_attempt',
    'claimed_at',
    'cancel_requested',
    'submitted',
    'detail',
    'exit_code',
    'started_at',
    'final_loss',
  ]) {
    await db.schema.alterTable('finetune_jobs').dropColumn(c).execute();
  }
}
