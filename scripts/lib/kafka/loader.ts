// The loader: one loop that takes micro-batches from hand (hand.ts) in order and loads each
// (flush.ts), while the consumer goes on fetching ahead.
import type { Hand, Pending } from "./hand.ts";
import { type FlushContext, flushRetrying } from "./flush.ts";
import type { PartitionBatch, Prebuilt } from "./sink.ts";

export class Loader {
  /** a batch is being loaded (or retried while PostgreSQL is down) */
  loading = false;
  /** micro-batches loaded (or given up on) so far, and a promise settled at the next one */
  batchesDone = 0;
  #onBatchDone!: () => void;
  batchDone = new Promise<void>((r) => this.#onBatchDone = r);
  /** wakes the loader (new parts, or stopping) */
  #wake: (() => void) | undefined;
  #loader: Promise<void> | undefined;

  constructor(
    readonly hand: Hand,
    /** --max-wait-ms */
    readonly maxWaitMs: number,
    readonly ctx: FlushContext,
    /** after each micro-batch, loaded or not (a sign of life) */
    readonly loaded: () => void,
  ) {}

  /** Wakes the loop (new parts in hand, or stopping). */
  wake() {
    this.#wake?.();
  }

  /** Once stopping: wakes the loop and waits until it has loaded what is in hand. */
  async finish(): Promise<void> {
    this.#wake?.();
    await this.#loader;
  }

  /** Puts a fetched part in hand and starts the loop if it is not running. */
  add(part: PartitionBatch): Promise<void> {
    return this.hand.add(part, () => {
      this.#loader ??= this.#loadAll();
      this.#wake?.();
    });
  }

  /**
   * The loader: full micro-batches first, in order; a part-full one once its oldest message has
   * waited --max-wait-ms (so a backlog loads in full batches, a trickle within max-wait), or at
   * once when the hand is at its byte budget.
   * Ends when stopping and nothing is left.
   */
  async #loadAll(): Promise<void> {
    const maxWait = this.maxWaitMs;
    while (true) {
      const next = this.hand.ready.shift();
      if (next) {
        await this.#load(next.batch, next.prebuilt);
        continue;
      }
      const due = this.hand.rows > 0 ? this.hand.buffer[0].at + maxWait : Infinity;
      // at the byte budget, fetching waits for a batch to load: waiting here would only idle
      const atBudget = this.hand.bytes >= this.hand.maxBytes;
      if (
        this.hand.rows > 0 && (this.ctx.stopping() || atBudget || performance.now() >= due)
      ) {
        const taken = this.hand.take(true);
        await this.#load(taken.batch, taken.prebuilt);
        continue;
      }
      if (this.ctx.stopping()) {
        this.#loader = undefined;
        return;
      }
      await new Promise<void>((resolve) => {
        const timer = due === Infinity
          ? undefined
          : setTimeout(resolve, Math.max(0, due - performance.now()));
        this.#wake = () => {
          if (timer !== undefined) clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /** Loads one micro-batch; retries while PostgreSQL is unreachable (nothing is lost). */
  async #load(taken: Pending[], prebuilt?: Prebuilt): Promise<void> {
    this.loading = true;
    try {
      await flushRetrying(this.ctx, taken, prebuilt);
    } finally {
      this.loading = false;
      this.loaded();
      this.batchesDone++;
      this.#onBatchDone();
      this.batchDone = new Promise((r) => this.#onBatchDone = r);
    }
  }
}
