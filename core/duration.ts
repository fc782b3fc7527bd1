/** Durations as written in specs (`500ms`, `30s`, `5m`, `2h`, `1d`). */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export const DURATION_PATTERN = /^(\d+)(ms|s|m|h|d)$/;

export function durationMs(d: string): number {
  const m = DURATION_PATTERN.exec(d);
  if (!m) throw new Error(`not a duration: "${d}" (write e.g. 30s, 5m, 2h)`);
  return Number(m[1]) * (UNIT_MS[m[2] as string] as number);
}
