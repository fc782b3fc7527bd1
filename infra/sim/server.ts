/**
 * The simulated OpenAI-compatible model server (a simulation, not real models): chat
 * completions for sim-weak-8b, sim-strong, sim-judge and runtime-loaded LoRA adapters, vLLM's
 * beam-search fields and LoRA API, fault injection and latency, the Files and Batch APIs
 * (batches.ts), the request parameters real providers refuse, per model (quirks.ts), and /sim/*
 * control endpoints.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AdapterError } from './adapters';
import type { BehaviourConfig, BehaviourUpdate, JudgeBias } from './behaviour';
import { Behaviour } from './behaviour';
import { routeBatchApi } from './batch-routes';
import type { BatchConfig, BatchConfigUpdate, BatchStats } from './batches';
import { BatchStore } from './batches';
import type { CompletionDeps } from './completions';
import { PromptCache } from './prompt-cache';
import { handleChatCompletion } from './completions';
import { ALL_FAULT_KINDS, FaultInjector } from './faults';
import { HttpError, asHttpError, badRequest, readJson, sendError, sendJson, sendText } from './http';
import { KnowledgeBase } from './knowledge';
import { graderFor } from './learning';
import type { SimModel } from './models';
import { ModelRegistry } from './models';
import type { FaultKind } from './protocol';
import { BehaviourBody, FaultsBody, LoadLoraBody, QuirksBody, UnloadLoraBody } from './protocol';
import type { ModelQuirks, QuirksByModel } from './quirks';
import { Quirks } from './quirks';
import { paidTwice } from './request-hashes';
import type { SimStats as RequestStats } from './stats';
import { StatsRecorder } from './stats';

export type { SimRequestRecord } from './stats';
export type { BatchConfig, BatchConfigUpdate, BatchStats, BatchSummary } from './batches';
export { DEFAULT_BATCH_CONFIG, metadataKey } from './batches';

/** /sim/stats: the chat requests (stats.ts), batch ones included, and the batches. */
export type SimStats = RequestStats & { batches: BatchStats };
export type { RequestCount } from './request-hashes';
export { requestHash } from './request-hashes';
export type { BehaviourConfig, BehaviourUpdate, JudgeBias } from './behaviour';
export type { ModelQuirks, QuirksByModel } from './quirks';
export { QUIRK_NAMES } from './quirks';

export interface SimOptions {
  /** 0 = random (default); the host is always 127.0.0.1. */
  port?: number;
  /** Mean per-request latency of chat completions, ±10% jitter. Default 0. */
  latencyMs?: number;
  /** Share (0..1) of chat requests answered with an injected fault. Default 0. */
  failRate?: number;
  /** Fault kinds injected, in rotation. Default all three. */
  faultKinds?: FaultKind[];
  /** How long a 'timeout' fault holds the request before closing it unanswered. Default 30000. */
  hangMs?: number;
  /** Retry-After header of injected 429s: seconds or an HTTP date. Default '1'. */
  retryAfter?: string;
  /** When set, /v1/* requests need `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /**
   * Answer a wrong key with the key itself in the 401 text, as OpenAI does ("Incorrect API key
   * provided: sk-…"): tests check that it never reaches a log, a row or a workflow history.
   */
  echoKeyIn401?: boolean;
  /** JSONL files of {question, reference, title?}: what the simulated strong model "knows". */
  knowledgeFiles?: string[];
  /** Answer 400 to any request with use_beam_search (a server without beam search). */
  rejectBeamSearch?: boolean;
  /**
   * Request parameters refused, by served model name, as real providers refuse them (quirks.ts):
   * e.g. `{ 'sim-strong': { refuseTemperature: true, requireMaxCompletionTokens: true } }` plays
   * an OpenAI reasoning model. Changed at run time by setQuirks / POST /sim/quirks; reset()
   * goes back to these.
   */
  quirks?: QuirksByModel;
  /**
   * A position-biased judge: every `pairwise_judgment` prefers answer A ('first') or B ('second')
   * overall and on every dimension, whatever the answers. Default null (unbiased).
   */
  judgeBias?: JudgeBias;
  /**
   * Share (0..1), by json_schema name, of structured replies that are malformed: alternately not
   * JSON (cut mid-document) and JSON without the schema's required fields. Drawn per reply from
   * the seed and the request, so a re-ask may succeed; counted in `stats().malformed`.
   * E.g. `{ assessment_verdict: 0.5, pairwise_judgment: 0.5 }`.
   */
  malformedRate?: Partial<Record<string, number>>;
  /**
   * Requests whose messages contain one of these substrings (e.g. a question's text) are answered
   * 400 `context_length_exceeded`, as a server does for a prompt too long for the model. Changed
   * at run time by setBehaviour / POST /sim/behaviour.
   */
  rejectQuestions?: string[];
  /** Seed of fault, jitter and malformed-reply randomness. Default 1. */
  seed?: number;
  /**
   * The Batch API (batches.ts): time in validating / in_progress / finalizing, share of requests
   * failing 500 inside a batch, expiry. Defaults are fast (DEFAULT_BATCH_CONFIG).
   */
  batches?: Partial<BatchConfig>;
}

export interface SimServer {
  /** Base URL for OpenAI clients, e.g. http://127.0.0.1:PORT/v1 */
  url: string;
  port: number;
  stats(): SimStats;
  /**
   * Requests answered 200 more than once, by content hash (request-hashes.ts): what the server was
   * paid twice for. `among` limits it to some hashes, e.g. one campaign's (requestHash of its bodies).
   */
  paidTwice(among?: ReadonlySet<string>): Array<{ hash: string; served: number }>;
  /** `failNext`: the next N chat requests get a fault (kinds in rotation), whatever failRate says. */
  setFaults(f: {
    failRate?: number;
    faultKinds?: FaultKind[];
    hangMs?: number;
    retryAfter?: string;
    failNext?: number;
  }): void;
  setLatency(ms: number): void;
  /** Changes the Batch API settings (delays apply to running batches too); returns the result. */
  setBatchConfig(c: BatchConfigUpdate): BatchConfig;
  /** Expires a validating or in-progress batch now, as if its window had passed; false otherwise. */
  expireBatch(id: string): boolean;
  /** Batches created since the reset whose metadata has every key/value of `match` (all without). */
  batchesCreated(match?: Readonly<Record<string, string>>): number;
  /** Changes judgeBias (null clears it) and merges malformedRate by schema name; returns the result. */
  setBehaviour(b: BehaviourUpdate): BehaviourConfig;
  /**
   * Replaces what `model` (a served model name) refuses; null clears it. Returns the quirks now in
   * effect, by model. reset() goes back to SimOptions.quirks.
   */
  setQuirks(model: string, quirks: ModelQuirks | null): QuirksByModel;
  /**
   * Clears the stats (batch counts too) and restarts the fault, jitter, malformed-reply and batch
   * failure random sequences (settings, files and batches are kept); quirks go back to those
   * given at start.
   */
  reset(): void;
  /** Changes the key /v1/* requests need (undefined: none), e.g. to revoke a key mid-campaign. */
  setApiKey(key: string | undefined): void;
  /** The distinct bearer tokens presented to /v1/* so far, in order (what a leak would leak). */
  presentedKeys(): string[];
  /** Stops the server; requests held by latency or a 'timeout' fault are dropped at once. */
  close(): Promise<void>;
}

const FINGERPRINT = 'meteor-simulator';

interface Held {
  timer: NodeJS.Timeout;
  resolve: () => void;
}

export async function startSimServer(opts: SimOptions = {}): Promise<SimServer> {
  const kb = KnowledgeBase.fromFiles(opts.knowledgeFiles ?? []);
  // Adapters learn only what the simulation's own grading says is right (learning.ts).
  const registry = new ModelRegistry(undefined, graderFor(kb));
  const stats = new StatsRecorder();
  const faults = new FaultInjector(opts.seed ?? 1, {
    failRate: opts.failRate ?? 0,
    faultKinds: opts.faultKinds && opts.faultKinds.length > 0 ? [...opts.faultKinds] : [...ALL_FAULT_KINDS],
    hangMs: opts.hangMs ?? 30000,
    retryAfter: opts.retryAfter ?? '1',
  });
  const behaviour = new Behaviour(opts.seed ?? 1, {
    judgeBias: opts.judgeBias ?? null,
    malformedRate: opts.malformedRate ?? {},
    rejectQuestions: opts.rejectQuestions ?? [],
  });
  const quirks = new Quirks(opts.quirks);
  let latencyMs = opts.latencyMs ?? 0;
  let closing = false;
  const held = new Set<Held>();

  /** Waits `ms`, unless the server closes first (then resolves false). */
  const hold = (ms: number): Promise<boolean> =>
    new Promise((resolve) => {
      if (closing) return resolve(false);
      const h: Held = {
        timer: setTimeout(() => {
          held.delete(h);
          resolve(!closing);
        }, ms),
        resolve: () => resolve(false),
      };
      held.add(h);
    });

  const modelCard = (m: SimModel) => ({
    id: m.id,
    object: 'model',
    created: m.created,
    owned_by: FINGERPRINT,
    ...(m.adapter
      ? { root: m.adapter.path, parent: m.adapter.file.baseModel }
      : { root: m.id, parent: null }),
  });

  let apiKey = opts.apiKey;
  const presented = new Set<string>();

  function checkAuth(req: IncomingMessage): void {
    const auth = req.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice('Bearer '.length) : auth;
    if (token) presented.add(token);
    if (!apiKey) return;
    if (auth !== `Bearer ${apiKey}`) {
      const message = opts.echoKeyIn401
        ? `Incorrect API key provided: ${token}. You can find your API key at https://platform.openai.com/account/api-keys.`
        : 'Incorrect API key provided.';
      throw new HttpError(401, message, 'invalid_request_error', 'invalid_api_key');
    }
  }

  const deps: CompletionDeps = {
    registry,
    kb,
    stats,
    faults,
    behaviour,
    rejectBeamSearch: opts.rejectBeamSearch ?? false,
    quirks,
    promptCache: new PromptCache(),
    latencyMs: () => latencyMs,
    hold,
  };
  const batches = new BatchStore(deps, opts.seed ?? 1, opts.batches);
  const allStats = (): SimStats => ({ ...stats.snapshot(), batches: batches.stats() });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const method = req.method ?? 'GET';
    if (path.startsWith('/v1/')) checkAuth(req);
    if (method === 'GET' && path === '/health') return sendText(res, 200, '');
    if (method === 'GET' && path === '/v1/models')
      return sendJson(res, 200, { object: 'list', data: registry.list().map(modelCard) });
    if (method === 'GET' && path.startsWith('/v1/models/')) {
      const m = registry.get(decodeURIComponent(path.slice('/v1/models/'.length)));
      if (!m)
        throw new HttpError(
          404,
          `The model \`${path.slice('/v1/models/'.length)}\` does not exist.`,
          'invalid_request_error',
          'model_not_found',
        );
      return sendJson(res, 200, modelCard(m));
    }
    if (method === 'POST' && path === '/v1/chat/completions') return handleChatCompletion(deps, req, res);
    if (method === 'POST' && path === '/v1/load_lora_adapter') {
      const body = LoadLoraBody.safeParse(await readJson(req));
      if (!body.success) throw badRequest("Both 'lora_name' and 'lora_path' must be provided.");
      try {
        registry.load(body.data.lora_name, body.data.lora_path, body.data.load_inplace ?? false);
      } catch (err) {
        if (err instanceof AdapterError) throw badRequest(err.message, 'invalid_lora_adapter');
        throw err;
      }
      return sendText(res, 200, `Success: LoRA adapter '${body.data.lora_name}' added successfully.`);
    }
    if (method === 'POST' && path === '/v1/unload_lora_adapter') {
      const body = UnloadLoraBody.safeParse(await readJson(req));
      if (!body.success) throw badRequest("'lora_name' must be provided.");
      if (!registry.unload(body.data.lora_name)) {
        throw new HttpError(
          404,
          `The lora adapter '${body.data.lora_name}' cannot be found.`,
          'invalid_request_error',
          'lora_adapter_not_found',
        );
      }
      return sendText(res, 200, `Success: LoRA adapter '${body.data.lora_name}' removed successfully.`);
    }
    if (method === 'GET' && path === '/sim/stats') return sendJson(res, 200, allStats());
    if (method === 'POST' && path === '/sim/faults') {
      const body = FaultsBody.safeParse(await readJson(req));
      if (!body.success) throw badRequest(`Invalid faults: ${body.error.issues[0]?.message ?? 'malformed'}`);
      const { latencyMs: latency, failNext, ...f } = body.data;
      faults.update(f);
      if (failNext !== undefined) faults.failNext(failNext);
      if (latency !== undefined) latencyMs = latency;
      return sendJson(res, 200, { ...faults.config, latencyMs });
    }
    if (method === 'POST' && path === '/sim/behaviour') {
      const body = BehaviourBody.safeParse(await readJson(req));
      if (!body.success)
        throw badRequest(`Invalid behaviour: ${body.error.issues[0]?.message ?? 'malformed'}`);
      behaviour.update(body.data);
      return sendJson(res, 200, behaviour.config);
    }
    if (method === 'GET' && path === '/sim/quirks') return sendJson(res, 200, quirks.snapshot());
    if (method === 'POST' && path === '/sim/quirks') {
      const body = QuirksBody.safeParse(await readJson(req));
      if (!body.success) throw badRequest(`Invalid quirks: ${body.error.issues[0]?.message ?? 'malformed'}`);
      quirks.set(body.data.model, body.data.quirks);
      return sendJson(res, 200, quirks.snapshot());
    }
    if (method === 'POST' && path === '/sim/reset') {
      reset();
      return sendJson(res, 200, { ok: true });
    }
    if (await routeBatchApi(batches, req, res, method, path)) return;
    throw new HttpError(404, `Unknown endpoint: ${method} ${path}`, 'invalid_request_error', 'unknown_url');
  }

  function reset(): void {
    stats.clear();
    faults.restart();
    behaviour.restart();
    quirks.reset();
    batches.resetStats();
  }

  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => sendError(res, asHttpError(err)));
  });
  // Clients (the openai SDK, undici) keep connections alive; a plain close() would wait on them.
  server.keepAliveTimeout = 5000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    port,
    stats: allStats,
    paidTwice: (among) => paidTwice(stats.snapshot().requestCounts, among),
    setFaults: ({ failNext, ...f }) => {
      faults.update(f);
      if (failNext !== undefined) faults.failNext(failNext);
    },
    setLatency: (ms) => {
      latencyMs = Math.max(0, ms);
    },
    setBatchConfig: (c) => batches.setConfig(c),
    expireBatch: (id) => batches.expireNow(id),
    batchesCreated: (match) => batches.createdMatching(match),
    setBehaviour: (b) => {
      behaviour.update(b);
      return behaviour.config;
    },
    setQuirks: (model, q) => {
      quirks.set(model, q);
      return quirks.snapshot();
    },
    reset,
    setApiKey: (key) => {
      apiKey = key;
    },
    presentedKeys: () => [...presented],
    close: () =>
      new Promise<void>((resolve) => {
        closing = true;
        batches.close();
        for (const h of held) {
          clearTimeout(h.timer);
          h.resolve();
        }
        held.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
