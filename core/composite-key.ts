/** One string for a tuple of key parts (a Map key): NUL cannot occur in the parts we join. */
export function compositeKey(...parts: Array<string | number>): string {
  return parts.join('\u0000');
}
