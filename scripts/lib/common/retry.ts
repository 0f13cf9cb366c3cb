// The one retry policy of every source (files, HTTP, Kafka; docs/reliability.md, "Retries"):
// which errors are worth retrying (the database unreachable, restarting, overloaded, a deadlock
// or serialization failure, no answer in time), exponential backoff with jitter up to
// DB_RETRY_MAX_SECONDS, and when to give up. Plus a circuit breaker that stops hammering a
// database that is down and probes it periodically instead.

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

/**
 * Errors a retry can fix: isTransient, or no answer in time (TimeoutError), or an error whose
 * cause is one (a COPY the driver reports as rejected because its connection went away).
 */
export function isRetryable(error: unknown): boolean {
  for (let e = error, depth = 0; e && depth < 5; e = (e as Error).cause, depth++) {
    if (isTransient(e) || e instanceof TimeoutError) return true;
  }
  return false;
}

export interface RetryPolicy {
  /** the first delay; it doubles with every attempt (full jitter on its upper half) */
  baseMs: number;
  /** the longest delay (DB_RETRY_MAX_SECONDS) */
  maxMs: number;
  /** give up once this long has passed since the first attempt (Infinity: never) */
  giveUpAfterMs: number;
}

/**
 * The policy from config: 250 ms doubling up to DB_RETRY_MAX_SECONDS. `giveUpAfterMs` is the
 * source's: the file ingester's --give-up-after with --once (else never), the Kafka consumer
 * never (a message cannot be skipped), HTTP at once (the client retries after Retry-After).
 */
export function retryPolicy(
  cfg: { DB_RETRY_MAX_SECONDS: number },
  giveUpAfterMs = Infinity,
): RetryPolicy {
  return { baseMs: 250, maxMs: cfg.DB_RETRY_MAX_SECONDS * 1000, giveUpAfterMs };
}

export type RetryDecision =
  | { retry: true; delayMs: number }
  | { retry: false; why: "not retryable" | "gave up" };

/**
 * After attempt `attempt` (0-based) failed with `error`: retry after `delayMs`, or give up,
 * saying why (an error retrying cannot fix, or the policy's time is up).
 */
export function decide(
  policy: RetryPolicy,
  error: unknown,
  attempt: number,
  startedAt: number,
  now = Date.now(),
  rand = Math.random,
): RetryDecision {
  if (!isRetryable(error)) return { retry: false, why: "not retryable" };
  if (now - startedAt >= policy.giveUpAfterMs) return { retry: false, why: "gave up" };
  return { retry: true, delayMs: backoffMs(attempt, policy.baseMs, policy.maxMs, rand) };
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
