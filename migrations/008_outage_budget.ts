/**
 * Outages and budgets pause a campaign instead of failing it:
 *  - `endpoint_health`: per stage iteration and endpoint, since when its calls have failed
 *    (connection refused, 5xx, timeouts) without a success in between, how many attempts failed
 *    and the last error — shared by every worker, read by `campaign status` (`retrying`);
 *  - `campaigns.budget_override`: budgets raised by `campaign resume --max-cost-usd`, which the
 *    gateway's budget guard reads before each call (over the spec's);
 *  - `campaigns.pause_reason`: why the campaign paused itself (an outage, the budget);
 *  - `campaign_spend`: the sum of `llm_calls.cost_usd` per campaign and stage, kept by a trigger
 *    on every insert, so the budget guard reads a few rows before each call instead of summing
 *    a campaign's whole call log (hundreds of thousands of rows on a large campaign).
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

  await db.schema
    .createTable('campaign_spend')
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
    .addColumn('stage', 'text', (c) => c.notNull())
    .addColumn('cost_usd', 'double precision', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('campaign_spend_pk', ['campaign_id', 'stage'])
    .execute();
  // Every row that cost something counts, whatever its status: what was paid is what was paid.
  await sql`
    create function llm_calls_spend() returns trigger language plpgsql as $$
    begin
      if new.cost_usd > 0 then
        insert into campaign_spend as s (campaign_id, stage, cost_usd)
          values (new.campaign_id, new.stage, new.cost_usd)
          on conflict (campaign_id, stage) do update set cost_usd = s.cost_usd + excluded.cost_usd;
      end if;
      return null;
    end $$`.execute(db);
  await sql`create trigger llm_calls_spend after insert on llm_calls
    for each row execute function llm_calls_spend()`.execute(db);
  await sql`insert into campaign_spend (campaign_id, stage, cost_usd)
    select campaign_id, stage, sum(cost_usd) from llm_calls where cost_usd > 0
    group by campaign_id, stage`.execute(db);
}

export async function down(db: AnyDb): Promise<void> {
  await sql`drop trigger llm_calls_spend on llm_calls`.execute(db);
  await sql`drop function llm_calls_spend()`.execute(db);
  await db.schema.dropTable('campaign_spend').execute();
  await db.schema.alterTable('campaigns').dropColumn('pause_reason').execute();
  await db.schema.alterTable('campaigns').dropColumn('budget_override').execute();
  await db.schema.dropTable('endpoint_health').execute();
}
