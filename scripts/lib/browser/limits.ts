// Token buckets for an endpoint that is public by nature: per public key (events a minute) and
// per client IP (requests a minute). In this process's memory: each collector process applies
// the limits on its own (docs/tracking.md#abuse-limits). The IP is a map key here and nowhere
// else: it is never logged nor stored.

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimits {
  #buckets = new Map<string, Bucket>();
  #sweptAt = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * Takes `cost` tokens from the bucket `id` (capacity `perMinute`, refilled continuously);
   * returns 0 when taken, else the seconds until they would be there (nothing taken).
   */
  take(id: string, cost: number, perMinute: number): number {
    const now = this.now();
    this.#sweep(now);
    const b = this.#buckets.get(id) ?? { tokens: perMinute, at: now };
    b.tokens = Math.min(perMinute, b.tokens + (now - b.at) * perMinute / 60_000);
    b.at = now;
    this.#buckets.set(id, b);
    if (cost > perMinute) return 60;
    if (b.tokens >= cost) {
      b.tokens -= cost;
      return 0;
    }
    return Math.max(1, Math.ceil((cost - b.tokens) * 60 / perMinute));
  }

  get size(): number {
    return this.#buckets.size;
  }

  /** Once a minute: buckets untouched for a minute are full again, so they are dropped. */
  #sweep(now: number) {
    if (now - this.#sweptAt < 60_000) return;
    this.#sweptAt = now;
    for (const [id, b] of this.#buckets) if (now - b.at >= 60_000) this.#buckets.delete(id);
  }
}
