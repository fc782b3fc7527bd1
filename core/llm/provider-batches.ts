/**
 * Provider Batch APIs (OpenAI's /v1/files and /v1/batches; Anthropic's Message Batches through
 * OpenAI-compatible gateways) for endpoints in `mode: batch`.
 *
 * A stage's calls to such an endpoint are not sent: the gateway files them here
 * (`llm_batch_requests`) and the question waits. Once the stage's batch activities are through,
 * the stage workflow submits what waits as provider batches, in chunks of `batch.maxRequests`
 * per role, polls them on durable timers, and ingests their output and error files: answers
 * become `llm_calls` rows billed at the batch price, exactly as an online answer would be logged,
 * so the questions run again and read them back through the usual reuse-from-log.
 *
 * Exactly once: a chunk is claimed in `llm_batches` before anything is sent, and while its
 * provider id is unknown it is first looked up at the provider by its `meteor_batch` metadata
 * (a crash between create and record), row-locked so two attempts never both create it; an
 * input file uploaded without its batch (a crash between upload and create) is found by its name
 * and used, not uploaded again.
 * Requests a batch failed or left unanswered (error lines, expired, cancelled) go to the next
 * batch or online, per `batch.onFailure` and `batch.maxAttempts`.
 */
import { sql, type Transaction } from 'kysely';
import OpenAI, { toFile } from 'openai';
import type { Batch } from 'openai/resources/batches';
import type { FileObject } from 'openai/resources/files';
import type { ChatCompletion } from 'openai/resources/chat/completions';
import type { Db } from '../db/connection';
import type { BatchRequestStatus, Database, LlmBatchesTable, LlmBatchRequestsTable } from '../db/types';
import type { Insertable, Selectable } from 'kysely';
import type { EndpointSpec, Role } from '../spec';
import { loggedCompletion } from './completion-log';
import { callCost } from './pricing';

type Endpoint = EndpointSpec & { role: Role };

/** Thrown by the gateway for a call filed for the next provider batch: the question waits for it. */
export class BatchDeferredError extends Error {
  override name = 'BatchDeferredError';
  constructor(
    readonly role: string,
    readonly requestHash: string,
  ) {
    super(`the ${role} call ${requestHash.slice(0, 12)} waits for the stage's next provider batch`);
  }
}

/** What provider batches need of the gateway: its clients, its scrubbing of secrets, the budget. */
export interface BatchApi {
  client(ep: Endpoint): OpenAI;
  /** Scrubs keys and key-shaped text (provider error messages). */
  scrub(text: string): string;
  /** Masks the known secret values (answers stored in the call log). */
  mask(text: string): string;
  /** Throws BudgetReachedError once the campaign's budget is spent. */
  checkBudget(scope: { campaignId: string; stage: string }): Promise<void>;
}

/** A request filed for the next batch: its call-log columns, the body as JSON (secrets masked). */
export type DeferredRequest = Pick<
  Insertable<LlmBatchRequestsTable>,
  | 'campaign_id'
  | 'stage'
  | 'iteration'
  | 'request_hash'
  | 'role'
  | 'base_url'
  | 'model'
  | 'purpose'
  | 'prompt_version'
  | 'body'
>;

/**
 * Files a request for the next batch (once: by its hash within the stage iteration) and returns
 * its status: `online` when batches gave up on it and it is to be sent online.
 */
export async function deferRequest(db: Db, r: DeferredRequest): Promise<BatchRequestStatus> {
  // One statement: the no-op update makes an existing row return its status.
  const row = await db
    .insertInto('llm_batch_requests')
    .values(r)
    .onConflict((oc) =>
      oc
        .columns(['campaign_id', 'stage', 'iteration', 'request_hash'])
        .doUpdateSet({ status: sql<BatchRequestStatus>`llm_batch_requests.status` }),
    )
    .returning('status')
    .executeTakeFirstOrThrow();
  return row.status;
}

/** One round of a stage's provider batches. */
export interface BatchCycleKey {
  campaignId: string;
  stage: string;
  iteration: number;
  /** Rounds follow each other: the answers of one let questions go on to their next calls. */
  cycle: number;
}

/** Where a round of batches stands. */
export interface BatchCycleState {
  /** Provider batches of the round, and those not yet ended. */
  batches: number;
  inProgress: number;
  /** Requests in them; answered so far; failed or left unanswered (sent again or online). */
  requests: number;
  answered: number;
  errored: number;
  /** Provider batch ids, for the user (status) and for cancel. */
  providerBatchIds: string[];
}

/** The provider statuses after which a batch changes no more. */
const ENDED = new Set<string>(['completed', 'failed', 'expired', 'cancelled']);

/** The metadata key a chunk is found by at the provider. */
export const BATCH_METADATA_KEY = 'meteor_batch';

type BatchRow = Selectable<LlmBatchesTable>;

/** One line of a batch output or error file (OpenAI's shape). */
interface OutputLine {
  custom_id: string;
  response: { status_code: number; body: unknown } | null;
  error: { code?: string | null; message?: string | null } | null;
}

export class ProviderBatches {
  constructor(
    private readonly db: Db,
    private readonly api: BatchApi,
  ) {}

  /**
   * Puts the requests waiting for a batch into chunks of this round and makes sure each chunk
   * exists at the provider, once. Calling it again for the same round only finishes what a
   * crash left undone.
   */
  async submit(key: BatchCycleKey, endpoints: ReadonlyMap<string, Endpoint>): Promise<BatchCycleState> {
    for (const [role, ep] of endpoints) await this.chunk(key, role, ep.batch.maxRequests);
    for (const row of await this.rows(key)) {
      if (row.provider_batch_id !== null) continue;
      const ep = endpoints.get(row.role);
      if (!ep) throw new Error(`${row.role} endpoint of provider batch ${row.meta_key} is not in the spec`);
      await this.create(row.id, ep);
    }
    return this.roundState(key);
  }

  /** Polls the round's batches that have not ended and ingests those that have. */
  async poll(key: BatchCycleKey, endpoints: ReadonlyMap<string, Endpoint>): Promise<BatchCycleState> {
    for (const row of await this.rows(key)) {
      if (row.provider_batch_id === null || ENDED.has(row.status)) continue;
      const ep = endpoints.get(row.role);
      if (!ep) throw new Error(`${row.role} endpoint of provider batch ${row.meta_key} is not in the spec`);
      const batch = await this.api.client(ep).batches.retrieve(row.provider_batch_id);
      if (ENDED.has(batch.status)) {
        if (!(await this.ingest(row, batch, ep))) continue;
        await this.deleteFiles(ep, [row.input_file_id, batch.output_file_id, batch.error_file_id]);
      } else if (batch.status !== row.status)
        await this.db
          .updateTable('llm_batches')
          .set({ status: batch.status })
          .where('id', '=', row.id)
          .execute();
    }
    return this.roundState(key);
  }

  /** Cancels the round's batches that have not ended (the campaign was cancelled); how many. */
  async cancel(key: BatchCycleKey, endpoints: ReadonlyMap<string, Endpoint>): Promise<number> {
    let cancelled = 0;
    for (const row of await this.rows(key)) {
      if (row.provider_batch_id === null || ENDED.has(row.status)) continue;
      const ep = endpoints.get(row.role);
      if (!ep) continue;
      try {
        const batch = await this.api.client(ep).batches.cancel(row.provider_batch_id);
        await this.db
          .updateTable('llm_batches')
          .set({ status: batch.status })
          .where('id', '=', row.id)
          .execute();
        cancelled++;
      } catch (err) {
        // Ended meanwhile (409/400): nothing left to cancel.
        if (!(err instanceof OpenAI.APIError) || err.status === undefined || err.status >= 500) throw err;
      }
    }
    return cancelled;
  }

  /** Claims chunks of this round for the role's waiting requests, `max` per chunk. */
  private async chunk(key: BatchCycleKey, role: string, max: number): Promise<void> {
    for (;;) {
      const assigned = await this.db.transaction().execute(async (tx) => {
        const waiting = await tx
          .selectFrom('llm_batch_requests')
          .select('request_hash')
          .where('campaign_id', '=', key.campaignId)
          .where('stage', '=', key.stage)
          .where('iteration', '=', key.iteration)
          .where('role', '=', role)
          .where('status', '=', 'pending')
          .orderBy('request_hash')
          .limit(max)
          .forUpdate()
          .skipLocked()
          .execute();
        if (waiting.length === 0) return 0;
        const last = await tx
          .selectFrom('llm_batches')
          .select(sql<number>`coalesce(max(chunk) + 1, 0)`.as('next'))
          .where('campaign_id', '=', key.campaignId)
          .where('stage', '=', key.stage)
          .where('iteration', '=', key.iteration)
          .where('cycle', '=', key.cycle)
          .where('role', '=', role)
          .executeTakeFirstOrThrow();
        const chunk = Number(last.next);
        const { id } = await tx
          .insertInto('llm_batches')
          .values({
            campaign_id: key.campaignId,
            stage: key.stage,
            iteration: key.iteration,
            cycle: key.cycle,
            role,
            chunk,
            meta_key: `${key.campaignId}/${key.stage}/${key.iteration}/${key.cycle}/${role}/${chunk}`,
            requests: waiting.length,
          })
          .returning('id')
          .executeTakeFirstOrThrow();
        await tx
          .updateTable('llm_batch_requests')
          .set({ status: 'submitted', batch_id: id })
          .where('campaign_id', '=', key.campaignId)
          .where('stage', '=', key.stage)
          .where('iteration', '=', key.iteration)
          .where(
            'request_hash',
            'in',
            waiting.map((w) => w.request_hash),
          )
          .execute();
        return waiting.length;
      });
      if (assigned < max) return;
    }
  }

  /** Creates a claimed chunk at the provider unless it is there already (found by its metadata). */
  private async create(id: string, ep: Endpoint): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      // Locked: a second attempt waits here, then finds the id recorded.
      const row = await tx
        .selectFrom('llm_batches')
        .selectAll()
        .where('id', '=', id)
        .forUpdate()
        .executeTakeFirstOrThrow();
      if (row.provider_batch_id !== null) return;
      const client = this.api.client(ep);
      const found = await this.lookup(client, row);
      let batch = found;
      let inputFileId = found?.input_file_id ?? null;
      if (!batch) {
        const requests = await tx
          .selectFrom('llm_batch_requests')
          .select(['request_hash', 'body'])
          .where('batch_id', '=', id)
          .orderBy('request_hash')
          .execute();
        const jsonl = requests
          .map((r) =>
            JSON.stringify({
              custom_id: r.request_hash,
              method: 'POST',
              url: '/v1/chat/completions',
              body: r.body,
            }),
          )
          .join('\n');
        const content = Buffer.from(`${jsonl}\n`);
        const filename = `${row.meta_key.replaceAll('/', '_')}.jsonl`;
        // A crash between the upload and the create left the file there: use it, rather than
        // leave it (prompts and all) at the provider and upload another.
        const file =
          (await this.uploadedInput(client, row, filename, content.byteLength)) ??
          (await client.files.create({ file: await toFile(content, filename), purpose: 'batch' }));
        inputFileId = file.id;
        batch = await client.batches.create({
          input_file_id: file.id,
          endpoint: '/v1/chat/completions',
          completion_window: '24h',
          metadata: { [BATCH_METADATA_KEY]: row.meta_key },
        });
      }
      await tx
        .updateTable('llm_batches')
        .set({ provider_batch_id: batch.id, input_file_id: inputFileId, status: batch.status })
        .where('id', '=', id)
        .execute();
    });
  }

  /** The provider's batch of this chunk, when an earlier attempt created it; newest first. */
  private async lookup(client: OpenAI, row: BatchRow): Promise<Batch | null> {
    // Batches created well before the chunk was claimed cannot be it: stop there.
    const notBefore = new Date(row.created_at).getTime() / 1000 - 600;
    for await (const batch of client.batches.list({ limit: 100 })) {
      if (batch.metadata?.[BATCH_METADATA_KEY] === row.meta_key) return batch;
      if (batch.created_at < notBefore) return null;
    }
    return null;
  }

  /**
   * The chunk's input file, when an earlier attempt uploaded it and created no batch from it:
   * found by its name (the chunk's) and size, newest first, among the files uploaded since
   * shortly before the chunk was claimed.
   */
  private async uploadedInput(
    client: OpenAI,
    row: BatchRow,
    filename: string,
    bytes: number,
  ): Promise<FileObject | null> {
    const notBefore = new Date(row.created_at).getTime() / 1000 - 600;
    for await (const file of client.files.list({ purpose: 'batch', order: 'desc', limit: 100 })) {
      if (file.filename === filename && file.bytes === bytes) return file;
      if (file.created_at < notBefore) return null;
    }
    return null;
  }

  /**
   * The chunk's files at the provider, once its answers are in the call log: the prompts and
   * answers need not wait there for the provider's retention, nor fill the organisation's file
   * storage. Best effort: one already gone is fine, and one left behind is only storage.
   */
  private async deleteFiles(ep: Endpoint, ids: Array<string | null | undefined>): Promise<void> {
    const client = this.api.client(ep);
    for (const id of ids) if (id) await client.files.delete(id).catch(() => undefined);
  }

  /**
   * Logs an ended batch's answers as calls (billed at the batch price) and its failures as failed
   * attempts, and sends each failed or unanswered request to the next batch or online. One
   * transaction: a crash here ingests the whole file again, and nothing twice. False when an
   * overlapping attempt ingested it first (and deleted its files).
   */
  private async ingest(row: BatchRow, batch: Batch, ep: Endpoint): Promise<boolean> {
    const client = this.api.client(ep);
    let lines: OutputLine[];
    try {
      lines = [
        ...(await this.lines(client, batch.output_file_id)),
        ...(await this.lines(client, batch.error_file_id)),
      ];
    } catch (err) {
      if (err instanceof OpenAI.NotFoundError && (await this.ended(row.id))) return false;
      throw err;
    }
    const latencyMs = Math.max(
      0,
      ((batch.completed_at ?? batch.expired_at ?? batch.failed_at ?? batch.cancelled_at ?? batch.created_at) -
        batch.created_at) *
        1000,
    );
    await this.db.transaction().execute(async (tx) => {
      const requests = await tx
        .selectFrom('llm_batch_requests')
        .selectAll()
        .where('batch_id', '=', row.id)
        .where('status', '=', 'submitted')
        .execute();
      const byHash = new Map(requests.map((r) => [r.request_hash, r]));
      const answered = new Set<string>();
      const errors = new Map<string, { message: string; httpStatus: number | null }>();
      for (const line of lines) {
        const r = byHash.get(line.custom_id);
        if (!r || answered.has(r.request_hash)) continue;
        const completion = line.response?.status_code === 200 ? (line.response.body as ChatCompletion) : null;
        if (completion) {
          await this.logAnswer(tx, r, completion, latencyMs, ep);
          answered.add(r.request_hash);
          errors.delete(r.request_hash);
        } else {
          const body = line.response?.body as { error?: { message?: string } } | undefined;
          const message = body?.error?.message ?? line.error?.message ?? line.error?.code ?? 'no answer';
          errors.set(r.request_hash, { message, httpStatus: line.response?.status_code ?? null });
        }
      }
      for (const r of requests) {
        if (answered.has(r.request_hash)) continue;
        const e = errors.get(r.request_hash) ?? { message: `batch ${batch.status}`, httpStatus: null };
        const message = this.api.scrub(`provider batch ${batch.id} (${batch.status}): ${e.message}`);
        await tx
          .insertInto('llm_calls')
          .values({
            ...callKey(r),
            request: JSON.stringify(r.body),
            status: 'error',
            error: message,
            http_status: e.httpStatus,
            billing_mode: 'batch',
            latency_ms: latencyMs,
          })
          .execute();
        const attempts = r.attempts + 1;
        const online = ep.batch.onFailure === 'online' || attempts >= ep.batch.maxAttempts;
        await tx
          .updateTable('llm_batch_requests')
          .set({ status: online ? 'online' : 'pending', batch_id: null, attempts, last_error: message })
          .where('batch_id', '=', row.id)
          .where('request_hash', '=', r.request_hash)
          .execute();
      }
      if (answered.size > 0) {
        await tx
          .updateTable('llm_batch_requests')
          .set({ status: 'answered' })
          .where('batch_id', '=', row.id)
          .where('request_hash', 'in', [...answered])
          .execute();
      }
      await tx
        .updateTable('llm_batches')
        .set({
          status: batch.status,
          answered: answered.size,
          errored: requests.length - answered.size,
          finished_at: new Date(),
        })
        .where('id', '=', row.id)
        .execute();
    });
    return true;
  }

  /** Whether the chunk's row says its batch ended (and was ingested). */
  private async ended(id: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('llm_batches')
      .select('status')
      .where('id', '=', id)
      .executeTakeFirst();
    return row !== undefined && ENDED.has(row.status);
  }

  /** Logs one answer of a batch as a paid call; one already logged (online) makes this a duplicate. */
  private async logAnswer(
    tx: Transaction<Database>,
    r: BatchRequestRow,
    completion: ChatCompletion,
    latencyMs: number,
    ep: Endpoint,
  ): Promise<void> {
    const { promptTokens, completionTokens, cachedTokens, response } = loggedCompletion(completion);
    const paid = {
      ...callKey(r),
      request: JSON.stringify(r.body),
      response: this.api.mask(JSON.stringify(response)),
      http_status: 200,
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      cached_tokens: cachedTokens,
      billing_mode: 'batch' as const,
      latency_ms: latencyMs,
      cost_usd: callCost(ep.pricing, 'batch', { promptTokens, cachedTokens, completionTokens }),
    };
    const inserted = await tx
      .insertInto('llm_calls')
      .values({ ...paid, status: 'ok' })
      .onConflict((oc) =>
        oc
          .columns(['campaign_id', 'stage', 'iteration', 'request_hash'])
          .where('status', '=', 'ok')
          .doNothing(),
      )
      .returning('id')
      .executeTakeFirst();
    if (!inserted)
      await tx
        .insertInto('llm_calls')
        .values({ ...paid, status: 'duplicate' })
        .execute();
  }

  private async lines(client: OpenAI, fileId: string | null | undefined): Promise<OutputLine[]> {
    if (!fileId) return [];
    const text = await (await client.files.content(fileId)).text();
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as OutputLine);
  }

  private rows(key: BatchCycleKey): Promise<BatchRow[]> {
    return this.db
      .selectFrom('llm_batches')
      .selectAll()
      .where('campaign_id', '=', key.campaignId)
      .where('stage', '=', key.stage)
      .where('iteration', '=', key.iteration)
      .where('cycle', '=', key.cycle)
      .orderBy('role')
      .orderBy('chunk')
      .execute();
  }

  /** Where the round stands, from our rows alone (no request to the provider). */
  async roundState(key: BatchCycleKey): Promise<BatchCycleState> {
    const rows = await this.rows(key);
    return {
      batches: rows.length,
      inProgress: rows.filter((r) => !ENDED.has(r.status)).length,
      requests: rows.reduce((n, r) => n + r.requests, 0),
      answered: rows.reduce((n, r) => n + r.answered, 0),
      errored: rows.reduce((n, r) => n + r.errored, 0),
      providerBatchIds: rows.flatMap((r) => (r.provider_batch_id ? [r.provider_batch_id] : [])),
    };
  }
}

type BatchRequestRow = Selectable<Database['llm_batch_requests']>;

/** The call-log columns a batch request shares with its logged answer or failure. */
function callKey(r: BatchRequestRow) {
  return {
    campaign_id: r.campaign_id,
    stage: r.stage,
    iteration: r.iteration,
    request_hash: r.request_hash,
    role: r.role,
    base_url: r.base_url,
    model: r.model,
    purpose: r.purpose,
    prompt_version: r.prompt_version,
  };
}
