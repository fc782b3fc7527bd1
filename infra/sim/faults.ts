/**
 * Failure injection and latency jitter. Seeded, so a test run with the same seed and request
 * order sees the same faults; fault kinds rotate so every configured kind shows up.
 */
import type { FaultKind } from './protocol';

export const ALL_FAULT_KINDS: readonly FaultKind[] = ['429', '500', 'timeout'];

/** mulberry32: small, fast, good enough for simulation noise. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}

export interface FaultConfig {
  failRate: number;
  faultKinds: FaultKind[];
  hangMs: number;
  /** Retry-After of injected 429s: seconds, or an HTTP date. */
  retryAfter: string;
}

export class FaultInjector {
  private rng: Rng;
  private turn = 0;
  /** Requests still to fail whatever failRate says (failNext). */
  private forced = 0;

  constructor(
    private readonly seed: number,
    public config: FaultConfig,
  ) {
    this.rng = new Rng(seed);
  }

  update(partial: Partial<FaultConfig>): void {
    this.config = {
      failRate: partial.failRate ?? this.config.failRate,
      faultKinds:
        partial.faultKinds && partial.faultKinds.length > 0
          ? [...partial.faultKinds]
          : this.config.faultKinds,
      hangMs: partial.hangMs ?? this.config.hangMs,
      retryAfter: partial.retryAfter ?? this.config.retryAfter,
    };
  }

  /** The next `count` chat requests get a fault (kinds in rotation), whatever failRate says. */
  failNext(count: number): void {
    this.forced = Math.max(0, count);
  }

  /** The fault to inject into this request, if any. */
  decide(): FaultKind | undefined {
    const { failRate, faultKinds } = this.config;
    if (this.forced > 0 && faultKinds.length > 0) {
      this.forced--;
      const kind = faultKinds[this.turn % faultKinds.length];
      this.turn++;
      return kind;
    }
    if (failRate <= 0 || faultKinds.length === 0) return undefined;
    if (failRate < 1 && this.rng.next() >= failRate) return undefined;
    const kind = faultKinds[this.turn % faultKinds.length];
    this.turn++;
    return kind;
  }

  /** `mean` ±10%. */
  jitter(mean: number): number {
    if (mean <= 0) return 0;
    return Math.round(mean * (0.9 + 0.2 * this.rng.next()));
  }

  restart(): void {
    this.rng = new Rng(this.seed);
    this.turn = 0;
    this.forced = 0;
  }
}
