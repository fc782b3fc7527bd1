/**
 * Text as PostgreSQL can store it. It takes no U+0000 in `text` ("invalid byte sequence") nor in
 * `jsonb` ("unsupported Unicode escape sequence"), and a model can emit one (byte-fallback
 * tokens); one such reply failed the whole statement it shared with other answers, and since the
 * paid answer was never logged, every retry paid for it again. Each U+0000 becomes U+FFFD, the
 * replacement character: visible, and the rest of the text is kept as it came.
 */
export function storableText(text: string): string {
  return text.includes('\u0000') ? text.replaceAll('\u0000', '\uFFFD') : text;
}
