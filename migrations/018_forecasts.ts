/**
 * Forecasts (`meteorctl campaign plan`): a campaign run on a sample of a spec's questions to price
 * the whole. `forecast` says so ({ of: full question counts, specHash, train }); null for every
 * real campaign, so old rows and old writes are untouched (expand-only).
 */
import type { Kysely } from 'kysely';

type AnyDb = Kysely<unknown>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema.alterTable('campaigns').addColumn('forecast', 'jsonb').execute();
}

export async function down(db: AnyDb): Promise<void> {
  await db.schema.alterTable('campaigns').dropColumn('forecast').execute();
}
