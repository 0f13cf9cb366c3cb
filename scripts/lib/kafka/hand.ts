// What the consumer holds in hand: the parts fetched ahead and not loaded yet, cut into
// micro-batches of --max-rows messages (their CSV built ahead when full), and what a rebalance
// takes out of hand.
import type { TopicFormat } from "./batch.ts";
import { type PartitionBatch, partitionKey, prebuild, type Prebuilt } from "./sink.ts";

export interface Pending {
  part: PartitionBatch;
  /** when its messages were fetched (performance.now()) */
  at: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** A micro-batch taken from the buffer, its CSV built ahead when it was taken full. */
export interface Taken {
  batch: Pending[];
  prebuilt?: Prebuilt;
}

/**
 * Splits a buffered part after its first `n` messages; the part's fetch is settled once both
 * pieces are (the second piece covers from the offset after the first's last message).
 */
function split(p: Pending, n: number): [Pending, Pending] {
  let left = 2;
  let failed = false;
  const done = () => {
    if (--left === 0 && !failed) p.resolve();
  };
  const fail = (e: Error) => {
    if (!failed) {
      failed = true;
      p.reject(e);
    }
  };
  const head = p.part.messages.slice(0, n), tail = p.part.messages.slice(n);
  return [
    { part: { ...p.part, messages: head }, at: p.at, resolve: done, reject: fail },
    {
      part: { ...p.part, messages: tail, coversFrom: head[head.length - 1].offset + 1n },
      at: p.at,
      resolve: done,
      reject: fail,
    },
  ];
}

/**
 * What a member keeps in hand after a rebalance: the parts of the batches built ahead, then the
 * buffer (fetch order), less the parts of partitions it no longer holds, whose new owner reads
 * them from the position stored in PostgreSQL. Loading them anyway would be correct (the flush
 * skips what the owner loaded) but costly: both members fetch and build them, and one waits
 * for the other's transaction on the partition's stored position (docs/measurements.md).
 */
export function keepAssigned<P extends { part: { topic: string; partition: number } }>(
  ready: readonly { batch: readonly P[] }[],
  buffer: readonly P[],
  assigned: readonly { topic: string; partition: number }[],
): { kept: P[]; dropped: P[] } {
  const mine = new Set(assigned.map((a) => partitionKey(a.topic, a.partition)));
  const kept: P[] = [], dropped: P[] = [];
  for (const p of [...ready.flatMap((t) => t.batch), ...buffer]) {
    (mine.has(partitionKey(p.part.topic, p.part.partition)) ? kept : dropped).push(p);
  }
  return { kept, dropped };
}

/** The fetched parts in hand, in fetch order, and the micro-batches cut from them. */
export class Hand {
  /** fetched parts not in a micro-batch yet, in fetch order */
  buffer: Pending[] = [];
  /** messages in buffer */
  rows = 0;
  /** full micro-batches (built ahead) waiting for the loader */
  ready: Taken[] = [];
  /** messages fetched and not loaded yet */
  inHand = 0;
  pending = 0;

  constructor(
    readonly maxRows: number,
    readonly topics: ReadonlyMap<string, TopicFormat>,
  ) {}

  /**
   * Puts a fetched part in hand; settled once all of its messages are loaded (or given up on).
   * `added` runs once it is in (the caller starts or wakes the loader there).
   */
  add(part: PartitionBatch, added: () => void): Promise<void> {
    this.pending++;
    this.inHand += part.messages.length;
    return new Promise<void>((resolve, reject) => {
      this.buffer.push({
        part,
        at: performance.now(),
        resolve: () => {
          this.pending--;
          this.inHand -= part.messages.length;
          resolve();
        },
        reject: (e) => {
          this.pending--;
          this.inHand -= part.messages.length;
          reject(e);
        },
      });
      this.rows += part.messages.length;
      // a backlog makes full micro-batches, their CSV built now, while the loader is busy
      while (this.rows >= this.maxRows) this.ready.push(this.take(true));
      added();
    });
  }

  /**
   * Takes the next micro-batch from the buffer: --max-rows messages in fetch order (a part is
   * split where the batch is full), or all of them when fewer are buffered.
   */
  take(build: boolean): Taken {
    const batch: Pending[] = [];
    let n = 0;
    while (this.buffer.length > 0 && n < this.maxRows) {
      const p = this.buffer[0];
      const m = p.part.messages.length;
      if (n + m <= this.maxRows) {
        batch.push(p);
        this.buffer.shift();
        n += m;
      } else {
        const [head, tail] = split(p, this.maxRows - n);
        batch.push(head);
        this.buffer[0] = tail;
        n = this.maxRows;
      }
    }
    this.rows -= n;
    let prebuilt: Prebuilt | undefined;
    if (build) {
      try {
        prebuilt = prebuild(batch.map((t) => t.part), this.topics);
      } catch {
        prebuilt = undefined; // flush builds it again, and reports what is wrong
      }
    }
    return { batch, prebuilt };
  }

  /**
   * Drops from hand what is buffered of partitions this member no longer holds; returns how
   * many messages were dropped.
   */
  dropRevoked(parts: { topic: string; partition: number }[]): number {
    const { kept, dropped } = keepAssigned(this.ready, this.buffer, parts);
    if (dropped.length === 0) return 0;
    this.ready = [];
    this.buffer = kept;
    this.rows = kept.reduce((n, p) => n + p.part.messages.length, 0);
    for (const p of dropped) p.resolve();
    // the batches built ahead are cut again from what is kept
    while (this.rows >= this.maxRows) this.ready.push(this.take(true));
    return dropped.reduce((n, p) => n + p.part.messages.length, 0);
  }
}
