// The batch protocol, in one place: open_batch -> COPY of the scanner's records -> the checks
// and the load (process_batch: every rule in SQL) inside the caller's transaction, which then
// commits. Files (load.ts), the HTTP group commit and Kafka all go through stageBatch.
import type postgres from "postgres";
import type { Sql } from "../common/db.ts";
import { stageChunks } from "./chunks.ts";
import { copyStream } from "./copy.ts";
import { runSlices, runSlicesRollingUp } from "./slices.ts";
import { type MalformedRow, rawText } from "./csv.ts";
import { crashPoint, type Settings } from "./settings.ts";

export interface BatchResult {
  batch_id: number;
  rows: number;
  valid: number;
  invalid: number;
  duplicates: number;
  late: number;
  validity_rate: number | null;
  reasons: Record<string, number>;
  alert: boolean;
  process_ms: number;
  /** the first 1,000 dead-lettered lines of the batch, with their reasons */
  invalid_rows?: { line_no: number; reasons: string[] }[];
}

export function malformedJson(rows: MalformedRow[]) {
  return rows.map((m) => ({
    line_no: m.lineNo,
    raw: rawText(m.raw),
    raw_base64: btoa(Array.from(m.raw, (b) => String.fromCharCode(b)).join("")),
    why: m.why,
  }));
}

/** ingest.open_batch's answer: the staging table of a "new" batch, or why it is not one. */
export interface Opened {
  batch_id: number;
  status: string;
  reason?: string;
  copy_table: string;
  copy_columns: string;
  unknown_columns?: string[];
  schema_version?: number;
  expected_schema_version?: number | null;
}

export interface BatchSpec {
  kind: "file" | "http" | "kafka";
  /** the batch's name (files: the file name; http:<uuid>; kafka:<topic>…) */
  name: string;
  bytes: number;
  /** the header as read; null when it could not be read (then `rejected` says why) */
  header: string[] | null;
  /** set when the batch is rejected before it is staged (an unreadable header) */
  rejected?: string;
  /** the records, as the CSV scanner writes them for COPY (csv.ts) */
  records: AsyncIterable<Uint8Array>;
  /** once the records are streamed: how many COPY took, and the malformed rows beside them */
  counted(): { rows: number; malformed: MalformedRow[] };
  settings: Settings;
  /** "deferred": the batch only queues its analytics (analytics/deferred.ts) */
  analytics?: "inline" | "deferred";
  /** who sent the batch, for the schema registry's pins (ingest.source_schemas) */
  sourceKey?: string;
  /**
   * files only: stage and check in this many sessions of `sql` at once (chunks.ts), then
   * finish the batch in as many slice sessions, prepared (two-phase commit,
   * ingest/slices.ts): `onPrepared` gets their transactions, which the caller commits once
   * `tx` committed (or rolls back)
   */
  chunks?: { sql: Sql; n: number; role?: string; onPrepared(gids: string[]): void };
  /** after open_batch found the batch rejected or empty (files: their ledger entry) */
  onNotNew?(opened: Opened): Promise<void>;
  /** after the COPY, before the checks (files: the content hash claimed in the ledger) */
  onCopied?(): Promise<void>;
}

export interface Staged {
  opened: Opened;
  /** process_batch's counts (absent when the batch was not "new") */
  result?: BatchResult;
  copyMs?: number;
  /** rows each chunk session checked, and where */
  chunks?: number[];
  chunksCheckedOn?: "sessions" | "workers";
  /** slice sessions that finished the batch (prepared, committed after `tx`) */
  slices?: number;
  /** a batch in slices: its rollups applied while the slices ran, or after them */
  rolledUp?: "ahead" | "after";
}

/**
 * Opens, stages (COPY) and processes one batch inside the caller's transaction `tx`; the
 * caller commits. A batch open_batch does not find "new" (rejected, empty) is not staged.
 * The staged row count is checked in SQL against the scanner's (postgres.js 3.4.9 can lose
 * a COPY error: process_batch refuses a count that does not match).
 */
export async function stageBatch(tx: postgres.TransactionSql, spec: BatchSpec): Promise<Staged> {
  if (spec.sourceKey) {
    await tx`select set_config('pipeline.source_key', ${spec.sourceKey}, true)`;
  }
  const n = spec.chunks?.n ?? 1;
  // (one-session batches call the 4-argument form, which every schema version has)
  const [{ opened }] = n > 1
    ? await tx`
      select ingest.open_batch(${spec.kind}, ${spec.name}, ${spec.bytes}, ${spec.header}::text[],
        ${n}::int) as opened`
    : await tx`
      select ingest.open_batch(${spec.kind}, ${spec.name}, ${spec.bytes}, ${spec.header}::text[])
        as opened`;
  const o = opened as Opened;
  if (spec.rejected !== undefined) Object.assign(o, { status: "rejected", reason: spec.rejected });
  if (o.status !== "new") {
    await spec.onNotNew?.(o);
    return { opened: o };
  }
  const out: Staged = { opened: o };
  const started = performance.now();
  if (n > 1) {
    const on = { cluster: false };
    out.chunks = await stageChunks(
      spec.chunks!.sql,
      o.batch_id,
      spec.header!,
      n,
      spec.records,
      spec.settings,
      spec.chunks!.role,
      on,
    );
    out.chunksCheckedOn = on.cluster ? "workers" : "sessions";
    crashPoint("after-chunks");
  } else {
    await copyStream(
      tx,
      `copy ${o.copy_table} (${o.copy_columns}) from stdin (format csv)`,
      spec.records,
    );
  }
  out.copyMs = performance.now() - started;
  crashPoint("after-copy");
  await spec.onCopied?.();
  const { rows, malformed } = spec.counted();
  const expected = rows + malformed.length;
  if (spec.analytics === "deferred") {
    await tx`select set_config('pipeline.analytics', 'deferred', true)`;
  }
  const copyMs = Math.round(out.copyMs * 10) / 10;
  if (n > 1 && out.chunksCheckedOn === "sessions") {
    // every core finishes a slice of the batch (by event_id), prepared, while this
    // transaction rolls the batch up (deferred analytics: queued after them); it then records
    // the decision (db/functions/ingest/slices.sql)
    const slices = spec.analytics === "deferred"
      ? {
        ...await runSlices(spec.chunks!.sql, o.batch_id, n, n, spec.name, spec.chunks!.role),
        rolledUp: undefined,
      }
      : await runSlicesRollingUp(
        tx,
        spec.chunks!.sql,
        o.batch_id,
        n,
        n,
        spec.name,
        spec.chunks!.role,
      );
    spec.chunks!.onPrepared(slices.gids);
    out.rolledUp = slices.rolledUp;
    const [{ result }] = await tx`
      select ingest.finish_slices(
        ${o.batch_id}::bigint, ${n}::int, ${expected}::bigint,
        ${tx.json(malformedJson(malformed))}::jsonb, ${tx.json(spec.settings)}::jsonb,
        ${copyMs}::numeric, ${tx.json(slices.results as unknown as postgres.JSONValue)}::jsonb
      ) as result`;
    out.slices = n;
    out.result = result as BatchResult;
    return out;
  }
  const [{ result }] = n > 1
    ? await tx`
      select ingest.process_chunks(
        ${o.batch_id}::bigint, ${n}::int, ${expected}::bigint,
        ${tx.json(malformedJson(malformed))}::jsonb, ${tx.json(spec.settings)}::jsonb,
        ${copyMs}::numeric
      ) as result`
    : await tx`
      select ingest.process_batch(
        ${o.batch_id}::bigint, ${expected}::bigint,
        ${tx.json(malformedJson(malformed))}::jsonb, ${tx.json(spec.settings)}::jsonb,
        ${copyMs}::numeric
      ) as result`;
  out.result = result as BatchResult;
  return out;
}

/** One staged part of a grouped batch (its lines offset by part * partLines), as counted. */
export interface PartCounts {
  part: number;
  staged: number;
  valid: number;
  duplicates: number;
  invalid: number;
  late: number;
  validity_rate: string | null;
  invalid_rows: { line_no: number; reasons: string[] }[];
}

/**
 * A processed batch's outcome split by part (ingest.batch_parts): parts are line ranges of
 * `partLines` each, so several requests staged as one batch get their own counts back.
 */
export async function batchParts(
  tx: postgres.TransactionSql,
  batchId: number,
  partLines: number,
  parts: number,
): Promise<PartCounts[]> {
  return await tx`
    select part, staged::int, valid::int, duplicates::int, invalid::int, late::int,
           validity_rate, invalid_rows
    from ingest.batch_parts(${batchId}::bigint, ${partLines}::bigint, ${parts}::int)` as unknown as PartCounts[];
}
