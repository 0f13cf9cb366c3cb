// Bounded concurrency without a queue: a request either gets a slot now or is told to retry.

export class Limiter {
  #inFlight = 0;

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`Limit must be >= 1 (got ${max})`);
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** A release function, or null when every slot is taken. */
  tryAcquire(): (() => void) | null {
    if (this.#inFlight >= this.max) return null;
    this.#inFlight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inFlight--;
    };
  }
}
