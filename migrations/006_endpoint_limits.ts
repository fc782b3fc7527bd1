/**
 * Endpoint limits shared by every worker process and machine: one row per endpoint (its
 * request and token buckets and a `blocked_until` a 429's Retry-After sets for all callers) and
 * one lease per request in flight. Leases expire unless their holder renews them, so the slots
 * of a killed worker come back on their own. The endpoint key is `baseURL` without userinfo,
 * then `|`, then the model.
 */
import { sql, type Kysely } from 'kysely';

type AnyDb = Kysely<unknown>;

export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createTable('endpoint_limits')
    .addColumn('endpoint', 'text', (c) => c.primaryKey())
    // Bucket levels at `refilled_at`; null: full (first use, or the limit was just configured).
    // They may go negative: a request estimated above the burst is paid for by waiting longer.
    .addColumn('request_budget', 'double precision')
    .addColumn('token_budget', 'double precision')
    .addColumn('refilled_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('blocked_until', 'timestamptz')
    .execute();
  await db.schema
    .createTable('endpoint_leases')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('endpoint', 'text', (c) =>
      c.notNull().references('endpoint_limits.endpoint').onDelete('cascade'),
    )
    // Which process holds it (host:pid:random), for renewal and for an operator's eyes.
    .addColumn('holder', 'text', (c) => c.notNull())
    .addColumn('acquired_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('endpoint_leases_endpoint').on('endpoint_leases').column('endpoint').execute();
  await db.schema.createIndex('endpoint_leases_holder').on('endpoint_leases').column('holder').execute();
}

export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropTable('endpoint_leases').execute();
  await db.schema.dropTable('endpoint_limits').execute();
}
