/**
 * The timer that renews a process's leases (endpoint slots, request claims): running while any is
 * held, every `everyMs`, never keeping the process alive on its own.
 */
export class RenewalTimer {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly everyMs: number,
    private readonly renew: () => Promise<void>,
  ) {}

  /** Something is held: renew from now on (a no-op while running). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.renew(), this.everyMs);
    this.timer.unref();
  }

  /** Nothing is held any more. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
