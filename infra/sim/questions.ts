/**
 * Finding a question again: the knowledge base and every LoRA adapter index what they know by
 * question text, and requests carry that text wrapped in prompts, so matching is by normalised
 * text first, then containment, then word overlap.
 */
import { contentWords, normalize, words } from './text';

const FUZZY_MIN = 0.8;
const CONTAIN_MIN_CHARS = 24;
const CACHE_LIMIT = 5000;

export interface Nearest<T> {
  value: T;
  score: number;
}

export class QuestionIndex<T> {
  private readonly exact = new Map<string, T>();
  // Content-word sets are computed once per entry: lookups of unknown questions scan them all.
  // `tokens` (every word, numbers included) decide "same question"; `topics` (content words) "related".
  private readonly entries: Array<{ key: string; tokens: Set<string>; topics: Set<string>; value: T }> = [];
  private readonly cache = new Map<string, T | null>();

  get size(): number {
    return this.entries.length;
  }

  /** Index one value under several phrasings (e.g. title+question and question alone); later adds win. */
  add(keys: readonly string[], value: T): void {
    for (const raw of keys) {
      const key = normalize(raw);
      if (!key) continue;
      this.exact.set(key, value);
      this.entries.push({ key, tokens: new Set(words(key)), topics: new Set(contentWords(key)), value });
    }
    this.cache.clear();
  }

  find(text: string): T | undefined {
    const key = normalize(text);
    if (!key) return undefined;
    const cached = this.cache.get(key);
    if (cached !== undefined) return cached ?? undefined;
    const found = this.search(key);
    // Bounded: a long benchmark sends many distinct prompts.
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(key, found ?? null);
    return found;
  }

  /** The indexed question sharing most topic words, however few (undefined only when the index is empty). */
  nearest(text: string): Nearest<T> | undefined {
    return this.closest(new Set(contentWords(text)), 'topics');
  }

  private closest(query: ReadonlySet<string>, by: 'tokens' | 'topics'): Nearest<T> | undefined {
    let best: Nearest<T> | undefined;
    for (const e of this.entries) {
      const set = e[by];
      let shared = 0;
      for (const w of query) if (set.has(w)) shared++;
      const union = query.size + set.size - shared;
      const score = union === 0 ? 1 : shared / union;
      if (!best || score > best.score) best = { value: e.value, score };
    }
    return best;
  }

  private search(key: string): T | undefined {
    const hit = this.exact.get(key);
    if (hit !== undefined) return hit;
    // A prompt may wrap the question in extra text: the longest indexed question inside it wins.
    let contained: { len: number; value: T } | undefined;
    for (const e of this.entries) {
      if (
        e.key.length >= CONTAIN_MIN_CHARS &&
        ` ${key} `.includes(` ${e.key} `) &&
        (!contained || e.key.length > contained.len)
      ) {
        contained = { len: e.key.length, value: e.value };
      }
    }
    if (contained) return contained.value;
    const near = this.closest(new Set(words(key)), 'tokens');
    return near && near.score >= FUZZY_MIN ? near.value : undefined;
  }
}
