/**
 * Counts chat requests by their content, so a test can ask the model server itself which
 * identical requests it answered more than once (paid twice), instead of trusting the caller's
 * own log. The hash is sha256 of the request body as canonical JSON (keys sorted, undefined
 * dropped): model, messages, n, temperature, response_format and any extra field such as
 * use_beam_search, max_completion_tokens, reasoning_effort or guided_json all count (the whole
 * body as received, before validation), so a salted or reshaped re-ask is a different request.
 */
import { createHash } from 'node:crypto';

/** Per request hash: requests received and those answered 200 (paid for). */
export interface RequestCount {
  requests: number;
  served: number;
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The simulator's hash of a chat completion body, e.g. of `llm_calls.request` (to scope a check). */
export function requestHash(body: unknown): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}

export class RequestHashCounter {
  private counts = new Map<string, RequestCount>();

  add(hash: string, status: number): void {
    let c = this.counts.get(hash);
    if (!c) this.counts.set(hash, (c = { requests: 0, served: 0 }));
    c.requests++;
    if (status === 200) c.served++;
  }

  snapshot(): Record<string, RequestCount> {
    return Object.fromEntries([...this.counts].map(([h, c]) => [h, { ...c }]));
  }

  clear(): void {
    this.counts = new Map();
  }
}

/**
 * Hashes answered 200 more than once, with how many times (from `stats().requestCounts`);
 * `among` limits the check to some requests (e.g. one campaign's, by requestHash of its bodies).
 */
export function paidTwice(
  counts: Readonly<Record<string, RequestCount>>,
  among?: ReadonlySet<string>,
): Array<{ hash: string; served: number }> {
  return Object.entries(counts)
    .filter(([hash, c]) => c.served > 1 && (!among || among.has(hash)))
    .map(([hash, c]) => ({ hash, served: c.served }));
}
