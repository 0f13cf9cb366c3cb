// The consumer's liveness: the signs of life from the broker, the watchdog that reconnects when
// there are none, and the lag report (the partitions' ends into PostgreSQL), which also finds
// a client that fetches nothing while messages wait.
import type { Admin } from "kafkajs";
import type { Sql } from "../common/db.ts";
import type { Logger } from "../common/log.ts";
import type { TopicFormat } from "./batch.ts";

/** What of the consumer's options the liveness checks read (ConsumerOptions, consumer.ts). */
export interface LivenessOptions {
  group: string;
  topics: ReadonlyMap<string, TopicFormat>;
  sql: Sql;
  log: Logger;
  stallMs?: number;
  watermarkIntervalMs?: number;
}

/** What the liveness checks need of the consumer around them. */
export interface LivenessContext {
  o: LivenessOptions;
  /** a batch is being loaded (or retried while PostgreSQL is down) */
  loading(): boolean;
  stopping(): boolean;
  /** partitions assigned to this member now */
  assigned(): { topic: string; partition: number }[];
  /** a topic's partition ends (bounded) */
  partitionEnds(topic: string): ReturnType<Admin["fetchTopicOffsets"]>;
  /** reconnects to Kafka from scratch (once at a time) */
  reconnect(): Promise<void>;
}

export class Liveness {
  /** last sign of life from the broker (a fetch, a heartbeat) or of work in hand */
  alive = Date.now();
  /** when a flush last loaded messages (or the partitions were assigned) */
  lastProgress = Date.now();
  /** watermark reports failed in a row (the admin client lost the broker) */
  #adminFailures = 0;
  /** reconnects for a stall since messages were last loaded */
  #stalls = 0;
  #watchdog: ReturnType<typeof setInterval> | undefined;
  #watermarks: ReturnType<typeof setInterval> | undefined;
  #reporting = false;

  constructor(readonly ctx: LivenessContext) {}

  /** Starts the lag report and the watchdog. */
  start() {
    const every = this.ctx.o.watermarkIntervalMs ?? 5_000;
    if (every > 0) this.#watermarks = setInterval(() => this.#reportWatermarks(), every);
    // A broker restart can leave the client waiting on a dead connection for good (seen with
    // kafkajs on Deno): no fetch and no work in hand for stallMs means reconnect from scratch.
    const stallMs = this.ctx.o.stallMs ?? 15_000;
    this.#watchdog = setInterval(() => {
      if (this.ctx.loading()) this.alive = Date.now();
      if (this.ctx.stopping() || Date.now() - this.alive < stallMs) return;
      this.alive = Date.now();
      this.ctx.o.log.warn("no word from Kafka: reconnecting", { silent_ms: stallMs });
      this.ctx.reconnect().catch((error) =>
        this.ctx.o.log.warn("reconnect failed: trying again", { error: (error as Error).message })
      );
    }, 1_000);
  }

  /** Stops the lag report and the watchdog. */
  stop() {
    if (this.#watermarks !== undefined) clearInterval(this.#watermarks);
    if (this.#watchdog !== undefined) clearInterval(this.#watchdog);
  }

  /** A flush loaded messages. */
  progressed() {
    this.lastProgress = Date.now();
    this.#stalls = 0;
  }

  async #reportWatermarks() {
    if (this.#reporting) return; // the one before is still waiting (partitionEnds is bounded)
    this.#reporting = true;
    try {
      await this.#reportWatermarksOnce();
    } finally {
      this.#reporting = false;
    }
  }

  async #reportWatermarksOnce() {
    const stallMs = this.ctx.o.stallMs ?? 15_000;
    const marks: { topic: string; partition: number; high_watermark: string }[] = [];
    const mine = new Set(this.ctx.assigned().map((p) => `${p.topic}/${p.partition}`));
    try {
      for (const topic of this.ctx.o.topics.keys()) {
        for (const p of await this.ctx.partitionEnds(topic)) {
          if (mine.has(`${topic}/${p.partition}`)) {
            marks.push({ topic, partition: p.partition, high_watermark: p.high });
          }
        }
      }
      this.#adminFailures = 0;
    } catch (error) {
      this.ctx.o.log.debug("partition ends not read", { error: (error as Error).message });
      // the admin client has not reached the broker for stallMs: start over
      if (++this.#adminFailures * (this.ctx.o.watermarkIntervalMs ?? 5_000) >= stallMs) {
        this.#adminFailures = 0;
        this.ctx.o.log.warn("the partitions' ends cannot be read: reconnecting to Kafka", {
          error: (error as Error).message,
        });
        await this.ctx.reconnect().catch(() => {});
      }
      return;
    }
    try {
      if (marks.length === 0) return;
      await this.ctx.o.sql`
        select ingest.kafka_report_watermarks(${this.ctx.o.group}, ${
        this.ctx.o.sql.json(marks)
      }::jsonb)`;
      // messages wait in my partitions, yet nothing has been loaded for a while and nothing is
      // being loaded: the client is stuck (seen with kafkajs on fresh topics); start over. The
      // wait doubles after each such reconnect that brought nothing (a partition whose last
      // offsets are transaction markers shows a lag of 1 for good)
      const wait = stallMs * Math.min(2 ** this.#stalls, 20);
      if (this.ctx.loading() || this.ctx.stopping() || Date.now() - this.lastProgress < wait) {
        return;
      }
      const lag = await this.ctx.o
        .sql`select * from ingest.kafka_lag() where consumer_group = ${this.ctx.o.group}`;
      if (lag.some((r) => mine.has(`${r.topic}/${r.partition}`) && Number(r.lag) > 0)) {
        this.lastProgress = Date.now();
        this.#stalls++;
        this.ctx.o.log.warn("messages wait but none are loaded: reconnecting to Kafka", {
          silent_ms: wait,
        });
        await this.ctx.reconnect();
      }
    } catch (error) {
      this.ctx.o.log.debug("lag not reported", { error: (error as Error).message });
    }
  }
}
