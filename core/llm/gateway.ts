/**
 * The one way the platform talks to models. Every call:
 *  - is keyed by a hash of its request within its stage run, and a call that already succeeded
 *    is read back from Postgres instead of being paid for again (retried activities, restarts);
 *  - is claimed before it is sent, so an overlapping attempt waits for its answer (claims.ts); a
 *    paid answer that still arrives twice is logged as a `duplicate`, so cost is what was paid;
 *  - waits for the endpoint's concurrency and rate budget, shared by every worker (limiter.ts);
 *  - retries 429/5xx/timeouts with backoff, fails fast otherwise; a Retry-After holds back every
 *    caller of the endpoint, on every worker, not only the request that got it;
 *  - starts only within the budget (BudgetGuard) and, while its endpoint is down, keeps trying
 *    until `outage.pauseAfter`, then ends in EndpointOutageError (EndpointHealth);
 *  - is logged in `llm_calls` with tokens (the cached ones where the provider reports them),
 *    latency and its cost at the endpoint's prices (pricing.ts) — failed attempts too;
 *  - lets no key out: error texts (which providers fill with the caller's key) and base URLs (which
 *    may carry a password) are scrubbed before they reach `llm_calls`, a thrown error — and so a
 *    Temporal failure and the worker's log — or anything else.
 */
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import OpenAI from 'openai';
import type {
  ChatCompletion,
  ChatCompletionCreateParamsNonStreaming,
} from 'openai/resources/chat/completions';
import { isDataException, retryOnConnectionLoss, type Db } from '../db/connection';
import type { NewLlmCall } from '../db/types';
import type { EndpointSpec, Role } from '../spec';
import type { ModelHealer } from './adapters';
import { BudgetReading, budgetReadingsSql, type BudgetGuard, type BudgetLimits } from './budget-guard';
import { compositeKey } from '../composite-key';
import { DependencyWatch, type OutageLogger } from '../dependency-watch';
import { GroupCommit, PER_CALL_STATEMENT_INTERVAL_MS } from '../db/group-commit';
import { ANSWERED_LEASE, RequestClaims, type LoggedAnswer } from './claims';
import { EndpointOutageError, isOutageFailure, type EndpointHealth } from './endpoint-health';
import { classifyLlmError, type EndpointRef } from './errors';
import { createHttpTransport } from './http-transport';
import { EndpointLimiter, endpointKey, sleep } from './limiter';
import { loggedCompletion } from './completion-log';
import { callCost, type BillingMode } from './pricing';
import { BatchDeferredError, deferRequest, type BatchApi } from './provider-batches';
import { shapeRequest, shapingOf, type RequestBody } from './request-shape';
import { estimateRequestTokens } from './token-estimate';
import { durationMs } from '../duration';
import { maskKnownSecrets, scrubSecrets, secretValues } from '../secrets';
import { storableJson } from '../db/storable-text';
import type { ChatMessage, JsonSchemaFormat } from './types';

export interface LlmCallScope {
  campaignId: string;
  stage: string;
  iteration: number;
  /** Aborts waiting and in-flight requests (activity cancellation). */
  signal?: AbortSignal;
  /**
   * Stops waiting only — for a slot, a claim, a backoff — so that no new call starts while the
   * calls in flight finish and are logged (a pause draining the batch); default: `signal`.
   */
  stop?: AbortSignal;
  /**
   * Calls to an endpoint in `mode: batch` wait for the stage's next provider batch instead of going
   * out (BatchDeferredError), unless batches gave up on them. Set by stage batches only.
   */
  deferToBatch?: boolean;
}

/** What ends a wait for a slot, a claim or a backoff: `stop` where the scope has one. */
function waitingEnds(scope: LlmCallScope): AbortSignal | undefined {
  return scope.stop ?? scope.signal;
}

export interface ChatRequest {
  /** What the call is for, e.g. `guideline`; kept in the log for audit. */
  purpose: string;
  promptVersion: string;
  messages: ChatMessage[];
  jsonSchema?: JsonSchemaFormat;
  temperature?: number;
  n?: number;
  maxTokens?: number;
  /** Server-specific body fields passed through, e.g. vLLM's `use_beam_search`. */
  extraBody?: Record<string, unknown>;
  /** Served model to call instead of the endpoint's (a fine-tuned adapter of the weak model). */
  model?: string;
  /** Distinguishes otherwise identical requests that must not share a result (e.g. a re-ask). */
  salt?: string;
}

export interface ChatResult {
  callId: string;
  content: string;
  choices: string[];
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
  /** True when the result came from the call log, not from the endpoint. */
  reused: boolean;
}

export type Endpoint = EndpointSpec & { role: Role };

/** Raised for failures retrying cannot fix; the activity layer makes them non-retryable. */
export class LlmFatalError extends Error {
  override name = 'LlmFatalError';
  constructor(
    message: string,
    readonly detail: {
      /** The endpoint's HTTP status, when it answered. 400/413/422 blame the one request. */
      httpStatus?: number | null;
      /** Every request to the endpoint would fail the same way (e.g. no beam search on the server). */
      endpointWide?: boolean;
    } = {},
  ) {
    super(message);
  }
}
/** Raised when transient failures outlast the in-activity attempts; Temporal retries the activity. */
export class LlmTransientError extends Error {
  override name = 'LlmTransientError';
  constructor(
    message: string,
    readonly httpStatus: number | null = null,
  ) {
    super(message);
  }
}

/** A paid answer, as `llm_calls` stores it. */
type PaidCall = CallLogKey & {
  request: string;
  response: string;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number | null;
  billing_mode: BillingMode;
  latency_ms: number;
  cost_usd: number;
};

/** A paid answer's row in `llm_calls`, and the budget as the statement that logged it read it. */
interface LoggedOk {
  id: string;
  budget: BudgetReading | null;
}

/** A logged `ok` row as the result of a call. */
function fromLog(row: LoggedAnswer): ChatResult {
  const response = row.response as { choices?: string[] } | null;
  const choices = response?.choices ?? [];
  return {
    callId: row.id,
    content: choices[0] ?? '',
    choices,
    promptTokens: row.prompt_tokens,
    completionTokens: row.completion_tokens,
    costUsd: row.cost_usd,
    reused: true,
  };
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function resolveApiKey(ep: Endpoint, env: NodeJS.ProcessEnv): string {
  if (!ep.apiKeyEnv) return 'none';
  const key = env[ep.apiKeyEnv];
  if (!key) {
    throw new LlmFatalError(
      `environment variable ${ep.apiKeyEnv} (API key of the ${ep.role} endpoint) is not set on this worker`,
    );
  }
  return key;
}

/** The columns that identify a call in `llm_calls`, shared by its failed attempts and its success. */
type CallLogKey = Pick<
  NewLlmCall,
  | 'campaign_id'
  | 'stage'
  | 'iteration'
  | 'role'
  | 'base_url'
  | 'model'
  | 'purpose'
  | 'prompt_version'
  | 'request'
> & { request_hash: string };

function requestBody(ep: Endpoint, req: ChatRequest): RequestBody {
  return shapeRequest(
    {
      ...shapingOf(ep),
      maxTokens: ep.maxTokens,
      extraBody: ep.extraBody,
      reasoningEffort: ep.reasoningEffort,
    },
    { ...req, model: req.model ?? ep.model },
  );
}

/**
 * How long an answer already paid for is retried into the log while the database is away (a
 * restart, a failover): losing it would mean paying for it again.
 */
const PAID_LOG_RETRY_MS = 120_000;
/** How long giving a claim back is retried; one not given back lapses with its lease (15 s). */
const CLAIM_RELEASE_RETRY_MS = 30_000;

/** Exponential backoff with jitter, never shorter than what the server asked for. */
function backoffMs(attempt: number, retryAfterSec: number | null): number {
  const exp = Math.min(20_000, 500 * 2 ** (attempt - 1)) * (0.5 + Math.random());
  return Math.min(60_000, Math.max(exp, (retryAfterSec ?? 0) * 1000));
}

/** What the gateway checks around each call; each is optional (unit tests leave them out). */
export interface GatewayGuards {
  budget?: BudgetGuard;
  health?: EndpointHealth;
  /** Where this process tells a model server it cannot reach, once per outage (the worker's log). */
  outageLog?: OutageLogger;
}

export class LlmGateway {
  private readonly clients = new Map<string, OpenAI>();
  private readonly limitKeys = new Map<string, string>();
  /** Values masked in everything this gateway writes: every key it sends, and secret-named variables. */
  private readonly secrets: Set<string>;
  private readonly claims: RequestClaims;
  private readonly okLog: GroupCommit<PaidCall, LoggedOk | null>;
  /** Model servers this process could not reach, by base URL (only with guards.outageLog). */
  private readonly unreachable = new Map<string, DependencyWatch>();
  /** Every client's `fetch`: keep-alive node:http, cheaper per call than the global fetch. */
  private readonly transport = createHttpTransport();

  constructor(
    private readonly db: Db,
    private readonly env: NodeJS.ProcessEnv = process.env,
    /** Serves a registered adapter again when the endpoint forgot it (404). */
    private readonly healer: ModelHealer | null = null,
    /** Endpoint limits shared with every other worker; one per process (workers/worker.ts). */
    private readonly limiter: EndpointLimiter = new EndpointLimiter(db),
    private readonly guards: GatewayGuards = {},
  ) {
    this.secrets = new Set(secretValues(env));
    this.claims = new RequestClaims(db);
    this.okLog = new GroupCommit(
      (rows) => retryOnConnectionLoss((retried) => this.writeOk(rows, retried), PAID_LOG_RETRY_MS),
      // One answer the database refuses must not keep the others of its statement from the log.
      { minIntervalMs: PER_CALL_STATEMENT_INTERVAL_MS, isolate: isDataException },
    );
  }

  async chat(scope: LlmCallScope, ep: Endpoint, req: ChatRequest): Promise<ChatResult> {
    const body = requestBody(ep, req);
    const requestHash = createHash('sha256')
      .update(canonicalJson({ baseURL: ep.baseURL, body, promptVersion: req.promptVersion, salt: req.salt }))
      .digest('hex');
    // The logged answer if there is one (retried activities, restarts); otherwise a claim, so that
    // an overlapping attempt waits for this one's answer — one batched statement for both.
    const claimed = await this.claims.claimOrWait(
      { campaignId: scope.campaignId, stage: scope.stage, iteration: scope.iteration, requestHash },
      () => this.findOk(scope, requestHash),
      fromLog,
      waitingEnds(scope),
    );
    if ('answer' in claimed) return claimed.answer;
    let answered = false;
    try {
      if (ep.mode === 'batch' && scope.deferToBatch)
        await this.deferToBatch(scope, ep, req, body, requestHash);
      const result = await this.send(scope, ep, req, body, requestHash);
      answered = true;
      return result;
    } finally {
      if (answered) claimed.claim.answered();
      // A claim left behind (the database gone for longer) lapses with its lease.
      else
        await retryOnConnectionLoss(() => claimed.claim.release(), CLAIM_RELEASE_RETRY_MS).catch(
          () => undefined,
        );
    }
  }

  /**
   * Files the request for the stage's next provider batch and throws BatchDeferredError; returns
   * (so the call goes out online) for a request batches gave up on (`batch.onFailure`).
   */
  private async deferToBatch(
    scope: LlmCallScope,
    ep: Endpoint,
    req: ChatRequest,
    body: RequestBody,
    requestHash: string,
  ): Promise<void> {
    const { request, ...key } = this.callLogKey(scope, ep, req, body, requestHash);
    const status = await deferRequest(this.db, { ...key, body: request });
    // 'answered' without an answer in the log (it was found missing just now): send it online.
    if (status === 'pending' || status === 'submitted') throw new BatchDeferredError(ep.role, requestHash);
  }

  /** How a call is named in the log (and, waiting for a batch, in `llm_batch_requests`). */
  private callLogKey(
    scope: LlmCallScope,
    ep: Endpoint,
    req: ChatRequest,
    body: RequestBody,
    requestHash: string,
  ): CallLogKey & { request: string } {
    return {
      campaign_id: scope.campaignId,
      stage: scope.stage,
      iteration: scope.iteration,
      request_hash: requestHash,
      role: ep.role,
      // A base URL may carry userinfo (https://user:pass@host); the hash keeps it whole.
      base_url: scrubSecrets(ep.baseURL, this.secrets),
      model: body.model,
      purpose: req.purpose,
      prompt_version: req.promptVersion,
      // The key travels in a header, never in the body; a known value is masked all the same
      // (shapes are not: prompts may legitimately mention "Bearer …").
      request: maskKnownSecrets(JSON.stringify(body), this.secrets),
    };
  }

  /** What provider batches need of this gateway: its clients and its scrubbing (provider-batches.ts). */
  batchApi(): BatchApi {
    return {
      client: (ep) => this.clientFor(ep),
      scrub: (text) => scrubSecrets(text, this.secrets),
      mask: (text) => maskKnownSecrets(text, this.secrets),
      checkBudget: async (scope) => this.guards.budget?.check(scope),
    };
  }

  /** Sends a request this attempt holds the claim on, with retries, and logs every attempt. */
  private async send(
    scope: LlmCallScope,
    ep: Endpoint,
    req: ChatRequest,
    body: RequestBody,
    requestHash: string,
  ): Promise<ChatResult> {
    const client = this.clientFor(ep);
    const ref: EndpointRef = {
      role: ep.role,
      baseURL: ep.baseURL,
      model: body.model,
      apiKeyEnv: ep.apiKeyEnv,
    };
    // The endpoint's model, not an adapter's: adapters share the server that the limits protect.
    const limitKey = this.limitKeyOf(ep);
    const estimatedTokens = estimateRequestTokens(body);
    const logKey = this.callLogKey(scope, ep, req, body, requestHash);

    const healthKey = {
      campaignId: scope.campaignId,
      stage: scope.stage,
      iteration: scope.iteration,
      role: ep.role,
      baseURL: logKey.base_url,
      model: body.model,
    };
    /** The outage (its start) this call first met: while it lasts, attempts do not run out. */
    let outageSince: number | null = null;
    let healed = false;
    for (let attempt = 1; ; attempt++) {
      // The slot is held until the answer is logged (released early only to back off), so a
      // worker that dies loses at most `concurrency` paid-for answers per endpoint.
      const lease = await this.limiter.acquire(limitKey, ep, estimatedTokens, waitingEnds(scope));
      // Checked with the slot held, not before waiting for it: every call that passed the check
      // is then in flight, which is what bounds the overshoot. A slot passed on from this
      // process's last call of the endpoint comes with the budget as that call's log read it.
      try {
        await this.guards.budget?.check(scope, lease.note instanceof BudgetReading ? lease.note : null);
      } catch (err) {
        await lease.release();
        throw err;
      }
      const started = Date.now();
      let completion: ChatCompletion;
      try {
        completion = await client.chat.completions.create(body as ChatCompletionCreateParamsNonStreaming, {
          signal: scope.signal,
        });
      } catch (err) {
        const failure = classifyLlmError(err, ref, this.secrets);
        // Blocked before the slot is given back, so no waiter slips in between.
        if (failure.retryable && failure.retryAfterSec !== null) {
          await this.limiter.block(limitKey, failure.retryAfterSec * 1000).catch(() => undefined);
        }
        await lease.release();
        if (failure.aborted) throw err;
        // Refused or reset, not merely slow: a timeout is the request's, and is in the call log.
        if (err instanceof OpenAI.APIConnectionError && !(err instanceof OpenAI.APIConnectionTimeoutError))
          this.serverWatch(logKey.base_url).lost(failure.message);
        await this.db
          .insertInto('llm_calls')
          .values({
            ...logKey,
            status: 'error',
            error: failure.message,
            http_status: failure.httpStatus,
            latency_ms: Date.now() - started,
          })
          .execute();
        // A restarted vLLM forgets runtime-loaded adapters: load it again once, then retry.
        if (failure.httpStatus === 404 && !healed && this.healer) {
          healed = await this.healer.reload(scope.campaignId, ep, body.model);
          if (healed) continue;
        }
        if (!failure.retryable) throw new LlmFatalError(failure.message, { httpStatus: failure.httpStatus });
        const outage =
          this.guards.health && isOutageFailure(err)
            ? await this.guards.health.failed(healthKey, failure.message)
            : null;
        if (outage && outage.downForMs >= outage.pauseAfterMs) {
          throw new EndpointOutageError(
            `${ep.role} endpoint ${logKey.base_url} (model "${body.model}") has not answered for ` +
              `${Math.round(outage.downForMs / 1000)}s (${outage.attempts} failed attempts, outage.pauseAfter ` +
              `${Math.round(outage.pauseAfterMs / 1000)}s); last error: ${failure.message}`,
            { role: ep.role, everyMs: outage.probeEveryMs },
          );
        }
        outageSince ??= outage?.failingSinceMs ?? null;
        // Nobody has had an answer from the endpoint since this call began failing: it is down,
        // and this request is not to blame — keep trying until `outage.pauseAfter`.
        const endpointDown = outage !== null && outage.failingSinceMs === outageSince;
        if (attempt >= ep.maxAttempts && !endpointDown) {
          throw new LlmTransientError(
            `${failure.message} (gave up after ${attempt} attempts; the activity will retry)`,
            failure.httpStatus,
          );
        }
        const untilPause = outage ? Math.max(100, outage.pauseAfterMs - outage.downForMs) : Infinity;
        const waitMs = Math.min(untilPause, backoffMs(attempt, failure.retryAfterSec));
        await sleep(Math.max(waitMs, (failure.retryAfterSec ?? 0) * 1000), waitingEnds(scope));
        continue;
      }
      let budget: BudgetReading | null = null;
      try {
        const logged = await this.logSuccess(scope, ep, logKey, completion, Date.now() - started);
        budget = logged.budget;
        // After the log, and best effort: the answer is paid for and logged whatever happens here.
        await this.guards.health?.succeeded(healthKey).catch(() => undefined);
        this.unreachable.get(logKey.base_url)?.ok();
        return logged.result;
      } finally {
        await lease.release(budget);
      }
    }
  }

  /**
   * Logs a successful call; when a concurrent attempt logged the same request first, logs this
   * paid answer as a `duplicate` and returns the kept one. With it, the budget as the log read it.
   */
  private async logSuccess(
    scope: LlmCallScope,
    ep: Endpoint,
    logKey: CallLogKey,
    completion: ChatCompletion,
    latencyMs: number,
  ): Promise<{ result: ChatResult; budget: BudgetReading | null }> {
    const { choices, promptTokens, completionTokens, cachedTokens, response } = loggedCompletion(completion);
    // Every call here is a chat completion, billed online; a batch's results are billed 'batch'.
    const billingMode: BillingMode = 'online';
    const costUsd = callCost(ep.pricing, billingMode, { promptTokens, cachedTokens, completionTokens });
    const paid = {
      ...logKey,
      response: maskKnownSecrets(JSON.stringify(response), this.secrets),
      http_status: 200,
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      cached_tokens: cachedTokens,
      billing_mode: billingMode,
      latency_ms: latencyMs,
      cost_usd: costUsd,
    };
    let inserted: LoggedOk | null;
    try {
      inserted = await this.okLog.submit(paid);
    } catch (err) {
      if (isDataException(err)) await this.logRefusedAnswer(paid, err);
      throw err;
    }
    if (inserted) {
      const result = {
        callId: inserted.id,
        content: choices[0] ?? '',
        choices,
        promptTokens,
        completionTokens,
        costUsd,
        reused: false,
      };
      return { result, budget: inserted.budget };
    }
    // An overlapping attempt logged this request first, yet this answer was paid for too: keep it
    // as a duplicate so status and budget sum what was spent; records point at the kept call.
    await this.db
      .insertInto('llm_calls')
      .values({ ...paid, status: 'duplicate' })
      .execute();
    const existing = await this.findOk(scope, logKey.request_hash);
    if (!existing) throw new Error(`llm call ${logKey.request_hash} vanished after a conflicting insert`);
    return { result: existing, budget: null };
  }

  /**
   * A paid call the database refuses to log as it came (a value its columns cannot hold, e.g. a
   * lone surrogate in the request's JSON): logged as an error that says why, with U+FFFD for what
   * was refused, so that the audit shows it and its cost counts against the budget. It is not
   * reused: the question fails with the database's reason.
   */
  private async logRefusedAnswer(paid: PaidCall, refusal: Error): Promise<void> {
    try {
      await this.db
        .insertInto('llm_calls')
        .values({
          ...paid,
          request: storableJson(paid.request),
          response: storableJson(paid.response),
          status: 'error',
          error: scrubSecrets(
            `paid for, but the database refused to log it: ${refusal.message}`,
            this.secrets,
          ),
          http_status: 200,
        })
        .execute();
    } catch {
      // Best effort: the question's failure carries the reason either way.
    }
  }

  private async findOk(scope: LlmCallScope, requestHash: string): Promise<ChatResult | null> {
    const row = await this.db
      .selectFrom('llm_calls')
      .select(['id', 'response', 'prompt_tokens', 'completion_tokens', 'cost_usd'])
      .where('campaign_id', '=', scope.campaignId)
      .where('stage', '=', scope.stage)
      .where('iteration', '=', scope.iteration)
      .where('request_hash', '=', requestHash)
      .where('status', '=', 'ok')
      .executeTakeFirst();
    return row ? fromLog(row) : null;
  }

  /**
   * Logs paid answers as `ok`, many per statement, and marks their claims answered in the same
   * statement (claims.ts); per row, its id — or null where an `ok` row of that request existed —
   * and the budget of its campaign and stage, this statement's answers included (budget-guard.ts).
   * `retried`: an earlier try may have committed before its connection was cut, so rows already
   * logged with this very answer (same completion id and latency) count as this write's, without
   * a budget reading.
   */
  private async writeOk(rows: PaidCall[], retried = false): Promise<Array<LoggedOk | null>> {
    const col = <V>(f: (r: PaidCall) => V) => rows.map(f);
    const { rows: out } = await sql<
      {
        id: string;
        campaign_id: string;
        stage: string;
        iteration: number;
        request_hash: string;
      } & { [K in Exclude<keyof BudgetLimits, 'campaign_id' | 'stage'>]: BudgetLimits[K] | null }
    >`
      with r as (
        select * from unnest(
          ${col((r) => r.campaign_id)}::text[], ${col((r) => r.stage)}::text[], ${col((r) => r.iteration)}::int[],
          ${col((r) => r.request_hash)}::text[], ${col((r) => r.role)}::text[], ${col((r) => r.base_url)}::text[],
          ${col((r) => r.model)}::text[], ${col((r) => r.purpose)}::text[], ${col((r) => r.prompt_version)}::text[],
          ${col((r) => r.request)}::text[], ${col((r) => r.response)}::text[], ${col((r) => r.prompt_tokens)}::int[],
          ${col((r) => r.completion_tokens)}::int[], ${col((r) => r.cached_tokens)}::int[],
          ${col((r) => r.billing_mode)}::text[], ${col((r) => r.latency_ms)}::int[],
          ${col((r) => r.cost_usd)}::float8[])
          as r(campaign_id, stage, iteration, request_hash, role, base_url, model, purpose, prompt_version,
               request, response, prompt_tokens, completion_tokens, cached_tokens, billing_mode, latency_ms,
               cost_usd)
      ), ins as (
        insert into llm_calls (campaign_id, stage, iteration, request_hash, role, base_url, model, purpose,
          prompt_version, request, response, status, http_status, prompt_tokens, completion_tokens,
          cached_tokens, billing_mode, latency_ms, cost_usd)
        select campaign_id, stage, iteration, request_hash, role, base_url, model, purpose, prompt_version,
          request::jsonb, response::jsonb, 'ok', 200, prompt_tokens, completion_tokens, cached_tokens,
          billing_mode, latency_ms, cost_usd
        from r
        on conflict (campaign_id, stage, iteration, request_hash) where status = 'ok' do nothing
        returning id, campaign_id, stage, iteration, request_hash, cost_usd
      ), answered as (
        update llm_call_claims c set lease_until = ${ANSWERED_LEASE}
        from r where c.campaign_id = r.campaign_id and c.stage = r.stage and c.iteration = r.iteration
          and c.request_hash = r.request_hash
      ), logged as (
        select campaign_id, stage, sum(cost_usd)::float8 as stage_cost from ins group by campaign_id, stage
      ), budget as (${budgetReadingsSql(
        sql`(select campaign_id, stage, stage_cost,
                    sum(stage_cost) over (partition by campaign_id) as campaign_cost from logged) k`,
      )})
      select ins.id, ins.campaign_id, ins.stage, ins.iteration, ins.request_hash, b.spec_max, b.spec_stage_max,
        b.budget_override, b.spent, b.stage_spent
      from ins left join budget b on b.campaign_id = ins.campaign_id and b.stage = ins.stage
      ${
        retried
          ? sql`union all
      select l.id, l.campaign_id, l.stage, l.iteration, l.request_hash, null, null, null, null, null
      from r join llm_calls l on l.campaign_id = r.campaign_id and l.stage = r.stage
        and l.iteration = r.iteration and l.request_hash = r.request_hash and l.status = 'ok'
        and l.response->>'id' = (r.response::jsonb)->>'id' and l.latency_ms = r.latency_ms`
          : sql``
      }`.execute(this.db);
    const key = (r: Pick<PaidCall, 'campaign_id' | 'stage' | 'iteration' | 'request_hash'>) =>
      compositeKey(r.campaign_id, r.stage, r.iteration, r.request_hash);
    const readings = new Map<string, BudgetReading>();
    const logged = new Map<string, LoggedOk>();
    for (const o of out) {
      const scope = compositeKey(o.campaign_id, o.stage);
      const { spent, stage_spent } = o;
      // Null: a row an earlier try logged (the `retried` rows), which read no budget.
      if (!readings.has(scope) && spent !== null && stage_spent !== null)
        readings.set(scope, BudgetReading.of({ ...o, spent, stage_spent }));
      logged.set(key(o), { id: o.id, budget: readings.get(scope) ?? null });
    }
    return rows.map((r) => {
      const k = key(r);
      const row = logged.get(k) ?? null;
      // A request logged twice in one batch: the first row is the kept one, the next a duplicate.
      logged.delete(k);
      return row;
    });
  }

  /** endpointKey parses the URL; an endpoint's key is asked for on every call. */
  private limitKeyOf(ep: Endpoint): string {
    const memo = compositeKey(ep.baseURL, ep.model);
    let key = this.limitKeys.get(memo);
    if (key === undefined) {
      key = endpointKey(ep.baseURL, ep.model);
      this.limitKeys.set(memo, key);
    }
    return key;
  }

  /** The outage watch of a model server, told by failed and answered calls (no probe: calls cost). */
  private serverWatch(baseURL: string): Pick<DependencyWatch, 'lost'> {
    const log = this.guards.outageLog;
    if (!log) return { lost: () => undefined };
    let watch = this.unreachable.get(baseURL);
    if (!watch) {
      watch = new DependencyWatch({
        name: `the model server at ${baseURL}`,
        waiting:
          'its calls retry with backoff, and a campaign pauses once it has been down for outage.pauseAfter',
        log,
      });
      this.unreachable.set(baseURL, watch);
    }
    return watch;
  }

  private clientFor(ep: Endpoint): OpenAI {
    const key = `${ep.baseURL}|${ep.apiKeyEnv ?? ''}|${ep.timeout}`;
    let client = this.clients.get(key);
    if (!client) {
      const apiKey = resolveApiKey(ep, this.env);
      if (ep.apiKeyEnv) this.secrets.add(apiKey);
      client = new OpenAI({
        baseURL: ep.baseURL,
        apiKey,
        timeout: durationMs(ep.timeout),
        maxRetries: 0, // retries are ours, so each attempt is logged and backoff honours our policy
        fetch: this.transport.fetch,
      });
      this.clients.set(key, client);
    }
    return client;
  }
}
