/**
 * Overlapping attempts of one batch (e.g. a start-to-close timeout fired while the first attempt
 * still ran) and the same request:
 * - `llm_call_claims`: an attempt claims a request before sending it, with a lease it renews while
 *   the request runs; another attempt waits for the answer instead of paying for it again;
 * - a paid answer to a request already logged `ok` (possible once a lease lapsed) is kept as a
 *   `duplicate` row with its tokens and cost: status and budget sum what was actually paid, while
 *   records keep pointing at the one `ok` call.
 */
import { sql, type Kysely } from 'kysely';

type AnyDb = Kysely<unknown>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createTable('llm_call_claims')
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
    .addColumn('stage', 'text', (c) => c.notNull())
    .addColumn('iteration', 'integer', (c) => c.notNull())
    .addColumn('request_hash', 'text', (c) => c.notNull())
    .addColumn('owner', 'text', (c) => c.notNull())
    .addColumn('lease_until', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('llm_call_claims_pk', ['campaign_id', 'stage', 'iteration', 'request_hash'])
    .execute();
  await sql`alter table llm_calls drop constraint if exists llm_calls_status_check`.execute(db);
  await sql`alter table llm_calls add constraint llm_calls_status_check check (status in ('ok', 'error', 'duplicate'))`.execute(
    db,
  );
}

export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropTable('llm_call_claims').ifExists().execute();
  await sql`delete from llm_calls where status = 'duplicate'`.execute(db);
  await sql`alter table llm_calls drop constraint if exists llm_calls_status_check`.execute(db);
  await sql`alter table llm_calls add constraint llm_calls_status_check check (status in ('ok', 'error'))`.execute(
    db,
  );
}
