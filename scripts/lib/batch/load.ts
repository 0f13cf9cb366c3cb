// Loads one CSV file (or one in-memory batch) in ONE transaction: the batch protocol
// (stage.ts) over the CSV scanner's records, plus the file ledger: a name lock, the content
// hash claimed after the COPY, a duplicate file rolled back.
import { createHash } from "node:crypto";
import type postgres from "postgres";
import type { Sql } from "../common/db.ts";
import { CsvScanner, HeaderError, type MalformedRow } from "./csv.ts";
import { crashPoint, pausePoint, type Settings } from "./settings.ts";
import { type BatchResult, stageBatch } from "./stage.ts";
import { commitPrepared, recoverPrepared, rollbackPrepared } from "./slices.ts";

const CHUNK = 1 << 20;

/** The file grew or shrank while it was read: a producer is still writing it. */
export class FileChangedError extends Error {
  override name = "FileChangedError";
}

export type Outcome = "loaded" | "empty" | "rejected" | "duplicate_file" | "busy";

export interface LoadResult {
  outcome: Outcome;
  name: string;
  /** the content hash (files only: the ledger key) */
  sha256?: string;
  bytes: number;
  /** why a file was rejected, or which file held the same content first */
  reason?: string;
  /** ledger status of the first copy, for duplicate_file */
  originalStatus?: string;
  unknownColumns?: string[];
  /** the schema version the header declared, and the one its source is pinned to (if any) */
  schemaVersion?: number;
  expectedSchemaVersion?: number | null;
  result?: BatchResult;
  copyMs?: number;
  /** rows staged by each chunk session, for a file loaded in chunks */
  chunks?: number[];
  /** where the chunks were checked: the coordinator's sessions, or a Citus cluster's workers */
  chunksCheckedOn?: "sessions" | "workers";
  /** slice sessions that finished the batch (prepared, then committed with it) */
  slices?: number;
  /** a file in slices: its rollups applied while the slices ran, or after them */
  rolledUp?: "ahead" | "after";
  totalMs: number;
}

async function* fileChunks(path: string): AsyncGenerator<Uint8Array> {
  using file = await Deno.open(path);
  while (true) {
    const buf = new Uint8Array(CHUNK);
    const n = await file.read(buf);
    if (n === null) return;
    yield buf.subarray(0, n);
  }
}

async function* ofBytes(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += CHUNK) yield bytes.subarray(i, i + CHUNK);
}

/** Reads just enough of a source to know its header; undefined for an empty source. */
async function readHeader(source: AsyncIterable<Uint8Array>): Promise<string[] | undefined> {
  const scanner = new CsvScanner();
  for await (const chunk of source) {
    // in 4 KiB steps: the scanner checks every record it is given, and a header is short
    for (let i = 0; i < chunk.length; i += 4096) {
      scanner.push(chunk.subarray(i, i + 4096));
      if (scanner.header) return scanner.header;
    }
  }
  scanner.end();
  return scanner.header;
}

function sha256Hex(): { update(b: Uint8Array): void; hex(): string } {
  const h = createHash("sha256");
  return { update: (b) => h.update(b), hex: () => h.digest("hex") };
}

async function hashOf(source: AsyncIterable<Uint8Array>): Promise<string> {
  const h = sha256Hex();
  for await (const chunk of source) h.update(chunk);
  return h.hex();
}

export interface LoadOptions {
  /** file name recorded as the source (default: basename of path) */
  name?: string;
  kind?: "file" | "http" | "kafka";
  /** rows already known to be malformed (unparseable Kafka messages), dead-lettered with the batch */
  malformed?: MalformedRow[];
  /** role to act as inside the transaction (SET LOCAL ROLE) */
  role?: string;
  /**
   * "inline" (default): the batch updates the analytics rollups in its own transaction.
   * "deferred": it only queues its events; analytics.apply_deferred() (see deferred.ts) adds
   * them to the rollups later, so concurrent batches do not queue on the hot rollup rows.
   */
  analytics?: "inline" | "deferred";
  /**
   * Who sent the batch, for schema pins (ingest.source_schemas): the HTTP client id, later a
   * Kafka topic. Files are matched by name.
   */
  sourceKey?: string;
  /**
   * Files only: stage and check the rows in this many sessions at once (one core each), then
   * finish the batch in its own transaction (db/functions/ingest/chunks.sql). 1 = one session.
   * Needs a pool with at least chunks + 1 connections.
   */
  chunks?: number;
}

/** A source that can be read more than once (header pre-read, COPY, hash of a rejected file). */
export interface Source {
  bytes: number;
  open(): AsyncIterable<Uint8Array>;
  /**
   * Set when open() yields records already in the form the CSV scanner passes to COPY
   * ("line_no," + record + LF, none of them malformed) rather than a CSV file: the header
   * they were read under and their count. Only the Kafka batch builder makes such sources,
   * from records it can prove the scanner would pass unchanged (see kafka/batch.ts).
   */
  scanned?: { header: string[]; rows: number; malformed: MalformedRow[] };
}

export async function fileSource(path: string): Promise<Source> {
  const info = await Deno.stat(path);
  return { bytes: info.size, open: () => fileChunks(path) };
}

export function bytesSource(bytes: Uint8Array): Source {
  return { bytes: bytes.length, open: () => ofBytes(bytes) };
}

/** Records ready for COPY, as the scanner emits them (see Source.scanned). */
export function scannedSource(
  { records, ...scanned }: NonNullable<Source["scanned"]> & { records: Uint8Array },
): Source {
  return { bytes: records.length, open: () => ofBytes(records), scanned };
}

/**
 * Loads one source in one transaction (or a savepoint of the caller's). A file whose content hash is already in the ledger is
 * rolled back and reported as duplicate_file; another session holding the same name makes it
 * "busy" (skipped, left for that session).
 */
export async function loadSource(
  sql: Sql | postgres.TransactionSql,
  source: Source,
  name: string,
  cfg: Settings,
  opts: LoadOptions = {},
): Promise<LoadResult> {
  const started = performance.now();
  const kind = opts.kind ?? "file";
  let header: string[] | undefined;
  let headerError: string | undefined;
  try {
    header = source.scanned ? source.scanned.header : await readHeader(source.open());
  } catch (error) {
    if (!(error instanceof HeaderError)) throw error;
    headerError = error.message;
  }

  const out: LoadResult = { outcome: "loaded", name, bytes: source.bytes, totalMs: 0 };
  const rollback = new Error("rollback");
  // a file in chunks: other sessions of the pool stage and check it (never inside a caller's
  // transaction, whose savepoint other sessions could not see)
  const chunks = kind === "file" && !("savepoint" in sql) && !headerError && header
    ? Math.max(1, Math.floor(opts.chunks ?? 1))
    : 1;
  let committed = false;
  // scratch tables of dead batches go first, in a transaction of their own (on Citus, dropping
  // distributed tables inside the batch's transaction would hold locks the chunk sessions'
  // create_distributed_table waits for)
  if (chunks > 1) {
    // prepared slices of dead batches first: the sweep leaves the tables they still read
    await recoverPrepared(sql as Sql);
    await (sql as Sql)`select ingest.sweep_scratch()`;
  }
  // a batch in slices: its prepared slice transactions, committed once the batch's own
  // transaction committed the decision, rolled back if it did not
  let prepared: string[] = [];
  let decisionSent = false;
  try {
    // inside a caller's transaction (the HTTP collector's idempotency record) use a savepoint
    const transaction = "savepoint" in sql
      ? (fn: (tx: postgres.TransactionSql) => Promise<void>) => sql.savepoint(fn)
      : (fn: (tx: postgres.TransactionSql) => Promise<void>) => (sql as Sql).begin(fn);
    await transaction(async (tx) => {
      if (opts.role) await tx.unsafe(`set local role ${opts.role}`);
      if (kind === "file") {
        const [lock] = await tx`
          select pg_try_advisory_xact_lock(hashtextextended('ingest file:' || ${name}, 0)) as ok`;
        if (!lock.ok) {
          out.outcome = "busy";
          throw rollback;
        }
      }
      const scanner = new CsvScanner();
      // the content hash is the file ledger's key; HTTP and Kafka batches have no ledger entry
      const hash = kind === "file" ? sha256Hex() : undefined;
      let streamed = 0;
      async function* scanned() {
        for await (const chunk of source.open()) {
          hash?.update(chunk);
          streamed += chunk.length;
          if (streamed > CHUNK) crashPoint("mid-copy");
          if (source.scanned) {
            yield chunk;
            continue;
          }
          const outBytes = scanner.push(chunk);
          if (outBytes.length) yield outBytes;
        }
        if (source.scanned) return;
        const tail = scanner.end();
        if (tail.length) yield tail;
      }
      const staged = await stageBatch(tx, {
        kind,
        name,
        bytes: source.bytes,
        header: headerError ? null : header ?? null,
        rejected: headerError && `${headerError}: fix the file and drop it in the inbox again`,
        records: scanned(),
        counted: () => ({
          rows: source.scanned?.rows ?? scanner.rows,
          malformed: [
            ...(source.scanned?.malformed ?? scanner.malformed),
            ...(opts.malformed ?? []),
          ],
        }),
        settings: cfg,
        analytics: opts.analytics,
        sourceKey: opts.sourceKey,
        chunks: chunks > 1
          ? {
            sql: sql as Sql,
            n: chunks,
            role: opts.role,
            onPrepared: (gids) => {
              prepared = gids;
            },
          }
          : undefined,
        onNotNew: async (opened) => {
          if (kind === "file") {
            out.sha256 = await hashOf(source.open());
            const [{ prior }] = await tx`
              select ingest.claim_file(${out.sha256}, ${opened.status}, ${opened.reason ?? null})
                as prior`;
            if (prior) duplicate(out, prior);
          }
        },
        onCopied: async () => {
          out.sha256 = hash?.hex();
          if (streamed !== source.bytes) {
            throw new FileChangedError(
              `File "${name}" changed while it was read (${source.bytes} bytes at start, ${streamed} read): producers must write name.tmp and rename it when complete`,
            );
          }
          if (kind === "file") {
            const [{ prior }] = await tx`select ingest.claim_file(${out.sha256!}) as prior`;
            if (prior) duplicate(out, prior);
          }
        },
      });
      const { opened } = staged;
      out.unknownColumns = opened.unknown_columns ?? [];
      out.schemaVersion = opened.schema_version;
      out.expectedSchemaVersion = opened.expected_schema_version ?? null;
      if (!staged.result) {
        out.outcome = opened.status === "empty" ? "empty" : "rejected";
        out.reason = opened.reason;
        return;
      }
      out.copyMs = staged.copyMs;
      out.chunks = staged.chunks;
      out.chunksCheckedOn = staged.chunksCheckedOn;
      const result = staged.result;
      out.result = result;
      out.slices = staged.slices;
      out.rolledUp = staged.rolledUp;
      out.outcome = result.rows === 0 ? "empty" : "loaded";
      crashPoint("after-procedure");
      await pausePoint("before-commit");
      // from here the decision may commit even if the client hears no answer (a connection
      // lost at COMMIT): the prepared slices are then recovery's to finish, by the ledger
      decisionSent = true;
    });
    committed = true;
    if (prepared.length) {
      crashPoint("before-prepared-commits");
      await commitPrepared(sql as Sql, prepared, opts.role);
      prepared = [];
      await (sql as Sql)`select ingest.sweep_scratch()`.catch(() => {});
    }
  } catch (error) {
    if (error !== rollback) throw error;
  } finally {
    // a batch in chunks that rolled back leaves its scratch tables: drop them now (a crash
    // leaves them to the next load's sweep); its prepared slices go first, rolled back, unless
    // the decision was sent: whether it committed is then for recovery to read in the ledger
    if (prepared.length && !committed && !decisionSent) {
      await rollbackPrepared(sql as Sql, prepared, opts.role);
    }
    if (chunks > 1 && !committed) {
      await (sql as Sql)`select ingest.sweep_scratch()`.catch(() => {});
    }
  }
  out.totalMs = performance.now() - started;
  return out;

  function duplicate(
    o: LoadResult,
    prior: { original_name: string; original_status: string },
  ): never {
    o.outcome = "duplicate_file";
    o.reason = prior.original_name;
    o.originalStatus = prior.original_status;
    throw rollback;
  }
}

/** Loads a file from disk; see loadSource. */
export async function loadFile(
  sql: Sql,
  path: string,
  cfg: Settings,
  opts: LoadOptions = {},
): Promise<LoadResult> {
  const name = opts.name ?? path.slice(path.lastIndexOf("/") + 1);
  return loadSource(sql, await fileSource(path), name, cfg, opts);
}
