// Deferred analytics. Batches loaded with `analytics: "deferred"` (the HTTP collector, see
// HTTP_ANALYTICS) only queue their events in their own transaction; analytics.apply_deferred()
// adds everything queued to the rollups in one later transaction. DeferredAnalytics runs it
// every ANALYTICS_INTERVAL_MS, so figures trail the commit by about that much. Queued rows are
// claimed by deleting them: each is counted once, and a crash leaves them for the next round.
import type { Sql } from "../common/db.ts";
import type { Logger } from "../common/log.ts";

export interface DeferredResult {
  /** batches whose quality figures were applied */
  batches: number;
  /** events added to the rollups */
  events: number;
  /** when the oldest applied batch committed its queue rows (null when none) */
  oldestQueuedAt: Date | null;
  /** time spent inside the database */
  ms: number;
}

/** Adds every queued batch and event to the rollups, in one transaction. */
export async function applyDeferred(sql: Sql): Promise<DeferredResult> {
  const [{ result }] = await sql`select analytics.apply_deferred() as result`;
  return {
    batches: Number(result.batches),
    events: Number(result.events),
    oldestQueuedAt: result.oldest_queued_at ? new Date(result.oldest_queued_at) : null,
    ms: Number(result.ms),
  };
}

/** Applies the queue in the background, one round at a time. */
export class DeferredAnalytics {
  #chain: Promise<unknown> = Promise.resolve();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = true;

  constructor(
    private readonly sql: Sql,
    private readonly intervalMs: number,
    private readonly log: Logger,
    private readonly onApplied: (r: DeferredResult) => void = () => {},
  ) {}

  /** Applies what is queued now; rounds never overlap. */
  flush(): Promise<DeferredResult> {
    const round = this.#chain.then(() => applyDeferred(this.sql));
    this.#chain = round.catch(() => {});
    return round.then((r) => {
      if (r.batches || r.events) this.onApplied(r);
      return r;
    });
  }

  /** Starts the rounds: one every intervalMs after the previous one ends. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#schedule();
  }

  /** Stops the rounds and applies what is still queued (errors are logged, not thrown). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    try {
      await this.flush();
    } catch (error) {
      this.log.warn("deferred analytics: last round failed; the queue is applied on next start", {
        error: (error as Error).message,
      });
    }
  }

  #schedule() {
    this.#timer = setTimeout(async () => {
      try {
        await this.flush();
      } catch (error) {
        this.log.warn("deferred analytics round failed: retried next round", {
          error: (error as Error).message,
        });
      }
      if (!this.#stopped) this.#schedule();
    }, this.intervalMs);
  }
}
