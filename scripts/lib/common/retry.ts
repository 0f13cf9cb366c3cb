// Database outages: exponential backoff with jitter, and a circuit breaker that stops
// hammering a database that is down and probes it periodically instead.

/** SQLSTATE classes and socket errors that mean "the database is unreachable right now". */
export function isTransient(error: unknown): boolean {
  const e = error as { code?: string; errno?: string; message?: string };
  const code = e?.code ?? "";
  // connection, shutdown, insufficient resources, deadlock or serialization failure
  if (/^(08|57P0|53|40P01|40001)/.test(code)) return true;
  if (
    [
      "ECONNREFUSED",
      "ECONNRESET",
      "EPIPE",
      "ETIMEDOUT",
      "CONNECT_TIMEOUT",
      "CONNECTION_CLOSED",
      "CONNECTION_ENDED",
      "CONNECTION_DESTROYED",
      "ENOTCONN",
    ].includes(code)
  ) return true;
  const msg = e?.message ?? "";
  return /connection|ECONNREFUSED|terminat|Connection reset|broken pipe/i.test(msg) &&
    !/violates/.test(msg);
}

/** Delay before retry `attempt` (0-based): base * 2^attempt, capped, with full jitter. */
export function backoffMs(attempt: number, baseMs = 250, maxMs = 30_000, rand = Math.random) {
  const ceiling = Math.min(maxMs, baseMs * 2 ** attempt);
  return Math.round(ceiling / 2 + rand() * (ceiling / 2));
}

export type BreakerState = "closed" | "open";

/** Counts consecutive failures; after `threshold` it opens until a probe succeeds. */
export class CircuitBreaker {
  state: BreakerState = "closed";
  failures = 0;
  openedAt = 0;

  constructor(readonly threshold: number) {}

  success(): boolean {
    const wasOpen = this.state === "open";
    this.failures = 0;
    this.state = "closed";
    return wasOpen;
  }

  failure(now = Date.now()): boolean {
    this.failures++;
    if (this.state === "closed" && this.failures >= this.threshold) {
      this.state = "open";
      this.openedAt = now;
      return true;
    }
    return false;
  }
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

export class TimeoutError extends Error {
  override name = "TimeoutError";
}

/** Rejects with TimeoutError when `p` has not settled within `ms`. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new TimeoutError(`${what} did not answer within ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
