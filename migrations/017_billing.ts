/**
 * What a call was billed at (issue 12): `cached_tokens`, the prompt tokens the provider reported as
 * read from its prompt cache (null when it reported none: older rows, servers without the field),
 * and `billing_mode`, whether it went out online or through a provider's Batch API. `cost_usd`
 * stays the one figure status, the report and the budget sum; these say how it was arrived at.
 *
 * Expand-only: a nullable column and one with a default, so v0.1.0's inserts (which name neither)
 * still succeed and every old row reads as what it was — an online call, cache unknown.
 */
import { sql, type Kysely } from 'kysely';

type AnyDb = Kysely<unknown>;

export async function up(db: AnyDb): Promise<void> {
  // No check on cached_tokens: a paid answer must always reach the call log (else it is paid for
  // again), whatever a provider reports; the gateway keeps only sane values.
  await sql`alter table llm_calls
    add column cached_tokens integer,
    add column billing_mode text not null default 'online'`.execute(db);
  // NOT VALID: old rows all hold the default, and the call log can be large — validating it would
  // scan the table under an exclusive lock. New rows are checked all the same.
  await sql`alter table llm_calls add constraint llm_calls_billing_mode_check
    check (billing_mode in ('online', 'batch')) not valid`.execute(db);
}

export async function down(db: AnyDb): Promise<void> {
  await sql`alter table llm_calls drop constraint if exists llm_calls_billing_mode_check`.execute(db);
  await sql`alter table llm_calls drop column if exists billing_mode, drop column if exists cached_tokens`.execute(
    db,
  );
}
