// Flush and commit: one micro-batch loaded into PostgreSQL (sink.ts's flush, whose transaction
// also moves the partitions' stored positions), retried by the one retry policy
// (common/retry.ts) while the error is one retrying can fix; what Kafka deleted before it was
// loaded (retention) is found and reported here.
import type { Admin } from "kafkajs";
import type { Sql } from "../common/db.ts";
import type { Logger } from "../common/log.ts";
import type { Settings } from "../batch/mod.ts";
import { decide, type RetryPolicy, retryPolicy, sleep, within } from "../common/retry.ts";
import type { TopicFormat } from "./batch.ts";
import type { Pending } from "./hand.ts";
import { flush, type FlushResult, partitionKey, type Prebuilt } from "./sink.ts";

/** What of the consumer's options a flush reads (ConsumerOptions, consumer.ts). */
export interface FlushOptions {
  group: string;
  topics: ReadonlyMap<string, TopicFormat>;
  sql: Sql;
  settings: Settings;
  log: Logger;
  retry?: RetryPolicy;
  onFatal?: (error: Error) => void;
  onFlush?: (r: FlushResult, seconds: number) => void;
  onError?: (error: Error) => void;
}

/** What a flush needs of the consumer around it. */
export interface FlushContext {
  o: FlushOptions;
  /** earliest retained offsets found past a partition's stored position (retention) */
  logStart: Map<string, bigint>;
  /** the consumer is stopping */
  stopping(): boolean;
  /** a flush loaded messages */
  progressed(): void;
  /** seeks the partitions to their positions stored in PostgreSQL */
  seek(parts: { topic: string; partition: number }[]): Promise<void>;
  /** a topic's partition ends (bounded) */
  partitionEnds(topic: string): ReturnType<Admin["fetchTopicOffsets"]>;
}

/** Without a policy from config: 250 ms doubling to 30 s, never giving up on an outage. */
const DEFAULT_RETRY = retryPolicy({ DB_RETRY_MAX_SECONDS: 30 });

/** a batch's transaction not done in this time is given up on and retried */
const FLUSH_TIMEOUT_MS = 30_000;

/**
 * Loads one micro-batch and settles its parts; retries while the error is one retrying fixes
 * (PostgreSQL unreachable: nothing is lost), else reports it (onFatal) and rejects them.
 */
export async function flushRetrying(
  ctx: FlushContext,
  taken: Pending[],
  prebuilt?: Prebuilt,
): Promise<void> {
  const o = ctx.o;
  const firstTry = Date.now();
  for (let attempt = 0;; attempt++) {
    const started = performance.now();
    try {
      // bounded: after the driver lost a connection mid-batch, a query on it can wait for
      // good (docs/measurements.md). A flush given up on here and finishing
      // later is harmless: the retry waits on its partitions' locks and skips what it loaded
      const r = await within(
        flush(
          o.sql,
          o.group,
          taken.map((t) => t.part),
          o.topics,
          o.settings,
          prebuilt,
          ctx.logStart,
        ),
        FLUSH_TIMEOUT_MS,
        "a Kafka batch's transaction",
      );
      o.onFlush?.(r, (performance.now() - started) / 1000);
      if (r.messages > 0) ctx.progressed();
      for (const l of r.lost) {
        o.log.error("offsets deleted by Kafka (retention) before they were loaded: skipped", {
          partition: `${l.topic}/${l.partition}`,
          offsets: `${l.from}-${l.to}`,
          count: String(l.to - l.from + 1n),
        });
        ctx.logStart.delete(partitionKey(l.topic, l.partition));
      }
      if (r.gaps.length > 0) {
        // messages that do not follow the stored position (an earlier batch of theirs was not
        // loaded, or Kafka no longer has the messages at the stored position): read the
        // partitions again from PostgreSQL's positions
        o.log.info("re-reading partitions from their stored positions", {
          partitions: r.gaps.map((g) => `${g.topic}/${g.partition}`).join(","),
        });
        await checkRetention(ctx, r.gaps).catch((error) =>
          o.log.warn("could not read the partitions' earliest offsets", {
            error: (error as Error).message,
          })
        );
        await ctx.seek(r.gaps).catch(() => {});
      }
      if (attempt > 0) {
        o.log.info("database reachable again: batch loaded", { attempts: attempt + 1 });
      }
      for (const t of taken) t.resolve();
      return;
    } catch (error) {
      o.onError?.(error as Error);
      if (ctx.stopping() && attempt >= 2) {
        for (const t of taken) t.reject(error as Error);
        return;
      }
      const next = decide(o.retry ?? DEFAULT_RETRY, error, attempt, firstTry);
      if (!next.retry) {
        o.log.error("batch not loaded, nothing committed: an error retrying does not fix", {
          error: (error as Error).message,
          hint:
            "fix the cause and start the consumer again: it resumes from the positions in PostgreSQL",
        });
        o.onFatal?.(error as Error);
        for (const t of taken) t.reject(error as Error);
        return;
      }
      o.log.warn("batch not loaded, nothing committed: retrying", {
        error: (error as Error).message,
        retry_in_ms: next.delayMs,
      });
      await sleep(next.delayMs);
    }
  }
}

/**
 * Kafka deletes old messages (retention, deleteRecords): when a partition's earliest retained
 * offset is past its stored position, the messages in between can never be loaded, and the
 * next flush may move the position past them (reported as lost).
 */
async function checkRetention(ctx: FlushContext, gaps: { topic: string; partition: number }[]) {
  const stored = await ctx.o.sql`
    select * from ingest.kafka_positions(${ctx.o.group}, ${ctx.o.sql.json(gaps)}::jsonb)`;
  const next = new Map<string, bigint>();
  for (const r of stored) {
    if (r.next_offset !== null) {
      next.set(partitionKey(r.topic, r.partition), BigInt(r.next_offset));
    }
  }
  for (const topic of new Set(gaps.map((g) => g.topic))) {
    for (const p of await ctx.partitionEnds(topic)) {
      const k = partitionKey(topic, p.partition), at = next.get(k);
      if (at !== undefined && BigInt(p.low) > at) ctx.logStart.set(k, BigInt(p.low));
    }
  }
}
