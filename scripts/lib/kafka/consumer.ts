// The Kafka consumer: kafkajs fetches, this module batches and loads. Offsets are never
// committed to Kafka (autoCommit off); on every partition assignment the stored positions are
// read from PostgreSQL and the consumer seeks there. Whatever a fetch returns that was already
// loaded is dropped inside the loading transaction (sink.ts), so a late or missed seek costs
// time, never correctness.
import type { Kafka } from "kafkajs";
import { type ClientSettings, kafkaClient } from "./client.ts";
import type { Sql } from "../common/db.ts";
import type { Logger } from "../common/log.ts";
import type { Settings } from "../batch/mod.ts";
import { type RetryPolicy, sleep, within } from "../common/retry.ts";
import type { TopicFormat } from "./batch.ts";
import { install as installRecordBatches, messagesOf } from "./records.ts";
import type { FlushResult } from "./sink.ts";
import { Hand } from "./hand.ts";
import { Loader } from "./loader.ts";
import { Liveness } from "./liveness.ts";

// the client moved to client.ts; still exported from here for callers of this module
export { type ClientSettings, kafkaClient };

export interface ConsumerOptions {
  client: ClientSettings;
  group: string;
  topics: ReadonlyMap<string, TopicFormat>;
  maxRows: number;
  maxWaitMs: number;
  sql: Sql;
  settings: Settings;
  log: Logger;
  /**
   * The byte budget of this consumer's hand: bytes of message values fetched and not loaded
   * yet. Fetching pauses at it and resumes when a micro-batch has loaded; a micro-batch holds
   * half of it at most. Default 12 MiB (deno task consume: KAFKA_FETCH_AHEAD_MB / --consumers).
   */
  maxBytesInHand?: number;
  /** no fetch from the broker for this long (and nothing in hand): reconnect (default 15 s) */
  stallMs?: number;
  /** how long the group waits for a silent member (a killed consumer) before rebalancing */
  sessionTimeoutMs?: number;
  /** the retry policy (common/retry.ts; default: 250 ms doubling to 30 s, never give up) */
  retry?: RetryPolicy;
  /**
   * A batch failed with an error retrying cannot fix (not an outage: a bug, a broken
   * database): nothing of it was committed. Default: log and throw it to the caller of the
   * batch (kafkajs then stops the consumer); deno task consume exits 1.
   */
  onFatal?: (error: Error) => void;
  /** how often the partitions' ends are read for the lag (0: only at commits) */
  watermarkIntervalMs?: number;
  onFlush?: (r: FlushResult, seconds: number) => void;
  onError?: (error: Error) => void;
}

/** kafkajs errors that mean the member must join the group again (a rebalance) */
const REJOIN = new Set([
  "REBALANCE_IN_PROGRESS",
  "NOT_COORDINATOR_FOR_GROUP",
  "ILLEGAL_GENERATION",
]);

/** micro-batches fetched ahead of the one loading (messages; the byte budget also bounds it) */
const FETCH_AHEAD = 3;

/** the byte budget of a consumer's hand when its options give none */
export const DEFAULT_BYTES_IN_HAND = 12 * 1024 * 1024;

/**
 * The most a fetch request asks for (all its partitions) and per partition, from the budget: a
 * quarter of it, from 64 KiB to kafkajs's default 10 MiB, and 1 MiB (kafkajs's default) a
 * partition at most. (Kafka returns a partition's first record batch whole even when it is
 * larger.)
 */
export function fetchLimits(budget: number): { maxBytes: number; maxBytesPerPartition: number } {
  const maxBytes = Math.floor(Math.min(10 * 1024 * 1024, Math.max(64 * 1024, budget / 4)));
  return { maxBytes, maxBytesPerPartition: Math.min(1024 * 1024, maxBytes) };
}

export class KafkaSource {
  readonly #o: ConsumerOptions;
  readonly #kafka: Kafka;
  #consumer;
  #admin;
  /** the signs of life, the watchdog and the lag report (liveness.ts) */
  readonly #liveness: Liveness;
  /** the parts fetched and not loaded yet, and the micro-batches cut from them (hand.ts) */
  readonly #hand: Hand;
  /** the loop that loads the micro-batches in hand (loader.ts, flush.ts) */
  readonly #loader: Loader;
  #stopping = false;
  /** partitions assigned to this member now */
  assigned: { topic: string; partition: number }[] = [];

  constructor(o: ConsumerOptions) {
    // kafkajs reads fetches by record batch in this process (records.ts): the consumers here
    // are the only ones, and they read the records with messagesOf
    installRecordBatches();
    this.#o = o;
    this.#hand = new Hand(o.maxRows, o.topics, o.maxBytesInHand ?? DEFAULT_BYTES_IN_HAND);
    this.#liveness = new Liveness({
      o,
      loading: () => this.#loader.loading,
      stopping: () => this.#stopping,
      assigned: () => this.assigned,
      partitionEnds: (topic) => this.#partitionEnds(topic),
      reconnect: () => this.#reconnect(),
    });
    this.#loader = new Loader(this.#hand, o.maxWaitMs, {
      o,
      logStart: new Map<string, bigint>(),
      stopping: () => this.#stopping,
      progressed: () => this.#liveness.progressed(),
      seek: (parts) => this.#seek(parts),
      partitionEnds: (topic) => this.#partitionEnds(topic),
    }, () => this.#liveness.alive = Date.now());
    this.#kafka = kafkaClient(o.client);
    this.#consumer = this.#newConsumer();
    this.#admin = this.#kafka.admin();
  }

  #newConsumer() {
    const o = this.#o;
    return this.#kafka.consumer({
      groupId: o.group,
      sessionTimeout: o.sessionTimeoutMs ?? 30_000,
      // a member learns of a rebalance (another member joined or left) at its next heartbeat:
      // every second, not Kafka's 3 s, so a group of several consumers starts loading sooner
      heartbeatInterval: Math.max(
        100,
        Math.min(1_000, Math.floor((o.sessionTimeoutMs ?? 30_000) / 10)),
      ),
      rebalanceTimeout: Math.max(o.sessionTimeoutMs ?? 30_000, 10_000),
      maxWaitTimeInMs: Math.min(o.maxWaitMs, 500),
      ...fetchLimits(this.#hand.maxBytes),
      allowAutoTopicCreation: false,
    });
  }

  async start(): Promise<void> {
    await this.#admin.connect();
    await this.#run();
    this.#liveness.start();
  }

  #reconnecting = false;

  async #reconnect() {
    if (this.#reconnecting || this.#stopping) return;
    this.#reconnecting = true;
    try {
      await this.#reconnectOnce();
    } finally {
      this.#reconnecting = false;
      this.#liveness.alive = Date.now();
    }
  }

  async #reconnectOnce() {
    const old = this.#consumer;
    await Promise.race([old.disconnect().catch(() => {}), sleep(5_000)]);
    this.#consumer = this.#newConsumer();
    await this.#run();
    await Promise.race([this.#admin.disconnect().catch(() => {}), sleep(2_000)]);
    this.#admin = this.#kafka.admin();
    await this.#admin.connect();
  }

  async #run(): Promise<void> {
    const c = this.#consumer;
    c.on(c.events.FETCH, () => this.#liveness.alive = Date.now());
    c.on(c.events.GROUP_JOIN, () => this.#liveness.alive = Date.now());
    const log = this.#o.log;
    c.on(c.events.GROUP_JOIN, (e) => {
      const parts = Object.entries(e.payload.memberAssignment).flatMap(([topic, ps]) =>
        (ps as number[]).map((partition) => ({ topic, partition }))
      );
      this.assigned = parts;
      this.#dropRevoked(parts);
      this.#liveness.lastProgress = Date.now();
      log.info("partitions assigned", {
        group: this.#o.group,
        partitions: parts.map((p) => `${p.topic}/${p.partition}`).join(",") || "none",
      });
      this.#seek(parts).catch((error) =>
        log.warn(
          "could not read stored positions: reading from the earliest message, loaded ones are skipped",
          {
            error: (error as Error).message,
          },
        )
      );
    });
    c.on(c.events.CRASH, (e) => {
      if (!e.payload.restart && !this.#stopping && c === this.#consumer) {
        // kafkajs gives up (e.g. no group coordinator while the broker restarts): start over
        setTimeout(() => this.#reconnect().catch(() => {}), 1_000);
      }
      log.error("kafka consumer crashed", {
        error: String(e.payload.error),
        restart: e.payload.restart,
      });
    });
    await c.connect();
    await c.subscribe({ topics: [...this.#o.topics.keys()], fromBeginning: true });
    await c.run({
      autoCommit: false,
      eachBatchAutoResolve: true,
      partitionsConsumedConcurrently: 64,
      eachBatch: async ({ batch, heartbeat }) => {
        // where the fetch started (kafkajs keeps it on the batch; not in its typings): every
        // consumable message from there on is in this batch
        const fetched = (batch as unknown as { fetchedOffset?: string }).fetchedOffset;
        const from = fetched !== undefined && /^\d+$/.test(fetched) ? BigInt(fetched) : undefined;
        // the records of the fetch's record batches (records.ts), from the fetched offset on
        const all = messagesOf(batch.topic, batch.partition, batch.messages, from);
        if (this.#stopping || all.length === 0) return;
        // the loader cuts the fetch into micro-batches where they are full (Hand.take)
        this.#loader.add({
          topic: batch.topic,
          partition: batch.partition,
          messages: all,
          highWatermark: BigInt(batch.highWatermark),
          coversFrom: from,
        }).catch(() => {});
        // fetch ahead while earlier batches load, up to FETCH_AHEAD micro-batches and the
        // byte budget in hand (the fetch that reaches it is in hand whole: budget + one fetch):
        // safe, because the positions that count are PostgreSQL's, never Kafka's, and the
        // load of a partition's messages that do not follow its stored position is refused.
        // Past that, wait for a batch to load, with a heartbeat after each wait (kafkajs sends
        // one per heartbeat interval at most): it keeps the membership alive while PostgreSQL
        // is slow or down, and tells of a rebalance, which ends this fetch so the member joins
        // again at once (not after the batches in hand have loaded: in the rebalance test, not
        // within 10 s, the other member waiting for it)
        while (this.#hand.full(FETCH_AHEAD * this.#o.maxRows) && !this.#stopping) {
          await Promise.race([this.#loader.batchDone, sleep(2_000)]);
          // bounded: a heartbeat to a broker that went away can wait for good
          const beat = await Promise.race([
            heartbeat().then(() => "ok", (error: Error) => error),
            sleep(3_000).then(() => "slow"),
          ]);
          // kafkajs rejoins the group when eachBatch throws one of these (its isRebalancing)
          if (beat instanceof Error && REJOIN.has((beat as { type?: string }).type ?? "")) {
            throw beat;
          }
        }
      },
    });
  }

  /** Bytes of message values in hand now (fetched, not loaded), and the most so far. */
  get bytesInHand(): { now: number; peak: number; budget: number } {
    return { now: this.#hand.bytes, peak: this.#hand.peakBytes, budget: this.#hand.maxBytes };
  }

  /** Stops fetching, loads what is buffered, leaves the group. */
  async stop(): Promise<void> {
    this.#liveness.stop();
    this.#stopping = true;
    await this.#loader.finish();
    await this.#consumer.disconnect().catch(() => {});
    await this.#admin.disconnect().catch(() => {});
  }

  async #seek(parts: { topic: string; partition: number }[]) {
    if (parts.length === 0) return;
    const rows = await this.#o.sql`
      select * from ingest.kafka_positions(${this.#o.group}, ${this.#o.sql.json(parts)}::jsonb)`;
    for (const r of rows) {
      if (r.next_offset === null) continue; // nothing loaded yet: the earliest message
      this.#consumer.seek({
        topic: r.topic,
        partition: r.partition,
        offset: String(r.next_offset),
      });
    }
  }

  /** Drops from hand what is buffered of partitions this member no longer holds. */
  #dropRevoked(parts: { topic: string; partition: number }[]) {
    const messages = this.#hand.dropRevoked(parts);
    if (messages === 0) return;
    this.#o.log.info(
      "rebalance: messages of partitions another member now holds dropped from hand",
      { messages },
    );
    this.#loader.wake();
  }

  /**
   * A topic's partition ends from the admin client, bounded: a request on a connection the
   * broker dropped can wait for good (seen with kafkajs on Deno), which would also silence the
   * stall checks (liveness.ts).
   */
  #partitionEnds(topic: string) {
    return within(
      this.#admin.fetchTopicOffsets(topic),
      5_000,
      `Kafka, reading the ends of ${topic},`,
    );
  }
}
