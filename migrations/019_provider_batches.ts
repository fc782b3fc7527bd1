/**
 * Provider Batch APIs (issue 12): calls of an endpoint in `mode: batch` wait in
 * `llm_batch_requests` until the stage submits them, in chunks, as provider batches
 * (`llm_batches`). A chunk is claimed here before it is created at the provider and looked up
 * there by its metadata when its id was not recorded, so it is created once across crashes.
 * Answers land in `llm_calls` (billing_mode 'batch') like any call. New tables only (expand-only).
 */
import { sql, type Kysely } from 'kysely';

type AnyDb = Kysely<unknown>;

export async function up(db: AnyDb): Promise<void> {
  await sql`create table llm_batches (
    id bigserial primary key,
    campaign_id text not null,
    stage text not null,
    iteration integer not null,
    cycle integer not null,
    role text not null,
    chunk integer not null,
    -- The provider's metadata value the chunk is looked up by.
    meta_key text not null,
    provider_batch_id text,
    input_file_id text,
    status text not null default 'claimed',
    requests integer not null default 0,
    answered integer not null default 0,
    errored integer not null default 0,
    created_at timestamptz not null default now(),
    finished_at timestamptz,
    unique (campaign_id, stage, iteration, cycle, role, chunk)
  )`.execute(db);
  await sql`create table llm_batch_requests (
    campaign_id text not null,
    stage text not null,
    iteration integer not null,
    request_hash text not null,
    role text not null,
    base_url text not null,
    model text not null,
    purpose text not null,
    prompt_version text not null,
    body jsonb not null,
    -- pending: waits for a batch; submitted: in batch_id; answered: its answer is in llm_calls;
    -- online: batches failed it, the gateway sends it online.
    status text not null default 'pending' check (status in ('pending', 'submitted', 'answered', 'online')),
    batch_id bigint references llm_batches (id),
    attempts integer not null default 0,
    last_error text,
    created_at timestamptz not null default now(),
    primary key (campaign_id, stage, iteration, request_hash)
  )`.execute(db);
  await sql`create index llm_batch_requests_batch on llm_batch_requests (batch_id)`.execute(db);
}

export async function down(db: AnyDb): Promise<void> {
  await sql`drop table if exists llm_batch_requests`.execute(db);
  await sql`drop table if exists llm_batches`.execute(db);
}
