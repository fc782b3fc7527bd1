/**
 * What a failed LLM call means for the campaign. Rate limits, server errors and timeouts are
 * transient: back off and try again. Bad requests, bad keys and unknown models are not: fail
 * fast with a message that says what to fix.
 */
import OpenAI from 'openai';
import { storableText } from '../db/storable-text';
import { scrubSecrets } from '../secrets';

export interface EndpointRef {
  role: string;
  baseURL: string;
  model: string;
  apiKeyEnv?: string | undefined;
}

export interface ClassifiedError {
  retryable: boolean;
  httpStatus: number | null;
  /** Seconds the server asked us to wait (Retry-After), if any. */
  retryAfterSec: number | null;
  /** One line a user can act on. */
  message: string;
  aborted: boolean;
}

/**
 * Seconds the server asks callers to wait: `retry-after-ms` (OpenAI's), else `Retry-After` as
 * seconds or as an HTTP date (RFC 9110 §10.2.3), counted from `nowMs`. Null when absent, invalid
 * or already past.
 */
export function parseRetryAfter(headers: Headers, nowMs: number): number | null {
  const ms = Number(headers.get('retry-after-ms') ?? NaN);
  if (Number.isFinite(ms) && ms > 0) return ms / 1000;
  const value = headers.get('retry-after')?.trim();
  if (!value) return null;
  if (/^\d+(\.\d+)?$/.test(value)) {
    const sec = Number(value);
    return sec > 0 ? sec : null;
  }
  const at = Date.parse(value);
  if (!Number.isFinite(at)) return null;
  const sec = (at - nowMs) / 1000;
  return sec > 0 ? sec : null;
}

function where(ep: EndpointRef): string {
  return `${ep.role} endpoint ${ep.baseURL} (model "${ep.model}")`;
}

/**
 * The message includes the provider's own text, which may echo the caller's key ("Incorrect API
 * key provided: sk-…"), and the base URL, which may carry a password: both are scrubbed here, the
 * one place every LLM failure message is built, before it reaches `llm_calls`, a thrown error
 * (and so a Temporal failure), a log or the terminal. `knownSecrets`: the values of the key
 * variables, masked wherever they appear.
 */
export function classifyLlmError(
  err: unknown,
  ep: EndpointRef,
  knownSecrets: Iterable<string> = [],
): ClassifiedError {
  const c = classify(err, ep);
  // The message goes to `llm_calls.error`: a provider's error text may carry a U+0000 too.
  return { ...c, message: storableText(scrubSecrets(c.message, knownSecrets)) };
}

function classify(err: unknown, ep: EndpointRef): ClassifiedError {
  if (err instanceof OpenAI.APIUserAbortError) {
    return {
      retryable: false,
      httpStatus: null,
      retryAfterSec: null,
      message: 'request cancelled',
      aborted: true,
    };
  }
  if (err instanceof OpenAI.APIConnectionTimeoutError) {
    return {
      retryable: true,
      httpStatus: null,
      retryAfterSec: null,
      message: `timeout from ${where(ep)}`,
      aborted: false,
    };
  }
  if (err instanceof OpenAI.APIConnectionError) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return {
      retryable: true,
      httpStatus: null,
      retryAfterSec: null,
      message: `cannot reach ${where(ep)}${cause}`,
      aborted: false,
    };
  }
  if (err instanceof OpenAI.APIError) {
    const status = typeof err.status === 'number' ? err.status : null;
    const detail = err.message;
    const retryAfterSec = err.headers instanceof Headers ? parseRetryAfter(err.headers, Date.now()) : null;
    const fail = (message: string): ClassifiedError => ({
      retryable: false,
      httpStatus: status,
      retryAfterSec: null,
      message,
      aborted: false,
    });
    switch (status) {
      case 401:
        return fail(
          `${where(ep)} rejected the API key (401)` +
            (ep.apiKeyEnv ? `: check the key in $${ep.apiKeyEnv}` : ': the spec names no apiKeyEnv for it') +
            ` — ${detail}`,
        );
      case 403:
        return fail(`${where(ep)} refused the request (403): the key lacks access to this model — ${detail}`);
      case 404:
        return fail(`${where(ep)} answered 404: check baseURL and that the model is served — ${detail}`);
      case 400:
      case 422:
        return fail(`${where(ep)} rejected the request as invalid (${status}) — ${detail}`);
      default:
        if (status === 408 || status === 409 || status === 429 || (status !== null && status >= 500)) {
          return {
            retryable: true,
            httpStatus: status,
            retryAfterSec,
            message: `${status} from ${where(ep)} — ${detail}`,
            aborted: false,
          };
        }
        return fail(`${where(ep)} answered ${status ?? 'an error'} — ${detail}`);
    }
  }
  const message = err instanceof Error ? err.message : String(err);
  return {
    retryable: true,
    httpStatus: null,
    retryAfterSec: null,
    message: `${where(ep)}: ${message}`,
    aborted: false,
  };
}
