/**
 * How alike two model outputs are, as a pure function: the contrast stage drops pairs whose
 * chosen and rejected outputs say nearly the same thing (there is nothing to learn from them).
 */

/** The lower-cased words (letters and digits, any script) of a text, as a set. */
export function wordSet(text: string): Set<string> {
  return new Set(text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []);
}

/**
 * Token Jaccard similarity of two texts: |A ∩ B| / |A ∪ B| over their normalised word sets.
 * 1 for texts with the same words (identical texts, or two texts without words), 0 for disjoint.
 */
export function tokenJaccard(a: string, b: string): number {
  const sa = wordSet(a);
  const sb = wordSet(b);
  if (sa.size === 0 && sb.size === 0) return 1;
  let shared = 0;
  for (const w of sa) if (sb.has(w)) shared++;
  return shared / (sa.size + sb.size - shared);
}
