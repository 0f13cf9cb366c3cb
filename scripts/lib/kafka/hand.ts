// What the consumer holds in hand: the parts fetched ahead and not loaded yet, cut into
// micro-batches of --max-rows messages or half the byte budget (their CSV built ahead when
// full), the bytes of the messages in hand against that budget, and what a rebalance takes out
// of hand.
import type { TopicFormat } from "./batch.ts";
import { type PartitionBatch, partitionKey, prebuild, type Prebuilt } from "./sink.ts";

export interface Pending {
  part: PartitionBatch;
  /** the bytes of its messages' values */
  bytes: number;
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

/** The bytes of the messages' values (what the byte budget counts). */
export function valueBytes(messages: readonly { value: Uint8Array | null }[]): number {
  let n = 0;
  for (const m of messages) n += m.value?.length ?? 0;
  return n;
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
  const headBytes = valueBytes(head);
  return [
    {
      part: { ...p.part, messages: head },
      bytes: headBytes,
      at: p.at,
      resolve: done,
      reject: fail,
    },
    {
      part: { ...p.part, messages: tail, coversFrom: head[head.length - 1].offset + 1n },
      bytes: p.bytes - headBytes,
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

/**
 * The fetched parts in hand, in fetch order, and the micro-batches cut from them. A micro-batch
 * is full at `maxRows` messages or at `maxBytes / 2` bytes of values, whichever comes first, so
 * that one batch loads while the next is fetched and built within the budget; the consumer
 * stops fetching while `bytes` is at `maxBytes` or more (consumer.ts), so what is in hand stays
 * within the budget plus one fetch.
 */
export class Hand {
  /** fetched parts not in a micro-batch yet, in fetch order */
  buffer: Pending[] = [];
  /** messages in buffer */
  rows = 0;
  /** bytes of the messages in buffer */
  bufferBytes = 0;
  /** full micro-batches (built ahead) waiting for the loader */
  ready: Taken[] = [];
  /** messages fetched and not loaded yet */
  inHand = 0;
  /**
   * bytes of the values of the messages fetched and not loaded yet (a part split between two
   * micro-batches counts until both are loaded)
   */
  bytes = 0;
  /** the most `bytes` has been */
  peakBytes = 0;
  pending = 0;
  /** a micro-batch is full at this many bytes of values */
  readonly maxBatchBytes: number;

  constructor(
    readonly maxRows: number,
    readonly topics: ReadonlyMap<string, TopicFormat>,
    /** the byte budget of what is in hand (fetching pauses at it) */
    readonly maxBytes: number = Infinity,
  ) {
    this.maxBatchBytes = Math.max(1, Math.floor(maxBytes / 2));
  }

  /** in hand: as many messages or bytes as fetching may get ahead (consumer.ts waits) */
  full(fetchAheadRows: number): boolean {
    return this.inHand >= fetchAheadRows || this.bytes >= this.maxBytes;
  }

  /**
   * Puts a fetched part in hand; settled once all of its messages are loaded (or given up on).
   * `added` runs once it is in (the caller starts or wakes the loader there).
   */
  add(part: PartitionBatch, added: () => void): Promise<void> {
    const bytes = valueBytes(part.messages);
    this.pending++;
    this.inHand += part.messages.length;
    this.bytes += bytes;
    this.peakBytes = Math.max(this.peakBytes, this.bytes);
    const settled = () => {
      this.pending--;
      this.inHand -= part.messages.length;
      this.bytes -= bytes;
    };
    return new Promise<void>((resolve, reject) => {
      this.buffer.push({
        part,
        bytes,
        at: performance.now(),
        resolve: () => {
          settled();
          resolve();
        },
        reject: (e) => {
          settled();
          reject(e);
        },
      });
      this.rows += part.messages.length;
      this.bufferBytes += bytes;
      // a backlog makes full micro-batches, their CSV built now, while the loader is busy
      while (this.#batchFull()) this.ready.push(this.take(true));
      added();
    });
  }

  #batchFull() {
    return this.rows > 0 && (this.rows >= this.maxRows || this.bufferBytes >= this.maxBatchBytes);
  }

  /**
   * Takes the next micro-batch from the buffer: up to --max-rows messages and half the byte
   * budget in fetch order (a part is split where the batch is full; one message at least), or
   * all of them when fewer are buffered.
   */
  take(build: boolean): Taken {
    const batch: Pending[] = [];
    let n = 0, bytes = 0;
    while (this.buffer.length > 0 && n < this.maxRows && bytes < this.maxBatchBytes) {
      const p = this.buffer[0];
      const m = p.part.messages.length;
      if (n + m <= this.maxRows && bytes + p.bytes <= this.maxBatchBytes) {
        batch.push(p);
        this.buffer.shift();
        n += m;
        bytes += p.bytes;
        continue;
      }
      // as many of its messages as fit (one at least, in an empty batch)
      let k = 0, b = 0;
      const room = this.maxRows - n;
      for (; k < room && k < m; k++) {
        const size = p.part.messages[k].value?.length ?? 0;
        if (bytes + b + size > this.maxBatchBytes && (k > 0 || n > 0)) break;
        b += size;
      }
      if (k === 0) break;
      if (k === m) {
        batch.push(p);
        this.buffer.shift();
      } else {
        const [head, tail] = split(p, k);
        batch.push(head);
        this.buffer[0] = tail;
      }
      n += k;
      bytes += b;
      break;
    }
    this.rows -= n;
    this.bufferBytes -= bytes;
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
    this.bufferBytes = kept.reduce((n, p) => n + p.bytes, 0);
    for (const p of dropped) p.resolve();
    // the batches built ahead are cut again from what is kept
    while (this.#batchFull()) this.ready.push(this.take(true));
    return dropped.reduce((n, p) => n + p.part.messages.length, 0);
  }
}
