/**
 * A pause drains the running batches (workflows/stage.ts): the stage sets `drain_requested_at` on
 * its run, its batch activities see it within a heartbeat, start no new call, let the calls in
 * flight finish and be logged, and return; the resume clears it. Null on every run not being
 * paused, so old rows and old writes are untouched (expand-only).
 */
import type { Kysely } from 'kysely';

type AnyDb = Kysely<unknown>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema.alterTable('stage_runs').addColumn('drain_requested_at', 'timestamptz').execute();
}

export async function down(db: AnyDb): Promise<void> {
  await db.schema.alterTable('stage_runs').dropColumn('drain_requested_at').execute();
}
