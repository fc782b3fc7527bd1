/**
 * Text helpers the simulated models share: normalisation for matching questions, key terms,
 * sentence splitting, overlap scores and stable hashes (the simulator must be deterministic).
 */
import { createHash } from 'node:crypto';

const STOPWORDS = new Set(
  (
    'a an the and or but if then else of to in on at by for with from into onto over under about as is are was were ' +
    'be been being am do does did doing have has had having i me my we our you your he she it its they them their this ' +
    'that these those there here what which who whom whose when where why how not no nor so too very can could should ' +
    'would will shall may might must just also than such only own same other any each few more most some all both ' +
    'up down out off again further once after before between through during above below while until because ' +
    'get gets got use used using uses want wants need needs one two way ways thing things like make makes still even ' +
    'question answer please help anyone know trying tried getting instead doesnt dont cant im ive isnt wont didnt ' +
    'stay stays stayed stuck forever always never sometimes often every already yet now ever really actually ' +
    'apply applied applying check checked run runs running ran work works working worked fail fails failed failing ' +
    'see seen look looks looking find found show shows showing set sets setting change changed changes happen happens ' +
    'happened keep keeps kept start starts started stop stops stopped try tune tuned fix fixed best better good bad ' +
    'large small big new old right wrong correct correctly possible properly proper different same certain ' +
    'seems seem seemed think thought able unable without within across per via etc e g ie eg ok okay thanks thank ' +
    'should shouldnt cannot go goes going come comes gives give given take takes taken put puts let lets says said'
  ).split(/\s+/),
);

/** Lower-case, punctuation-free, single-spaced: the key questions are matched by. */
export function normalize(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

export function words(text: string): string[] {
  const n = normalize(text);
  return n ? n.split(' ') : [];
}

/** Content words (no stopwords, no one-letter tokens), in first-seen order, unique. */
export function contentWords(text: string): string[] {
  const seen = new Set<string>();
  for (const w of words(text)) {
    if (w.length > 1 && !STOPWORDS.has(w) && !/^\d+$/.test(w)) seen.add(w);
  }
  return [...seen];
}

/**
 * The terms a question is "about", in text order: content words scored so that technical
 * tokens win (CamelCase or capitalised mid-sentence, digits, dots/dashes/slashes, length).
 * Deterministic.
 */
export function keyTerms(text: string, max: number): string[] {
  const scored = new Map<string, { score: number; i: number; form: string }>();
  const tokens = text.match(/[\p{L}\p{N}][\p{L}\p{N}_./-]*[\p{L}\p{N}]|[\p{L}]{2,}/gu) ?? [];
  tokens.forEach((raw, i) => {
    const w = raw.toLowerCase();
    if (w.length < 2 || STOPWORDS.has(w) || /^\d+([.,]\d+)?$/.test(w)) return;
    let score = Math.min(w.length, 12);
    if (/[a-z][A-Z]/.test(raw)) score += 6;
    else if (i > 0 && /^[A-Z]/.test(raw)) score += 3;
    if (/[\d./-]/.test(w)) score += 3;
    const prev = scored.get(w);
    if (prev) prev.score += 2;
    // CamelCase and acronyms keep their spelling (runAsNonRoot, OOMKilled); other words are lower-cased.
    else scored.set(w, { score, i, form: /[a-z][A-Z]|[A-Z]{2}/.test(raw) ? raw : w });
  });
  return [...scored.values()]
    .sort((a, b) => b.score - a.score || a.i - b.i)
    .slice(0, max)
    .sort((a, b) => a.i - b.i)
    .map((t) => t.form);
}

/** Share of the reference's content words that appear in the candidate (0..1). */
export function recall(reference: string, candidate: string): number {
  const ref = contentWords(reference);
  if (ref.length === 0) return 0;
  const cand = new Set(contentWords(candidate));
  return ref.filter((w) => cand.has(w)).length / ref.length;
}

export function sentences(text: string): string[] {
  const out: string[] = [];
  for (const piece of text.replace(/\s+/g, ' ').split(/(?<=[.!?])\s+/)) {
    const prev = out[out.length - 1];
    // "e.g. kubectl" or "i.e. the" does not end a sentence.
    if (prev !== undefined && /(\b(e\.g|i\.e|etc|vs|cf|approx)|\b[A-Za-z])\.$/i.test(prev))
      out[out.length - 1] = `${prev} ${piece}`;
    else if (piece.trim()) out.push(piece.trim());
  }
  return out;
}

/** A 32-bit unsigned hash of the parts, stable across runs and machines. */
export function hash32(...parts: Array<string | number>): number {
  const h = createHash('sha256').update(parts.join('\u0000')).digest();
  return h.readUInt32BE(0);
}

export function pick<T>(items: readonly T[], h: number): T {
  const item = items[h % items.length];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
}

/** OpenAI-ish token estimate: about four characters a token. */
export function tokenCount(text: string): number {
  return Math.ceil(text.length / 4);
}

export function ensurePeriod(s: string): string {
  const t = s.trim();
  return /[.!?]$/.test(t) ? t : `${t}.`;
}
