// One Kafka micro-batch = one PostgreSQL transaction: lock the partitions' stored positions,
// drop what is already loaded, load the rest through the shared staging -> process_batch path,
// advance the positions. The offsets never go to Kafka: PostgreSQL is the only record of them.
import type postgres from "postgres";
import type { Sql } from "../common/db.ts";
import {
  bytesSource,
  crashPoint,
  type LoadResult,
  loadSource,
  scannedSource,
  type Settings,
} from "../batch/mod.ts";
import { type Batch, buildBatch, type Message, type TopicFormat } from "./batch.ts";

export interface PartitionBatch {
  topic: string;
  partition: number;
  /** in offset order */
  messages: Message[];
  /** the partition's end as the fetch saw it */
  highWatermark: bigint;
  /**
   * the offset from which this part holds every consumable message of its partition (where
   * the fetch started, or the offset after the slice before it): offsets between it and the
   * first message hold none (transaction markers, aborted or compacted messages)
   */
  coversFrom?: bigint;
}

export interface FlushResult {
  /** messages loaded by this flush (already-loaded ones skipped) */
  messages: number;
  skipped: number;
  /**
   * partitions whose messages start after the stored position (messages in between were
   * not loaded): nothing of theirs was loaded; the consumer reads them again from there
   */
  gaps: { topic: string; partition: number }[];
  /**
   * messages Kafka deleted (retention) before they were loaded: offsets from..to of the
   * partition never reached PostgreSQL; the position moved past them in this flush
   */
  lost: { topic: string; partition: number; from: bigint; to: bigint }[];
  load?: LoadResult;
  batchId?: number;
}

/** The batch of every message of the parts, built ahead (see prebuild). */
export interface Prebuilt {
  messages: number;
  batch: Batch;
}

/** Builds the batch of all the parts' messages, outside any transaction. */
export function prebuild(
  parts: readonly PartitionBatch[],
  formats: ReadonlyMap<string, TopicFormat>,
): Prebuilt {
  const messages = parts.flatMap((p) => p.messages);
  return { messages: messages.length, batch: buildBatch(messages, formats) };
}

/** A partition's key in the maps of this module (e.g. the logStart of flush). */
export const partitionKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

/**
 * Loads the messages of these partitions not loaded yet, and their positions, in one transaction.
 * logStart: the partitions' earliest retained offsets where the consumer found them past the
 * stored position (see FlushResult.lost).
 */
export async function flush(
  sql: Sql,
  group: string,
  parts: readonly PartitionBatch[],
  formats: ReadonlyMap<string, TopicFormat>,
  cfg: Settings,
  prebuilt?: Prebuilt,
  logStart?: ReadonlyMap<string, bigint>,
): Promise<FlushResult> {
  const out: FlushResult = { messages: 0, skipped: 0, gaps: [], lost: [] };
  if (parts.length === 0) return out;
  await sql.begin(async (tx) => {
    const wanted = parts.map((p) => ({ topic: p.topic, partition: p.partition }));
    const rows = await tx`select * from ingest.kafka_lock(${group}, ${tx.json(wanted)}::jsonb)`;
    const stored = new Map<string, bigint | null>();
    for (const r of rows) {
      stored.set(
        partitionKey(r.topic, r.partition),
        r.next_offset === null ? null : BigInt(r.next_offset),
      );
    }
    const messages: Message[] = [];
    // one position per partition (kafka_commit updates each partition's row once)
    const byPartition = new Map<string, Record<string, unknown>>();
    for (const p of parts) {
      // a flush may hold several batches of one partition: each follows the one before
      const from = stored.get(partitionKey(p.topic, p.partition)) ?? null;
      const fresh = from === null ? p.messages : p.messages.filter((m) => m.offset >= from);
      if (from !== null && fresh.length > 0 && fresh[0].offset > from) {
        const covers = p.coversFrom ?? p.messages[0].offset;
        const start = logStart?.get(partitionKey(p.topic, p.partition));
        if (covers <= from) {
          // the fetch started at or before the stored position: nothing consumable in between
        } else if (start !== undefined && start > from && covers <= start) {
          out.lost.push({ topic: p.topic, partition: p.partition, from, to: start - 1n });
        } else {
          out.gaps.push({ topic: p.topic, partition: p.partition });
          out.skipped += p.messages.length;
          continue;
        }
      }
      out.skipped += p.messages.length - fresh.length;
      if (fresh.length === 0) continue;
      stored.set(partitionKey(p.topic, p.partition), fresh[fresh.length - 1].offset + 1n);
      messages.push(...fresh);
      const k = partitionKey(p.topic, p.partition);
      const seen = byPartition.get(k);
      const next = String(fresh[fresh.length - 1].offset + 1n);
      if (seen) {
        seen.next = next;
        seen.messages = (seen.messages as number) + fresh.length;
        if (p.highWatermark > BigInt(seen.high_watermark as string)) {
          seen.high_watermark = String(p.highWatermark);
        }
      } else {
        byPartition.set(k, {
          topic: p.topic,
          partition: p.partition,
          from: String(fresh[0].offset),
          next,
          high_watermark: String(p.highWatermark),
          messages: fresh.length,
        });
      }
    }
    const positions = [...byPartition.values()];
    if (messages.length === 0) return;
    crashPoint("mid-batch");
    const name = batchName(group, positions);
    // built before the transaction (while the previous batch loaded) when nothing was skipped
    let batch: Batch = prebuilt && messages.length === prebuilt.messages
      ? prebuilt.batch
      : buildBatch(messages, formats);
    let load = await loadBatch(tx, batch, name, cfg);
    if (load.outcome === "rejected") {
      // the fields seen miss a required column: read every message under the full column set
      batch = buildBatch(messages, formats, { fullHeader: true });
      load = await loadBatch(tx, batch, name, cfg);
    }
    if (!load.result) {
      throw new Error(
        `Kafka batch ${name} was not loaded (${load.outcome}: ${load.reason ?? "no reason"})`,
      );
    }
    const { lines, sources } = deadLetterSources(batch, load.result);
    await tx`
      select ingest.kafka_commit(
        ${group}, ${load.result.batch_id}::bigint, ${tx.json(positions as never)}::jsonb,
        ${lines}::bigint[], ${sources}::text[]
      )`;
    out.messages = messages.length;
    out.load = load;
    out.batchId = load.result.batch_id;
  });
  crashPoint("after-commit");
  return out;
}

/**
 * The sources kafka_commit needs: those of the dead-lettered lines when the batch's result
 * lists them all (it lists up to 1,000), else every line's (a large batch's lines and sources
 * are costly to send and join: docs/measurements.md).
 */
export function deadLetterSources(
  batch: Pick<Batch, "lines" | "sources" | "sourceAt">,
  result: { invalid: number; invalid_rows?: { line_no: number | string }[] },
): { lines: number[]; sources: string[] } {
  const dead = result.invalid_rows;
  if (!dead || dead.length !== Number(result.invalid)) {
    return { lines: batch.lines, sources: batch.sources };
  }
  const want = new Set(dead.map((d) => Number(d.line_no)));
  const lines: number[] = [], sources: string[] = [];
  batch.lines.forEach((line, i) => {
    if (want.has(line)) {
      lines.push(line);
      // (one by one: the whole list of a 20,000-message batch is 20,000 strings)
      sources.push(batch.sourceAt(i));
    }
  });
  return { lines, sources };
}

function loadBatch(tx: postgres.TransactionSql, batch: Batch, name: string, cfg: Settings) {
  const source = batch.copy ? scannedSource(batch.copy) : bytesSource(batch.csv);
  return loadSource(tx, source, name, cfg, {
    kind: "kafka",
    malformed: batch.malformed,
  });
}

/** e.g. "kafka:shop-loader:events/0@100-199,events/1@40-80" (first 4 partitions). */
function batchName(group: string, positions: Record<string, unknown>[]): string {
  const parts = positions.slice(0, 4).map((p) =>
    `${p.topic}/${p.partition}@${p.from}-${BigInt(p.next as string) - 1n}`
  );
  if (positions.length > 4) parts.push(`+${positions.length - 4} more`);
  return `kafka:${group}:${parts.join(",")}`;
}
