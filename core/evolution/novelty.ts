/**
 * The novelty check of task evolution (the self-evolution survey's experience acquisition;
 * REFERENCE §7): a question the strong model wrote is kept only when it is not a near-copy of any
 * question the campaign already has — training questions, questions evolved before it, and above
 * all the held-out ones, so that nothing of the evaluation leaks into training. Similarity is
 * token Jaccard (core/text-similarity.ts); candidates are compared only with questions that share
 * a word with them (an inverted index), so the check stays cheap on large question sets.
 */
import { tokenJaccard, wordSet } from '../text-similarity';

/**
 * The text a question is compared by: its title and its question, as the strong model writes both
 * (a rewrite that only renames the title is still a near-copy).
 */
export function noveltyText(q: { title?: string | null; question: string }): string {
  return q.title ? `${q.title}\n\n${q.question}` : q.question;
}

export interface KnownQuestion {
  id: string;
  text: string;
  split: 'train' | 'eval';
}

export type NoveltyVerdict =
  | { novel: true; closest: { id: string; similarity: number } | null }
  | { novel: false; reason: 'near-duplicate' | 'near-held-out'; similarTo: string; similarity: number };

/** Words too common to say two questions are alike; they are left out of the index. */
const MAX_POSTINGS_SHARE = 0.5;

export class NoveltyFilter {
  private readonly questions: KnownQuestion[] = [];
  private readonly index = new Map<string, number[]>();

  /** `maxSimilarity`: a candidate at or above it against any known question is not novel. */
  constructor(
    known: Iterable<KnownQuestion>,
    private readonly maxSimilarity: number,
  ) {
    for (const q of known) this.add(q);
  }

  get size(): number {
    return this.questions.length;
  }

  /** Checks a candidate against every known question that shares an uncommon word with it. */
  check(text: string): NoveltyVerdict {
    let closest: { q: KnownQuestion; similarity: number } | null = null;
    let heldOut: { q: KnownQuestion; similarity: number } | null = null;
    const seen = new Set<number>();
    const limit = Math.max(50, this.questions.length * MAX_POSTINGS_SHARE);
    const words = [...wordSet(text)];
    const usable = words.filter((w) => (this.index.get(w)?.length ?? 0) <= limit);
    // A candidate made only of common words is compared with every question.
    const candidates =
      usable.length > 0 || words.length === 0
        ? usable.flatMap((w) => this.index.get(w) ?? [])
        : this.questions.map((_, i) => i);
    for (const i of candidates) {
      if (seen.has(i)) continue;
      seen.add(i);
      const q = this.questions[i] as KnownQuestion;
      const similarity = tokenJaccard(text, q.text);
      if (!closest || similarity > closest.similarity) closest = { q, similarity };
      if (q.split === 'eval' && (!heldOut || similarity > heldOut.similarity)) heldOut = { q, similarity };
    }
    // A held-out match is named as such, even when a training question is closer.
    if (heldOut && heldOut.similarity >= this.maxSimilarity)
      return {
        novel: false,
        reason: 'near-held-out',
        similarTo: heldOut.q.id,
        similarity: heldOut.similarity,
      };
    if (closest && closest.similarity >= this.maxSimilarity)
      return {
        novel: false,
        reason: 'near-duplicate',
        similarTo: closest.q.id,
        similarity: closest.similarity,
      };
    return { novel: true, closest: closest ? { id: closest.q.id, similarity: closest.similarity } : null };
  }

  /** Adds a question (a kept candidate), so later candidates are checked against it too. */
  add(q: KnownQuestion): void {
    const i = this.questions.push(q) - 1;
    for (const w of wordSet(q.text)) {
      const postings = this.index.get(w);
      if (postings) postings.push(i);
      else this.index.set(w, [i]);
    }
  }
}
