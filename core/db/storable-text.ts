/**
 * Text as PostgreSQL can store it. It takes no U+0000 in `text` ("invalid byte sequence") nor in
 * `jsonb` ("unsupported Unicode escape sequence"), and a model can emit one (byte-fallback
 * tokens); one such reply failed the whole statement it shared with other answers, and since the
 * paid answer was never logged, every retry paid for it again. A lone UTF-16 surrogate (a server
 * whose JSON escapes half a pair, `"\ud800"`) does the same to `jsonb` ("invalid input syntax for
 * type json"); in `text` the driver's UTF-8 encoding would turn it into U+FFFD anyway. Each becomes
 * U+FFFD, the replacement character: visible, and the rest of the text is kept as it came.
 */
export function storableText(text: string): string {
  const noNul = text.includes('\u0000') ? text.replaceAll('\u0000', '\uFFFD') : text;
  return hasLoneSurrogate(noNul) ? noNul.replace(LONE_SURROGATE_ALL, '\uFFFD') : noNul;
}

/**
 * What of `text` PostgreSQL cannot store, as an error message ends ("must not contain …"); null
 * when it can store all of it. For input refused rather than replaced: question files, specs.
 */
function unstorableContent(text: string): string | null {
  if (text.includes('\u0000')) return 'a NUL character (U+0000)';
  if (hasLoneSurrogate(text)) return 'half a UTF-16 surrogate pair (a lone \\uD800-\\uDFFF escape)';
  return null;
}

/**
 * Every string in `value` (keys included) that PostgreSQL could not store, with its path and a
 * message ("must not contain …"): for parsed input stored whole as `jsonb` (specs).
 */
export function unstorableStrings(value: unknown): Array<{ path: PropertyKey[]; message: string }> {
  const found: Array<{ path: PropertyKey[]; message: string }> = [];
  for (const { path, text } of stringsOf(value, [])) {
    const what = unstorableContent(text);
    if (what) found.push({ path, message: `must not contain ${what}` });
  }
  return found;
}

function* stringsOf(value: unknown, path: PropertyKey[]): Generator<{ path: PropertyKey[]; text: string }> {
  if (typeof value === 'string') yield { path, text: value };
  else if (Array.isArray(value)) for (const [i, v] of value.entries()) yield* stringsOf(v, [...path, i]);
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      yield { path: [...path, k], text: k };
      yield* stringsOf(v, [...path, k]);
    }
  }
}

/** Whether `text` holds a UTF-16 surrogate that is not half of a pair. */
export function hasLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text);
}

const LONE = '[\\uD800-\\uDBFF](?![\\uDC00-\\uDFFF])|(?<![\\uD800-\\uDBFF])[\\uDC00-\\uDFFF]';
const LONE_SURROGATE = new RegExp(LONE);
const LONE_SURROGATE_ALL = new RegExp(LONE, 'g');

/** JSON text whose string values are all storable, for a `jsonb` column (the keys are the platform's own). */
export function storableJson(json: string): string {
  return JSON.stringify(JSON.parse(json), (_key, value: unknown) =>
    typeof value === 'string' ? storableText(value) : value,
  );
}
