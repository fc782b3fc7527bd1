/**
 * OpenAI's Batch API, simulated (a simulation, not real models): batches of chat-completion
 * requests from an uploaded JSONL file, moving through `validating` → `in_progress` →
 * `finalizing` → `completed` (or `failed`, `expired`, `cancelling` → `cancelled`), answered
 * by the online chat-completion handler itself (batch-call.ts) so a request gets the same
 * content in a batch as online and is billed (counted) the same way. Everything lives in the
 * instance a server creates; ids count up per server and failures are drawn from the seed, the
 * batch's creation order and the line, so a run is reproducible.
 */
import type { Batch, BatchError, BatchRequestCounts } from 'openai/resources/batches';
import { answerInProcess } from './batch-call';
import type { CallResult } from './batch-call';
import type { FilePurpose, FileWire, Page } from './batch-files';
import { FileStore, pageOf } from './batch-files';
import type { BatchInput } from './batch-input';
import { readBatchInput } from './batch-input';
import type { CompletionDeps } from './completions';
import { FaultInjector } from './faults';
import { HttpError, badRequest } from './http';
import { hash32 } from './text';

export type BatchStatus = Batch['status'];

/** The endpoint the simulator runs batches for (OpenAI has more; the sim only serves this one). */
export const BATCH_ENDPOINT = '/v1/chat/completions';

export interface BatchConfig {
  /** Time a batch stays in `validating` before it fails validation or starts. */
  validatingMs: number;
  /** Time `in_progress` lasts: request i of n is answered at (i + 1)/n of it, in file order. */
  inProgressMs: number;
  /** Time in `finalizing`, and in `cancelling`, before the output and error files are ready. */
  finalizingMs: number;
  /** Share (0..1) of a batch's requests answered 500 (a simulated fault) inside the batch. */
  failRate: number;
  /**
   * A batch not done this long after its creation expires: the requests answered go to the
   * output file, the others to the error file (`batch_expired`). Fixed for a batch when it is
   * created (`expires_at`). Default 24 h, OpenAI's completion window.
   */
  expireAfterMs: number;
}

export interface BatchConfigUpdate extends Partial<BatchConfig> {
  /** The next N requests answered inside batches get a 500, whatever failRate says. */
  failNext?: number;
}

/** Fast, so tests that poll a batch do not wait; a campaign test slows it with setBatchConfig. */
export const DEFAULT_BATCH_CONFIG: BatchConfig = {
  validatingMs: 20,
  inProgressMs: 100,
  finalizingMs: 20,
  failRate: 0,
  expireAfterMs: 24 * 60 * 60 * 1000,
};

/** The wire shape: every field of openai's `Batch` present, null when unset, as OpenAI answers. */
export type BatchWire = {
  [K in keyof Batch]-?: undefined extends Batch[K] ? Exclude<Batch[K], undefined> | null : Batch[K];
};

export interface BatchSummary {
  id: string;
  status: BatchStatus;
  metadata: Record<string, string> | null;
  request_counts: BatchRequestCounts;
  created_at: number;
}

export interface BatchStats {
  /** Batches created (POST /v1/batches answered 200) since the start or the last reset. */
  created: number;
  /** The same by metadata: canonical JSON of it (keys sorted, `{}` for none) → count. */
  createdByMetadata: Record<string, number>;
  /** Those batches by their status now. */
  byStatus: Partial<Record<BatchStatus, number>>;
  /**
   * Requests inside batches since the reset: answered 200 (`completed`), answered with an
   * error (`failed`), never answered because their batch expired or was cancelled.
   */
  requests: { completed: number; failed: number; expired: number; cancelled: number };
  /** Tokens of the requests answered 200 inside batches since the reset (what batches billed). */
  usage: { promptTokens: number; cachedTokens: number; completionTokens: number };
  /** Files uploaded with POST /v1/files. */
  filesUploaded: number;
  /** The batches created, oldest first. */
  batches: BatchSummary[];
}

export interface CreateBatchParams {
  input_file_id: string;
  endpoint: string;
  completion_window: string;
  metadata?: Record<string, string> | null | undefined;
}

type Stamp =
  | 'in_progress_at'
  | 'finalizing_at'
  | 'completed_at'
  | 'failed_at'
  | 'expired_at'
  | 'cancelling_at'
  | 'cancelled_at';

type Interruption = 'cancel' | 'expire' | 'closed';

interface BatchRecord {
  /** Creation order since the server started: the id. */
  seq: number;
  /** Creation order since the last reset: what failure draws use, so a reset replays them. */
  draw: number;
  id: string;
  createdMs: number;
  expiresMs: number;
  inputFileId: string;
  completionWindow: string;
  metadata: Record<string, string> | null;
  status: BatchStatus;
  stamps: Partial<Record<Stamp, number>>;
  /** Read when the batch is created; shown (counts, errors) once validation is over. */
  input: BatchInput;
  validated: boolean;
  errors: BatchError[] | null;
  /** By request index, once answered. */
  answers: Array<CallResult | undefined>;
  counts: { completed: number; failed: number };
  usage: { input: number; cached: number; output: number; reasoning: number };
  startedMs: number;
  outputFileId: string | null;
  errorFileId: string | null;
  cancel: boolean;
  expire: boolean;
  /** Ends the runner's current sleep early (config change, cancel, expiry, close). */
  wake: (() => void) | undefined;
}

const sec = (ms: number) => Math.floor(ms / 1000);
const clamp01 = (x: number) => (Number.isFinite(x) ? Math.max(0, Math.min(1, x)) : 0);
const nonNegative = (x: number) => (Number.isFinite(x) ? Math.max(0, x) : 0);

/** Canonical JSON of a batch's metadata (keys sorted): the key of `createdByMetadata`. */
export function metadataKey(metadata: Record<string, string> | null): string {
  return JSON.stringify(
    Object.fromEntries(Object.entries(metadata ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))),
  );
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const field = (v: unknown, key: string): unknown =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>)[key] : undefined;

const REASONS = {
  batch_expired: 'This request could not be executed before the completion window expired.',
  batch_cancelled: 'This request was not executed because the batch was cancelled.',
} as const;

export class BatchStore {
  readonly files = new FileStore();
  private config: BatchConfig;
  private failNext = 0;
  private batches = new Map<string, BatchRecord>();
  private seq = 0;
  private createdSinceReset: BatchRecord[] = [];
  private requestStats = { completed: 0, failed: 0, expired: 0, cancelled: 0 };
  private usage = { promptTokens: 0, cachedTokens: 0, completionTokens: 0 };
  private filesUploaded = 0;
  private closed = false;

  constructor(
    /** The online handler's dependencies: registry, knowledge, stats, behaviour. */
    private readonly deps: CompletionDeps,
    private readonly seed: number,
    init: Partial<BatchConfig> = {},
  ) {
    this.config = { ...DEFAULT_BATCH_CONFIG };
    this.setConfig(init);
  }

  /** Changes the settings; delays apply at once to running batches, expiry to new ones. */
  setConfig(u: BatchConfigUpdate): BatchConfig {
    const c = this.config;
    this.config = {
      validatingMs: nonNegative(u.validatingMs ?? c.validatingMs),
      inProgressMs: nonNegative(u.inProgressMs ?? c.inProgressMs),
      finalizingMs: nonNegative(u.finalizingMs ?? c.finalizingMs),
      failRate: clamp01(u.failRate ?? c.failRate),
      expireAfterMs: nonNegative(u.expireAfterMs ?? c.expireAfterMs),
    };
    if (u.failNext !== undefined) this.failNext = Math.max(0, Math.floor(u.failNext));
    // Sleeping batches recompute when their next step is due under the new delays.
    for (const b of this.batches.values()) b.wake?.();
    return this.getConfig();
  }

  getConfig(): BatchConfig {
    return { ...this.config };
  }

  upload(filename: string, purpose: FilePurpose, content: string): FileWire {
    this.filesUploaded++;
    return this.files.add(filename, purpose, content);
  }

  create(p: CreateBatchParams): BatchWire {
    if (p.endpoint !== BATCH_ENDPOINT)
      throw badRequest(
        `Invalid endpoint '${p.endpoint}': the simulator runs batches for ${BATCH_ENDPOINT} only.`,
        'invalid_endpoint',
      );
    if (p.completion_window !== '24h')
      throw badRequest(`Invalid completion_window '${p.completion_window}': only '24h' is supported.`);
    let input: { file: FileWire; content: string };
    try {
      input = this.files.get(p.input_file_id);
    } catch {
      throw badRequest(`Invalid 'input_file_id': no file '${p.input_file_id}'.`, 'invalid_input_file');
    }
    if (input.file.purpose !== 'batch')
      throw badRequest(
        `The input file '${p.input_file_id}' has purpose '${input.file.purpose}'; a batch needs one uploaded with purpose 'batch'.`,
        'invalid_input_file',
      );
    const seq = ++this.seq;
    const now = Date.now();
    const b: BatchRecord = {
      seq,
      draw: this.createdSinceReset.length + 1,
      id: `batch_sim_${String(seq).padStart(6, '0')}`,
      createdMs: now,
      expiresMs: now + this.config.expireAfterMs,
      inputFileId: p.input_file_id,
      completionWindow: p.completion_window,
      metadata: p.metadata ? { ...p.metadata } : null,
      status: 'validating',
      stamps: {},
      // Read now, so deleting the input file later does not change the batch.
      input: readBatchInput(input.content, BATCH_ENDPOINT),
      validated: false,
      errors: null,
      answers: [],
      counts: { completed: 0, failed: 0 },
      usage: { input: 0, cached: 0, output: 0, reasoning: 0 },
      startedMs: 0,
      outputFileId: null,
      errorFileId: null,
      cancel: false,
      expire: false,
      wake: undefined,
    };
    this.batches.set(b.id, b);
    this.createdSinceReset.push(b);
    void this.run(b).catch((err: unknown) => {
      b.status = 'failed';
      b.stamps.failed_at = sec(Date.now());
      const message = `Simulator error: ${err instanceof Error ? err.message : String(err)}`;
      b.errors = [{ code: 'server_error', line: null, message, param: null }];
    });
    return this.wire(b);
  }

  get(id: string): BatchWire {
    return this.wire(this.require(id));
  }

  /** Newest first, as OpenAI lists them; `after` is the id of the previous page's last batch. */
  list(limit: number, after: string | undefined): Page<BatchWire> {
    const newestFirst = [...this.batches.values()].sort((a, b) => b.seq - a.seq).map((b) => this.wire(b));
    return pageOf(newestFirst, limit, after);
  }

  cancel(id: string): BatchWire {
    const b = this.require(id);
    if (b.status === 'validating' || b.status === 'in_progress') {
      b.cancel = true;
      b.status = 'cancelling';
      b.stamps.cancelling_at = sec(Date.now());
      b.wake?.();
    } else if (b.status !== 'cancelling' && b.status !== 'cancelled') {
      throw new HttpError(
        409,
        `Cannot cancel a batch with status '${b.status}'.`,
        'invalid_request_error',
        'batch_not_cancellable',
      );
    }
    return this.wire(b);
  }

  /** Expires a batch now, as if its window had passed; false when it is not validating or in progress. */
  expireNow(id: string): boolean {
    const b = this.batches.get(id);
    if (!b || (b.status !== 'validating' && b.status !== 'in_progress')) return false;
    b.expire = true;
    b.wake?.();
    return true;
  }

  /** Batches created since the reset whose metadata has every key/value of `match`. */
  createdMatching(match: Readonly<Record<string, string>> = {}): number {
    return this.createdSinceReset.filter((b) =>
      Object.entries(match).every(([k, v]) => b.metadata?.[k] === v),
    ).length;
  }

  stats(): BatchStats {
    const createdByMetadata: Record<string, number> = {};
    const byStatus: Partial<Record<BatchStatus, number>> = {};
    for (const b of this.createdSinceReset) {
      const key = metadataKey(b.metadata);
      createdByMetadata[key] = (createdByMetadata[key] ?? 0) + 1;
      byStatus[b.status] = (byStatus[b.status] ?? 0) + 1;
    }
    return {
      created: this.createdSinceReset.length,
      createdByMetadata,
      byStatus,
      requests: { ...this.requestStats },
      usage: { ...this.usage },
      filesUploaded: this.filesUploaded,
      batches: this.createdSinceReset.map((b) => ({
        id: b.id,
        status: b.status,
        metadata: b.metadata ? { ...b.metadata } : null,
        request_counts: this.requestCounts(b),
        created_at: sec(b.createdMs),
      })),
    };
  }

  /** Clears the counts and restarts failure draws and failNext; batches and files are kept. */
  resetStats(): void {
    this.createdSinceReset = [];
    this.requestStats = { completed: 0, failed: 0, expired: 0, cancelled: 0 };
    this.usage = { promptTokens: 0, cachedTokens: 0, completionTokens: 0 };
    this.filesUploaded = 0;
    this.failNext = 0;
  }

  /** Stops every batch where it is (the server is closing). */
  close(): void {
    this.closed = true;
    for (const b of this.batches.values()) b.wake?.();
  }

  private require(id: string): BatchRecord {
    const b = this.batches.get(id);
    if (!b) throw new HttpError(404, `No batch found with id '${id}'.`, 'invalid_request_error', null);
    return b;
  }

  // ---- lifecycle ----

  private async run(b: BatchRecord): Promise<void> {
    const validated = await this.waitUntil(b, () => b.createdMs + this.config.validatingMs, true);
    if (validated !== 'time') return this.interrupted(b, validated);
    if (!b.input.ok) {
      b.errors = b.input.errors;
      b.status = 'failed';
      b.stamps.failed_at = sec(Date.now());
      return;
    }
    const requests = b.input.requests;
    b.validated = true;
    b.status = 'in_progress';
    b.startedMs = Date.now();
    b.stamps.in_progress_at = sec(b.startedMs);
    for (let i = 0; i < requests.length; i++) {
      const due = await this.waitUntil(
        b,
        () => b.startedMs + ((i + 1) * this.config.inProgressMs) / requests.length,
        true,
      );
      if (due !== 'time') return this.interrupted(b, due);
      if (!(await this.answer(b, i))) return;
    }
    // Cancelled or expired while its last request was being answered.
    if (b.cancel) return this.interrupted(b, 'cancel');
    if (b.expire) return this.interrupted(b, 'expire');
    b.status = 'finalizing';
    const finalizing = Date.now();
    b.stamps.finalizing_at = sec(finalizing);
    if ((await this.waitUntil(b, () => finalizing + this.config.finalizingMs, false)) === 'closed') return;
    this.writeFiles(b, 'batch_expired'); // every request was answered: no reason is used
    b.status = 'completed';
    b.stamps.completed_at = sec(Date.now());
  }

  private async interrupted(b: BatchRecord, why: Interruption): Promise<void> {
    if (why === 'closed') return;
    // What was read is shown (counts, files) whichever way the batch ends.
    b.validated = b.input.ok;
    if (why === 'expire') {
      this.writeFiles(b, 'batch_expired');
      b.status = 'expired';
      b.stamps.expired_at = sec(Date.now());
      return;
    }
    // Cancelled: `cancelling` (set by cancel()) lasts finalizingMs, then the files are written.
    const since = Date.now();
    if ((await this.waitUntil(b, () => since + this.config.finalizingMs, false)) === 'closed') return;
    this.writeFiles(b, 'batch_cancelled');
    b.status = 'cancelled';
    b.stamps.cancelled_at = sec(Date.now());
  }

  /**
   * Sleeps until `target()` (re-read after each wake, so delay changes apply), or until the
   * batch is cancelled or expires when `interruptible`, or the server closes.
   */
  private async waitUntil(
    b: BatchRecord,
    target: () => number,
    interruptible: boolean,
  ): Promise<'time' | Interruption> {
    for (;;) {
      if (this.closed) return 'closed';
      const now = Date.now();
      if (interruptible && b.cancel) return 'cancel';
      if (interruptible && (b.expire || now >= b.expiresMs)) return 'expire';
      const due = target();
      if (now >= due) return 'time';
      await this.sleep(b, (interruptible ? Math.min(due, b.expiresMs) : due) - now);
    }
  }

  private sleep(b: BatchRecord, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        b.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, Math.ceil(ms)));
      b.wake = done;
    });
  }

  /** Answers request i through the online handler; false when the server closed meanwhile. */
  private async answer(b: BatchRecord, i: number): Promise<boolean> {
    if (!b.input.ok) return false;
    const request = b.input.requests[i];
    if (!request) return false;
    const forced = this.failNext > 0;
    if (forced) this.failNext--;
    const draw = hash32('batch-fail', this.seed, b.draw, request.line) / 4294967296;
    const fail = forced || draw < this.config.failRate;
    // A fault injector of its own per request: the online failRate does not reach batches, and
    // this request's 500 (if drawn) goes through the handler's own fault path and counts.
    const faults = new FaultInjector(0, {
      failRate: fail ? 1 : 0,
      faultKinds: ['500'],
      hangMs: 0,
      retryAfter: '1',
    });
    const result = await answerInProcess({ ...this.deps, faults, latencyMs: () => 0 }, request.body);
    if (!result || this.closed) return false;
    b.answers[i] = result;
    if (result.status === 200) {
      b.counts.completed++;
      this.requestStats.completed++;
      // Read from the answer, so the batch bills what the online endpoint reports (cached tokens too).
      const usage = field(result.body, 'usage');
      const prompt = num(field(usage, 'prompt_tokens'));
      const cached = num(field(field(usage, 'prompt_tokens_details'), 'cached_tokens'));
      const completion = num(field(usage, 'completion_tokens'));
      b.usage.input += prompt;
      b.usage.cached += cached;
      b.usage.output += completion;
      b.usage.reasoning += num(field(field(usage, 'completion_tokens_details'), 'reasoning_tokens'));
      this.usage.promptTokens += prompt;
      this.usage.cachedTokens += cached;
      this.usage.completionTokens += completion;
    } else {
      b.counts.failed++;
      this.requestStats.failed++;
    }
    return true;
  }

  /**
   * The output file (requests answered 200) and the error file (answered with an error, or
   * never answered: `unanswered` says why), in input order; a file only when it has a line.
   */
  private writeFiles(b: BatchRecord, unanswered: keyof typeof REASONS): void {
    if (!b.input.ok) return;
    const output: string[] = [];
    const errors: string[] = [];
    const suffix = b.id.slice('batch_'.length);
    let skipped = 0;
    b.input.requests.forEach((r, i) => {
      const id = `batch_req_${suffix}_${r.line}`;
      const a = b.answers[i];
      if (!a) {
        skipped++;
        const error = { code: unanswered, message: REASONS[unanswered] };
        errors.push(JSON.stringify({ id, custom_id: r.customId, response: null, error }));
        return;
      }
      const response = { status_code: a.status, request_id: `req_${suffix}_${r.line}`, body: a.body };
      (a.status === 200 ? output : errors).push(
        JSON.stringify({ id, custom_id: r.customId, response, error: null }),
      );
    });
    const jsonl = (lines: string[]) => `${lines.join('\n')}\n`;
    if (output.length > 0)
      b.outputFileId = this.files.add(`${b.id}_output.jsonl`, 'batch_output', jsonl(output)).id;
    if (errors.length > 0)
      b.errorFileId = this.files.add(`${b.id}_error.jsonl`, 'batch_output', jsonl(errors)).id;
    if (unanswered === 'batch_expired') this.requestStats.expired += skipped;
    else this.requestStats.cancelled += skipped;
  }

  private requestCounts(b: BatchRecord): BatchRequestCounts {
    return b.validated && b.input.ok
      ? { total: b.input.requests.length, completed: b.counts.completed, failed: b.counts.failed }
      : { total: 0, completed: 0, failed: 0 };
  }

  private wire(b: BatchRecord): BatchWire {
    const stamp = (k: Stamp) => b.stamps[k] ?? null;
    return {
      id: b.id,
      object: 'batch',
      endpoint: BATCH_ENDPOINT,
      errors: b.errors ? { object: 'list', data: b.errors.map((e) => ({ ...e })) } : null,
      input_file_id: b.inputFileId,
      completion_window: b.completionWindow,
      status: b.status,
      output_file_id: b.outputFileId,
      error_file_id: b.errorFileId,
      created_at: sec(b.createdMs),
      in_progress_at: stamp('in_progress_at'),
      expires_at: sec(b.expiresMs),
      finalizing_at: stamp('finalizing_at'),
      completed_at: stamp('completed_at'),
      failed_at: stamp('failed_at'),
      expired_at: stamp('expired_at'),
      cancelling_at: stamp('cancelling_at'),
      cancelled_at: stamp('cancelled_at'),
      request_counts: this.requestCounts(b),
      metadata: b.metadata ? { ...b.metadata } : null,
      model: b.input.ok ? b.input.model : null,
      usage: {
        input_tokens: b.usage.input,
        input_tokens_details: { cached_tokens: b.usage.cached },
        output_tokens: b.usage.output,
        output_tokens_details: { reasoning_tokens: b.usage.reasoning },
        total_tokens: b.usage.input + b.usage.output,
      },
    };
  }
}
