/**
 * Outages and budgets pause a campaign instead of failing it:
 *  - `endpoint_health`: per stage iteration and endpoint, since when its calls have failed
 *    (connection refused, 5xx, timeouts) without a success in between, how many attempts failed
 *    and the last error — shared by every worker, read by `campaign status` (`retrying`);
 *  - `campaigns.budget_override`: budgets raised by `campaign resume --max-cost-usd`, which the
 *    gateway's budget guard reads before each call (over the spec's);
 *  - `campaigns.pause_reason`: why the campaign paused itself (an outage, the budget).
 */
import { sql, type Kysely } from 'kysely';

type AnyDb = Kysely<unknown>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createTable('endpoint_health')
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
    .addColumn('stage', 'text', (c) => c.notNull())
    .addColumn('iteration', 'integer', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    // Scrubbed (no userinfo), as in llm_calls.
    .addColumn('base_url', 'text', (c) => c.notNull())
    .addColumn('model', 'text', (c) => c.notNull())
    // Null while the endpoint answers; the first failure after a success sets it.
    .addColumn('failing_since', 'timestamptz')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_error', 'text')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('endpoint_health_pk', [
      'campaign_id',
      'stage',
      'iteration',
      'role',
      'base_url',
      'model',
    ])
    .execute();
  await db.schema.alterTable('campaigns').addColumn('budget_override', 'jsonb').execute();
  await db.schema.alterTable('campaigns').addColumn('pause_reason', 'text').execute();
}

export async function down(db: AnyDb): Promise<void> {
  await db.schema.alterTable('campaigns').dropColumn('pause_reason').execute();
  await db.schema.alterTable('campaigns').dropColumn('budget_override').execute();
  await db.schema.dropTable('endpoint_health').execute();
}
