/**
 * `campaign_spend` kept by one update per statement instead of one per row: the gateway logs
 * many calls in one insert (group commit), and a row trigger updated the same spend row once for
 * each of them — a new row version and WAL record per call. The statement trigger sums the
 * statement's inserted rows (a transition table) per campaign and stage. Same totals.
 */
import { sql, type Kysely } from 'kysely';

type AnyDb = Kysely<unknown>;

export async function up(db: AnyDb): Promise<void> {
  await sql`drop trigger llm_calls_spend on llm_calls`.execute(db);
  await sql`
    create function llm_calls_spend_per_statement() returns trigger language plpgsql as $$
    begin
      insert into campaign_spend as s (campaign_id, stage, cost_usd)
        select campaign_id, stage, sum(cost_usd) from inserted_calls
        where cost_usd > 0 group by campaign_id, stage
        on conflict (campaign_id, stage) do update set cost_usd = s.cost_usd + excluded.cost_usd;
      return null;
    end $$`.execute(db);
  await sql`create trigger llm_calls_spend after insert on llm_calls
    referencing new table as inserted_calls
    for each statement execute function llm_calls_spend_per_statement()`.execute(db);
}

export async function down(db: AnyDb): Promise<void> {
  await sql`drop trigger llm_calls_spend on llm_calls`.execute(db);
  await sql`drop function llm_calls_spend_per_statement()`.execute(db);
  await sql`create trigger llm_calls_spend after insert on llm_calls
    for each row execute function llm_calls_spend()`.execute(db);
}
