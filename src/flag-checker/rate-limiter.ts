/**
 * At most `limit` takes per key in each window of `windowMs` (fixed windows, starting at a key's
 * first take). In memory: each replica counts its own checks, so behind N replicas a source gets
 * up to N times the limit; that still bounds brute force, which is all it is for.
 */
export class FixedWindowRateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  /** Counts one take at `nowMs`; returns 0 when allowed, else the ms until the window ends. */
  take(key: string, nowMs: number): number {
    this.forgetEnded(nowMs);
    const window = this.windows.get(key);
    if (window === undefined || nowMs >= window.start + this.windowMs) {
      this.windows.set(key, { start: nowMs, count: 1 });
      return 0;
    }
    if (window.count >= this.limit) return window.start + this.windowMs - nowMs;
    window.count++;
    return 0;
  }

  /** Bounds memory to the sources seen in the last window, however many come and go. */
  private forgetEnded(nowMs: number): void {
    if (this.windows.size < 1024) return;
    for (const [key, window] of this.windows) {
      if (nowMs >= window.start + this.windowMs) this.windows.delete(key);
    }
  }
}
