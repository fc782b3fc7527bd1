/**
 * Simulated prompt caching, as OpenAI's works (https://platform.openai.com/docs/guides/prompt-caching):
 * a prompt of at least 1024 tokens whose beginning the server has seen before, for the same model,
 * reports that beginning as `usage.prompt_tokens_details.cached_tokens` — the longest prefix seen,
 * in steps of 128 tokens from 1024. A simulation: no work is saved and nothing expires with time;
 * the cache lives as long as the server (least recently used prefixes go beyond a bound).
 *
 * Deterministic for a set of requests: a prefix is remembered when its request is answered, before
 * the simulated latency, so of requests sharing a long beginning exactly the first to arrive misses
 * — however many are in flight at once.
 *
 * Tokens are the simulator's (characters / 4, plus 4 per message; completions.ts): each message is
 * laid out as a 4-token header and its text padded to whole tokens, so a prefix of T tokens is the
 * first 4·T characters of that layout and the total is the request's `prompt_tokens`.
 */
import { createHash } from 'node:crypto';
import { messageText, type ChatMessageBody } from './protocol';

/** OpenAI caches prompts from this many tokens on… */
export const CACHE_MIN_TOKENS = 1024;
/** …in steps of this many. */
export const CACHE_STEP_TOKENS = 128;
/** The simulator's token: characters / 4 (text.ts `tokenCount`). */
const CHARS_PER_TOKEN = 4;
/** The per-message tokens completions.ts counts on top of the text. */
const MESSAGE_HEADER_TOKENS = 4;
/** Prefixes remembered per server; about 60 bytes each. */
const MAX_PREFIXES = 200_000;

/** The messages as one string of exactly 4 characters per simulated prompt token. */
function layout(messages: readonly ChatMessageBody[]): string {
  return messages
    .map((m) => {
      const text = messageText(m);
      const padded = text.padEnd(Math.ceil(text.length / CHARS_PER_TOKEN) * CHARS_PER_TOKEN, '\u0000');
      return `<|${m.role}|>`.padEnd(MESSAGE_HEADER_TOKENS * CHARS_PER_TOKEN, ' ') + padded;
    })
    .join('');
}

export class PromptCache {
  /** Keys of prefixes seen (model and a hash of the prefix); Map order is the LRU order. */
  private readonly seen = new Map<string, true>();

  /**
   * The prompt tokens of this request the cache would serve (0 under 1024 tokens or on a miss),
   * then remembers the request's prefixes for the requests after it.
   */
  lookup(model: string, messages: readonly ChatMessageBody[]): number {
    const text = layout(messages);
    const tokens = text.length / CHARS_PER_TOKEN;
    if (tokens < CACHE_MIN_TOKENS) return 0;
    // One running hash over the prompt, read off at each step: every prefix key in one pass.
    const hash = createHash('sha256').update(`${model}\u0000`);
    const keys: Array<[number, string]> = [];
    let at = 0;
    for (let t = CACHE_MIN_TOKENS; t <= tokens; t += CACHE_STEP_TOKENS) {
      hash.update(text.slice(at, t * CHARS_PER_TOKEN));
      at = t * CHARS_PER_TOKEN;
      keys.push([t, hash.copy().digest('base64')]);
    }
    let cached = 0;
    for (const [t, key] of keys) {
      if (this.seen.has(key)) cached = t;
      // Re-inserted: most recently used last.
      this.seen.delete(key);
      this.seen.set(key, true);
    }
    for (const oldest of this.seen.keys()) {
      if (this.seen.size <= MAX_PREFIXES) break;
      this.seen.delete(oldest);
    }
    return cached;
  }
}
