/** The trainer's metrics lines in a job's log (see job-layout.ts). */
import { METRICS_PREFIX } from './job-layout';

/** A metrics line the trainer printed (`METEOR_METRICS {json}`, anywhere in the line), or null. */
export function parseMetricsLine(line: string): Record<string, unknown> | null {
  const at = line.indexOf(METRICS_PREFIX);
  if (at < 0) return null;
  try {
    const parsed: unknown = JSON.parse(line.slice(at + METRICS_PREFIX.length));
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}
