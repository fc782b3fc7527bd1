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

interface Entry<T> {
  /** Normalised text. */
  key: string;
  /** ` key `: matched as whole words inside a prompt. */
  padded: string;
  /** Position in the index: the first of equally good matches wins. */
  order: number;
  tokens: Set<string>;
  topics: Set<string>;
  value: T;
}

export class QuestionIndex<T> {
  private readonly exact = new Map<string, T>();
  // Word sets are computed once per entry: the overlap scores of every lookup read them.
  // `tokens` (every word, numbers included) decide "same question"; `topics` (content words) "related".
  private readonly entries: Array<Entry<T>> = [];
  /**
   * Entries long enough to be found inside a prompt, by their first word: a prompt can only
   * contain the entries whose first word it has, so a lookup tests those alone.
   */
  private readonly byFirstWord = new Map<string, Array<Entry<T>>>();
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
      const entry = {
        key,
        padded: ` ${key} `,
        order: this.entries.length,
        tokens: new Set(words(key)),
        topics: new Set(contentWords(key)),
        value,
      };
      this.entries.push(entry);
      // As the prompt is split below (words() normalises again, which may differ in rare letters).
      const first = key.split(' ')[0];
      if (first !== undefined && key.length >= CONTAIN_MIN_CHARS) {
        const list = this.byFirstWord.get(first) ?? [];
        list.push(entry);
        this.byFirstWord.set(first, list);
      }
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

  /**
   * The entry of highest Jaccard score (the first of equals). With `atLeast`, entries whose size
   * alone keeps them below it are not scored (|A∩B|/|A∪B| ≤ min/max of the sizes): a long prompt
   * is then compared with no short question — a lookup's main cost. The best entry is the same
   * whenever it reaches `atLeast`.
   */
  private closest(query: ReadonlySet<string>, by: 'tokens' | 'topics', atLeast = 0): Nearest<T> | undefined {
    let best: Nearest<T> | undefined;
    for (const e of this.entries) {
      const set = e[by];
      if (atLeast > 0 && Math.min(set.size, query.size) < atLeast * Math.max(set.size, query.size)) continue;
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
    // A prompt may wrap the question in extra text: the longest indexed question inside it wins
    // (the first indexed of equals).
    const padded = ` ${key} `;
    let contained: Entry<T> | undefined;
    for (const w of new Set(key.split(' '))) {
      for (const e of this.byFirstWord.get(w) ?? []) {
        if (
          contained &&
          (e.key.length < contained.key.length ||
            (e.key.length === contained.key.length && e.order > contained.order))
        )
          continue;
        if (e.key.length <= key.length && padded.includes(e.padded)) contained = e;
      }
    }
    if (contained) return contained.value;
    const near = this.closest(new Set(words(key)), 'tokens', FUZZY_MIN);
    return near && near.score >= FUZZY_MIN ? near.value : undefined;
  }
}
