/** Request accounting for /sim/stats: totals, per-model counts and a ring buffer of recent requests. */
import type { RequestCount } from './request-hashes';
import { RequestHashCounter } from './request-hashes';

export interface SimRequestRecord {
  at: string;
  model: string;
  /** HTTP status answered; 0 when a 'timeout' fault closed the connection without an answer. */
  status: number;
  n?: number;
  temperature?: number;
  use_beam_search?: boolean;
  best_of?: number;
  length_penalty?: number;
  max_tokens?: number;
  max_completion_tokens?: number;
  reasoning_effort?: string;
  /**
   * 'text' | 'json_object' | 'json_schema:<name>'; for a schema in the prompt (quirks.ts),
   * 'json_object:<name>' | 'guided_json:<name>' | 'prompt:<name>' by how else it was asked for.
   */
  responseFormat?: string;
  /** guideline | strong_answer | verdict | judge | structured | answer | invalid */
  task: string;
  /** Choices of this reply deliberately malformed (SimOptions.malformedRate). */
  malformed?: number;
  /** sha256 of the body as canonical JSON (request-hashes.ts); absent for a body that is not JSON. */
  hash?: string;
}

export interface ModelStats {
  requests: number;
  served: number;
  promptTokens: number;
  completionTokens: number;
}

export interface SimStats {
  /** Chat-completion requests received (other endpoints are not counted). */
  requests: number;
  /** Of those, answered 200. */
  served: number;
  /** Injected faults by kind ('429' | '500' | 'timeout'). */
  faults: Record<string, number>;
  /** Deliberately malformed structured replies (choices) by json_schema name (SimOptions.malformedRate). */
  malformed: Record<string, number>;
  byModel: Record<string, ModelStats>;
  /**
   * Chat requests being handled now and the most at once, by model (body parsed → answer sent or
   * connection dropped): what a client's concurrency limit is checked against.
   */
  inFlight: Record<string, { now: number; peak: number }>;
  /** The last RECENT_LIMIT requests, oldest first. */
  recent: SimRequestRecord[];
  /** Every request so far by content hash: received and answered 200 (see paidTwice). */
  requestCounts: Record<string, RequestCount>;
}

export const RECENT_LIMIT = 2000;

export class StatsRecorder {
  private requests = 0;
  private served = 0;
  private faults: Record<string, number> = {};
  private malformedBySchema: Record<string, number> = {};
  private byModel: Record<string, ModelStats> = {};
  private inFlight: Record<string, { now: number; peak: number }> = {};
  private ring: SimRequestRecord[] = [];
  private next = 0;
  private readonly hashes = new RequestHashCounter();

  record(rec: SimRequestRecord, tokens?: { prompt: number; completion: number }): void {
    this.requests++;
    const m = (this.byModel[rec.model] ??= { requests: 0, served: 0, promptTokens: 0, completionTokens: 0 });
    m.requests++;
    if (rec.status === 200) {
      this.served++;
      m.served++;
    }
    if (tokens) {
      m.promptTokens += tokens.prompt;
      m.completionTokens += tokens.completion;
    }
    if (rec.hash !== undefined) this.hashes.add(rec.hash, rec.status);
    if (this.ring.length < RECENT_LIMIT) this.ring.push(rec);
    else this.ring[this.next] = rec;
    this.next = (this.next + 1) % RECENT_LIMIT;
  }

  /** Counts a request of `model` in flight; call the returned function once when it is done. */
  begin(model: string): () => void {
    const m = (this.inFlight[model] ??= { now: 0, peak: 0 });
    m.now++;
    m.peak = Math.max(m.peak, m.now);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      m.now--;
    };
  }

  fault(kind: string): void {
    this.faults[kind] = (this.faults[kind] ?? 0) + 1;
  }

  malformed(schemaName: string, count = 1): void {
    this.malformedBySchema[schemaName] = (this.malformedBySchema[schemaName] ?? 0) + count;
  }

  snapshot(): SimStats {
    const recent =
      this.ring.length < RECENT_LIMIT
        ? [...this.ring]
        : [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
    return {
      requests: this.requests,
      served: this.served,
      faults: { ...this.faults },
      malformed: { ...this.malformedBySchema },
      byModel: Object.fromEntries(Object.entries(this.byModel).map(([k, v]) => [k, { ...v }])),
      inFlight: Object.fromEntries(Object.entries(this.inFlight).map(([k, v]) => [k, { ...v }])),
      recent,
      requestCounts: this.hashes.snapshot(),
    };
  }

  clear(): void {
    this.requests = 0;
    this.served = 0;
    this.faults = {};
    this.malformedBySchema = {};
    this.byModel = {};
    // Requests still in flight stay counted; peaks start again from them.
    for (const m of Object.values(this.inFlight)) m.peak = m.now;
    this.ring = [];
    this.next = 0;
    this.hashes.clear();
  }
}
