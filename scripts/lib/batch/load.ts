// Loads one CSV file (or one in-memory batch) in ONE transaction: open batch -> COPY through
// the structure scanner -> claim the content hash -> process_batch (all rules in SQL) -> commit.
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Config } from "../common/config.ts";
import { TimeoutError, within } from "../common/retry.ts";
import { CsvScanner, HeaderError, type MalformedRow, rawText } from "./csv.ts";
import type { Sql } from "../common/db.ts";
import type postgres from "postgres";
import { commitPrepared, recoverPrepared, rollbackPrepared, runSlices } from "./slices.ts";

const CHUNK = 1 << 20;

/** The file grew or shrank while it was read: a producer is still writing it. */
export class FileChangedError extends Error {
  override name = "FileChangedError";
}

export type Outcome = "loaded" | "empty" | "rejected" | "duplicate_file" | "busy";

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
  totalMs: number;
}

/** The thresholds and key process_batch needs, from config. */
export function settings(cfg: Config) {
  return {
    max_price: cfg.MAX_PRICE,
    future_seconds: cfg.FUTURE_TOLERANCE_SECONDS,
    too_old_days: cfg.TOO_OLD_DAYS,
    late_seconds: cfg.LATE_AFTER_SECONDS,
    min_validity_rate: cfg.MIN_VALIDITY_RATE,
    email_key: cfg.EMAIL_HASH_KEY,
  };
}
export type Settings = ReturnType<typeof settings>;

/**
 * Test-only crash points: with PIPELINE_CRASH_AT=<stage> the process dies on the spot, as a
 * kill -9 would (stages: mid-copy, after-copy, after-procedure, after-commit).
 */
export function crashPoint(stage: string) {
  if (Deno.env.get("PIPELINE_CRASH_AT") === stage) {
    console.error(`crash point "${stage}" reached: exiting abruptly`);
    Deno.exit(137);
  }
}

/** Test-only pause (PIPELINE_PAUSE_AT=<stage>, PIPELINE_PAUSE_MS) to cut a connection there. */
export async function pausePoint(stage: string) {
  if (Deno.env.get("PIPELINE_PAUSE_AT") === stage) {
    console.error(`pause point "${stage}" reached`);
    await new Promise((r) => setTimeout(r, Number(Deno.env.get("PIPELINE_PAUSE_MS") ?? 2000)));
  }
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

export function malformedJson(rows: MalformedRow[]) {
  return rows.map((m) => ({
    line_no: m.lineNo,
    raw: rawText(m.raw),
    raw_base64: btoa(Array.from(m.raw, (b) => String.fromCharCode(b)).join("")),
    why: m.why,
  }));
}

export class CopyError extends Error {
  override name = "CopyError";
}

/**
 * COPY FROM STDIN with backpressure. postgres.js 3.4.9 swallows COPY errors (porsager/postgres
 * #1173): the pipeline never settles. So once the source is exhausted, a probe query is queued
 * on the same connection: it completes after a healthy COPY, and fails at once when the server
 * rejected it, which turns the hang into an error.
 */
export async function copyStream(
  tx: Sql | postgres.TransactionSql,
  statement: string,
  source: AsyncIterable<Uint8Array>,
  graceMs = 1000,
  stallMs = 10_000,
): Promise<void> {
  let ended!: () => void;
  const sourceEnded = new Promise<void>((r) => ended = r);
  let settled = false;
  let sourceDone = false;
  let progress = Date.now();
  async function* tracked() {
    for await (const chunk of source) {
      progress = Date.now();
      yield chunk;
    }
    sourceDone = true;
    ended();
  }
  const writable = await tx.unsafe(statement).writable();
  const copying = pipeline(Readable.from(tracked()), writable).finally(() => settled = true);
  // A connection lost mid-COPY leaves the writable waiting forever: with backpressure, no
  // progress for stallMs means the server is gone. Destroying the stream fails the batch.
  // (Once the source is done, the probe below watches instead.)
  const stall = setInterval(() => {
    if (!settled && !sourceDone && Date.now() - progress > stallMs) {
      writable.destroy(
        new CopyError(
          `COPY made no progress for ${
            stallMs / 1000
          } s: the connection to PostgreSQL is lost; the batch will be retried`,
        ),
      );
    }
  }, Math.min(1000, stallMs));
  const watchdog = (async () => {
    await sourceEnded;
    while (!settled) {
      await new Promise((r) => setTimeout(r, graceMs));
      if (settled) return;
      try {
        // a connection the driver lost mid-COPY can leave this probe unanswered for good too
        await within(tx.unsafe("select 1"), 3 * stallMs, "PostgreSQL, probed after the COPY,");
      } catch (error) {
        if (settled) return;
        if (error instanceof TimeoutError) {
          throw new CopyError(
            `${error.message}: the connection is lost; the batch will be retried`,
          );
        }
        throw new CopyError(
          "COPY was rejected by the server (the driver does not say why: see the PostgreSQL log); the batch was rolled back and nothing was loaded",
          { cause: error },
        );
      }
    }
  })();
  try {
    await Promise.race([copying, watchdog]);
    await copying;
  } finally {
    clearInterval(stall);
  }
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
 * One iterator read by several consumers: each next() waits for the previous one, so the
 * source (the CSV scanner, the file hash) sees one caller at a time and each chunk of output
 * goes to exactly one consumer, whichever asks first (a faster session takes more).
 */
export function shared<T>(source: AsyncIterable<T>): () => AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  let tail: Promise<unknown> = Promise.resolve();
  return async function* () {
    while (true) {
      const next = tail.then(() => it.next());
      tail = next.catch(() => {});
      const r = await next;
      if (r.done) return;
      yield r.value;
    }
  };
}

/**
 * Stages a file's rows in `chunks` sessions at once: each opens its chunk, COPYs the rows it
 * takes from the shared scanner output and checks them (ingest.open_chunk, ingest.check_chunk),
 * then commits. Returns the rows each chunk checked. Any failure fails the whole load: the
 * batch's own transaction rolls back and the committed chunks are swept.
 */
async function stageChunks(
  sql: Sql,
  batchId: number,
  header: string[],
  chunks: number,
  rows: AsyncIterable<Uint8Array>,
  cfg: Settings,
  role: string | undefined,
  on?: { cluster: boolean },
): Promise<number[]> {
  const next = shared(rows);
  // the sessions start reading together, their COPY started (so each takes its share), or
  // after a second when the pool is short of connections for all of them
  let opened = 0;
  let allOpened!: () => void;
  const together = new Promise<void>((r) => allOpened = r);
  const settled = await Promise.allSettled(
    Array.from({ length: chunks }, async (_, i) => {
      const k = i + 1;
      const check = (ctx: postgres.TransactionSql) =>
        ctx`select ingest.check_chunk(${batchId}::bigint, ${k}::int, ${ctx.json(cfg)}::jsonb) as n`;
      const asRole = (fn: (ctx: postgres.TransactionSql) => Promise<postgres.Row[]>) =>
        sql.begin(async (ctx) => {
          if (role) await ctx.unsafe(`set local role ${role}`);
          return await fn(ctx);
        }) as Promise<postgres.Row[]>;
      let onCluster = false;
      const staged = await asRole(async (ctx) => {
        const [{ plan }] = await ctx`
          select ingest.open_chunk(${batchId}::bigint, ${k}::int, ${header}::text[]) as plan`;
        // the gate is passed at the first read, i.e. once this session's COPY has started: a
        // session that started early must not take every piece while the others still wait
        // for the server to answer their COPY (seen under load: 19811, 0, 0 rows)
        async function* gated() {
          if (++opened === chunks) allOpened();
          await Promise.race([together, new Promise((r) => setTimeout(r, 1000))]);
          yield* next();
        }
        await copyStream(
          ctx,
          `copy ${plan.copy_table} (${plan.copy_columns}) from stdin (format csv)`,
          gated(),
        );
        onCluster = plan.on_cluster === true;
        if (on) on.cluster = onCluster;
        // Citus: the check runs later, in other transactions (perhaps other connections of
        // the pool): leave no temp view over the chunk in this session
        if (onCluster) await ctx`select ingest.drop_temp_stage()`;
        return onCluster ? [] : await check(ctx);
      });
      if (!onCluster) return Number(staged[0].n);
      // Citus: the chunk is committed; spread it over the workers, then check it there
      await asRole((ctx) => ctx`select ingest.distribute_chunk(${batchId}::bigint, ${k}::int)`);
      const [{ n }] = await asRole(check);
      return Number(n);
    }),
  );
  const failed = settled.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return settled.map((r) => (r as PromiseFulfilledResult<number>).value);
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
      if (opts.sourceKey) {
        await tx`select set_config('pipeline.source_key', ${opts.sourceKey}, true)`;
      }
      const headerArg = headerError ? null : header ?? null;
      // (one-session batches call the 4-argument form, which every schema version has)
      const [{ opened }] = chunks > 1
        ? await tx`
          select ingest.open_batch(${kind}, ${name}, ${source.bytes}, ${headerArg}::text[],
            ${chunks}::int) as opened`
        : await tx`
          select ingest.open_batch(${kind}, ${name}, ${source.bytes}, ${headerArg}::text[])
            as opened`;
      const status: string = headerError ? "rejected" : opened.status;
      const reason: string | undefined = headerError
        ? `${headerError}: fix the file and drop it in the inbox again`
        : opened.reason;
      out.unknownColumns = opened.unknown_columns ?? [];
      out.schemaVersion = opened.schema_version;
      out.expectedSchemaVersion = opened.expected_schema_version ?? null;

      if (status !== "new") {
        if (kind === "file") {
          out.sha256 = await hashOf(source.open());
          const [{ prior }] = await tx`
            select ingest.claim_file(${out.sha256}, ${status}, ${reason ?? null}) as prior`;
          if (prior) return duplicate(out, prior);
        }
        out.outcome = status === "empty" ? "empty" : "rejected";
        out.reason = reason;
        return;
      }

      const scanner = new CsvScanner();
      // the content hash is the file ledger's key; HTTP and Kafka batches have no ledger entry
      const hash = kind === "file" ? sha256Hex() : undefined;
      let streamed = 0;
      const copyStarted = performance.now();
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
      if (chunks > 1) {
        const on = { cluster: false };
        out.chunks = await stageChunks(
          sql as Sql,
          opened.batch_id,
          header!,
          chunks,
          scanned(),
          cfg,
          opts.role,
          on,
        );
        out.chunksCheckedOn = on.cluster ? "workers" : "sessions";
        crashPoint("after-chunks");
      } else {
        await copyStream(
          tx,
          `copy ${opened.copy_table} (${opened.copy_columns}) from stdin (format csv)`,
          scanned(),
        );
      }
      out.copyMs = performance.now() - copyStarted;
      crashPoint("after-copy");
      out.sha256 = hash?.hex();
      if (streamed !== source.bytes) {
        throw new FileChangedError(
          `File "${name}" changed while it was read (${source.bytes} bytes at start, ${streamed} read): producers must write name.tmp and rename it when complete`,
        );
      }

      if (kind === "file") {
        const [{ prior }] = await tx`select ingest.claim_file(${out.sha256!}) as prior`;
        if (prior) return duplicate(out, prior);
      }
      const malformed = [
        ...(source.scanned?.malformed ?? scanner.malformed),
        ...(opts.malformed ?? []),
      ];
      const expected = (source.scanned?.rows ?? scanner.rows) + malformed.length;
      if (opts.analytics === "deferred") {
        await tx`select set_config('pipeline.analytics', 'deferred', true)`;
      }
      const copyMs = Math.round(out.copyMs * 10) / 10;
      if (chunks > 1 && out.chunksCheckedOn === "sessions") {
        // every core finishes a slice of the batch (by event_id), prepared; this transaction
        // then records the decision (db/functions/ingest/slices.sql)
        const slices = await runSlices(
          sql as Sql,
          opened.batch_id,
          chunks,
          chunks,
          name,
          opts.role,
        );
        prepared = slices.gids;
        const [{ result }] = await tx`
          select ingest.finish_slices(
            ${opened.batch_id}::bigint, ${chunks}::int, ${expected}::bigint,
            ${tx.json(malformedJson(malformed))}::jsonb, ${tx.json(cfg)}::jsonb,
            ${copyMs}::numeric, ${tx.json(slices.results as unknown as postgres.JSONValue)}::jsonb
          ) as result`;
        out.slices = chunks;
        out.result = result as BatchResult;
        out.outcome = result.rows === 0 ? "empty" : "loaded";
        crashPoint("after-procedure");
        await pausePoint("before-commit");
        return;
      }
      const [{ result }] = chunks > 1
        ? await tx`
          select ingest.process_chunks(
            ${opened.batch_id}::bigint, ${chunks}::int, ${expected}::bigint,
            ${tx.json(malformedJson(malformed))}::jsonb, ${tx.json(cfg)}::jsonb,
            ${copyMs}::numeric
          ) as result`
        : await tx`
          select ingest.process_batch(
            ${opened.batch_id}::bigint, ${expected}::bigint,
            ${tx.json(malformedJson(malformed))}::jsonb, ${tx.json(cfg)}::jsonb,
            ${copyMs}::numeric
          ) as result`;
      out.result = result as BatchResult;
      out.outcome = result.rows === 0 ? "empty" : "loaded";
      crashPoint("after-procedure");
      await pausePoint("before-commit");
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
    // leaves them to the next load's sweep); its prepared slices go first (committed, a
    // failure after the decision leaves them to recovery)
    if (prepared.length && !committed) await rollbackPrepared(sql as Sql, prepared, opts.role);
    if (chunks > 1 && !committed) {
      await (sql as Sql)`select ingest.sweep_scratch()`.catch(() => {});
    }
  }
  out.totalMs = performance.now() - started;
  return out;

  function duplicate(o: LoadResult, prior: { original_name: string; original_status: string }) {
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
