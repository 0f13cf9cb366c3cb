// POST /v1/events: one request body = one batch = one database transaction, through the same
// staging + SQL validation path as files (loader.ts). With an Idempotency-Key, the key's
// record is claimed and completed inside that transaction.
import type { Sql } from "../common/db.ts";
import { bytesSource, type LoadResult, loadSource, type Settings } from "../batch/mod.ts";
import type { Logger } from "../common/log.ts";
import type { ApiKeys } from "./auth.ts";
import { checkDeclaredLength, readBody } from "./body.ts";
import { claim, idempotencyKey, requestFingerprint, store } from "./idempotency.ts";
import type { Limiter } from "./limiter.ts";
import { NdjsonError, ndjsonToCsv } from "./ndjson.ts";
import { HttpError, text } from "./responses.ts";
import type { Telemetry } from "./telemetry.ts";
import { GroupCommitter, type GroupRequest } from "./group.ts";

export const CSV = "text/csv";
export const NDJSON = "application/x-ndjson";
const ALIASES: Record<string, string> = {
  "text/csv": CSV,
  "application/csv": CSV,
  "application/x-ndjson": NDJSON,
  "application/ndjson": NDJSON,
  "application/jsonl": NDJSON,
  "application/x-jsonlines": NDJSON,
};

export interface EventsDeps {
  ingest: Sql;
  keys: ApiKeys;
  limiter: Limiter;
  telemetry: Telemetry;
  log: Logger;
  settings: Settings;
  maxBodyBytes: number;
  /** seconds a client should wait after a 503 for overload */
  busyRetryAfter?: number;
  /** HTTP_ANALYTICS: rollups in the batch transaction, or queued for DeferredAnalytics */
  analytics?: "inline" | "deferred";
  /** GROUP_COMMIT_MS: concurrent requests within this window share a transaction (0: off) */
  groupCommitMs?: number;
  /** group transactions at the same time (default 2) */
  maxGroups?: number;
}

interface Reply {
  status: number;
  body: string;
  batchId: number | null;
  result?: LoadResult;
}

interface InvalidRow {
  line_no: number;
  reasons: string[];
}

/** The body format from Content-Type, or a 415 HttpError. */
export function bodyFormat(req: Request): string {
  const raw = req.headers.get("content-type");
  const type = raw?.split(";")[0].trim().toLowerCase() ?? "";
  const format = ALIASES[type];
  if (!format) {
    throw new HttpError(
      415,
      `${
        raw ? `Content-Type "${raw}" is not supported` : "No Content-Type"
      }: send text/csv (a header line, then one event per line) or application/x-ndjson (one JSON object per line)`,
    );
  }
  return format;
}

const keyReused = () =>
  reply(422, {
    error:
      "This Idempotency-Key was already used with a different body: use a new key for a new batch",
  });

function reply(status: number, body: unknown, r?: LoadResult): Reply {
  return { status, body: JSON.stringify(body), batchId: r?.result?.batch_id ?? null, result: r };
}

function toReply(r: LoadResult, format: string, lineOf: (n: number) => number): Reply {
  if (r.outcome === "rejected") {
    const what = format === NDJSON
      ? `The objects lack required fields (${r.reason}): add them to every object and send again`
      : `The header line is unusable (${r.reason}): fix the header line and send again`;
    return reply(400, { error: what, reason: r.reason });
  }
  if (!r.result) {
    return reply(400, {
      error: format === NDJSON
        ? "The body holds no JSON object: send one event object per line"
        : "The body holds no header line: send a header line naming the columns, then one event per line",
    });
  }
  const res = r.result;
  const invalidRows = (res as unknown as { invalid_rows?: InvalidRow[] }).invalid_rows ?? [];
  return reply(200, {
    batch_id: res.batch_id,
    rows: res.rows,
    accepted: res.valid,
    duplicates: res.duplicates,
    invalid: res.invalid,
    late: res.late,
    validity_rate: res.validity_rate,
    schema_version: r.schemaVersion,
    unknown_columns: r.unknownColumns ?? [],
    invalid_rows: invalidRows.map((d) => ({ line: lineOf(d.line_no), reasons: d.reasons })),
    invalid_rows_truncated: res.invalid > invalidRows.length,
  }, r);
}

export function createEventsHandler(deps: EventsDeps) {
  const { telemetry: t, log } = deps;

  /** One request in its own transaction, the Idempotency-Key claimed and stored in it. */
  const single = (req: GroupRequest) =>
    deps.ingest.begin(async (tx): Promise<Reply & { replayed?: boolean }> => {
      if (req.key) {
        const prior = await claim(tx, req.client, req.key, req.fingerprint);
        if (prior) {
          if (prior.request_sha256 !== req.fingerprint) return keyReused();
          return {
            status: prior.status,
            body: prior.body,
            batchId: prior.batch_id,
            replayed: true,
          };
        }
      }
      const r = await loadSource(
        tx,
        bytesSource(req.csv),
        `http:${crypto.randomUUID()}`,
        deps.settings,
        {
          kind: "http",
          analytics: deps.analytics,
          sourceKey: req.client,
        },
      );
      const answer = toReply(r, req.format, req.lineOf);
      if (req.key) await store(tx, req.client, req.key, answer.status, answer.body, answer.batchId);
      return answer;
    });

  const committer = (windowMs: number) =>
    new GroupCommitter({
      sql: deps.ingest,
      settings: deps.settings,
      log,
      windowMs,
      maxGroups: deps.maxGroups ?? 2,
      maxBytes: Math.max(deps.maxBodyBytes, 16 << 20),
      analytics: deps.analytics,
      answer: (r, req) => toReply(r, req.format, req.lineOf),
      keyReused,
      single,
      onGroup: (n) => t.groupSize.observe({}, n),
    });
  const group = deps.groupCommitMs ? committer(deps.groupCommitMs) : undefined;
  // other sources' own windows (the browser's BROWSER_GROUP_COMMIT_MS), made on first use
  const windows = new Map<number, GroupCommitter>();

  /**
   * Another source's CSV batch (header line + rows) through the same path: a slot of `limiter`
   * (503 when none is free), group commit, one transaction. No Idempotency-Key: such sources
   * give every event its own event_id, so a batch sent twice is duplicates. The browser source
   * passes its own limiter: its many small requests wait for a group instead of taking one of
   * the MAX_CONCURRENT_BATCHES slots each, and may wait longer for a group (`windowMs`: its
   * requests are small, a transaction's fixed cost is most of theirs; docs/tracking.md#load).
   */
  async function submitCsv(
    client: string,
    csv: Uint8Array,
    lineOf: (n: number) => number,
    limiter: Limiter = deps.limiter,
    limitName = "MAX_CONCURRENT_BATCHES",
    windowMs = deps.groupCommitMs ?? 0,
  ): Promise<{ status: number; body: string; headers?: Record<string, string> }> {
    const release = limiter.tryAcquire();
    if (!release) {
      const retry = String(deps.busyRetryAfter ?? 1);
      return {
        status: 503,
        body: JSON.stringify({
          error:
            `Busy: ${limiter.max} batches are already in flight (${limitName}); nothing was stored, retry after a moment`,
        }),
        headers: { "retry-after": retry },
      };
    }
    try {
      const request: GroupRequest = {
        client,
        key: null,
        fingerprint: "",
        csv,
        format: CSV,
        lineOf,
      };
      let g = windowMs === deps.groupCommitMs ? group : windows.get(windowMs);
      if (!g && windowMs > 0) windows.set(windowMs, g = committer(windowMs));
      const out = g ? await g.submit(request) : await single(request);
      const res = out.result?.result;
      if (res) {
        t.httpBatches.inc();
        t.httpRows.inc({ outcome: "valid" }, res.valid);
        t.httpRows.inc({ outcome: "invalid" }, res.invalid);
        t.httpRows.inc({ outcome: "duplicate" }, res.duplicates);
      }
      return { status: out.status, body: out.body };
    } finally {
      release();
    }
  }

  return Object.assign(postEvents, { submitCsv });

  async function postEvents(req: Request): Promise<Response> {
    const client = deps.keys.authenticate(req.headers.get("authorization"));
    const format = bodyFormat(req);
    const key = idempotencyKey(req);
    checkDeclaredLength(req, deps.maxBodyBytes);
    const release = deps.limiter.tryAcquire();
    if (!release) {
      throw new HttpError(
        503,
        `Busy: ${deps.limiter.max} batches are already in flight (MAX_CONCURRENT_BATCHES); nothing was stored, retry after a moment`,
        { "retry-after": String(deps.busyRetryAfter ?? 1) },
      );
    }
    t.inFlight.set({}, deps.limiter.inFlight);
    try {
      const bytes = await readBody(req, deps.maxBodyBytes);
      if (bytes.length === 0) {
        throw new HttpError(
          400,
          "The body is empty: send a CSV header line and events, or NDJSON event objects",
        );
      }
      let csv = bytes;
      let lineOf = (n: number) => n;
      if (format === NDJSON) {
        try {
          ({ csv, lineOf } = await ndjsonToCsv(bytes));
        } catch (error) {
          if (!(error instanceof NdjsonError)) throw error;
          throw new HttpError(
            400,
            `${error.message}: send one JSON object per line, e.g. {"event_id":"…","event_time":"…",…}`,
            {},
            error.line ? { line: error.line } : {},
          );
        }
      }
      const fingerprint = requestFingerprint(format, bytes);
      const started = performance.now();
      const request: GroupRequest = { client, key, fingerprint, csv, format, lineOf };
      const out = group ? await group.submit(request) : await single(request);
      const seconds = (performance.now() - started) / 1000;
      const res = out.result?.result;
      if (res && !out.replayed) {
        t.httpBatches.inc();
        t.batchDuration.observe({}, seconds);
        t.httpRows.inc({ outcome: "valid" }, res.valid);
        t.httpRows.inc({ outcome: "invalid" }, res.invalid);
        t.httpRows.inc({ outcome: "duplicate" }, res.duplicates);
        if (res.validity_rate !== null) t.lastValidity.set({}, Number(res.validity_rate));
      }
      const counts = res
        ? { rows: res.rows, valid: res.valid, invalid: res.invalid, duplicates: res.duplicates }
        : {};
      log.info(out.replayed ? "idempotent replay" : res ? "batch loaded" : "batch refused", {
        batch_id: out.batchId,
        status: out.status,
        format: format === NDJSON ? "ndjson" : "csv",
        bytes: bytes.length,
        ...counts,
        ms: Math.round(seconds * 1000),
      });
      return text(out.status, out.body, out.replayed ? { "idempotent-replayed": "true" } : {});
    } finally {
      release();
      t.inFlight.set({}, deps.limiter.inFlight);
    }
  }
}
