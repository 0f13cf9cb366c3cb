// The file source: loads every CSV dropped into the inbox exactly once, one transaction per
// file (the batch path, lib/batch), then moves it to processed/ (or rejected/); retries and a
// circuit breaker when the database is away. deno task ingest (scripts/ingest.ts) drives it.
import type { Config } from "../common/config.ts";
import { reportInbox } from "../analytics/analytics.ts";
import type { Sql } from "../common/db.ts";
import type { Dirs } from "../common/inbox.ts";
import { type Entry, listReady, moveInto } from "./inbox.ts";
import { crashPoint, FileChangedError, loadFile, type LoadResult, settings } from "../batch/mod.ts";
import type { Logger } from "../common/log.ts";
import { maintain, type MaintenanceResult, warnKept } from "../maintain/maintain.ts";
import type { IngestTelemetry } from "./telemetry.ts";
import { backoffMs, CircuitBreaker, decide, retryPolicy, sleep } from "../common/retry.ts";
import { recoverPrepared } from "../batch/mod.ts";

export interface IngesterOptions {
  dirs: Dirs;
  sql: Sql;
  cfg: Config;
  log: Logger;
  signal?: AbortSignal;
  /** the clock for maintenance (tests pass a fake one) */
  clock?: () => Date;
  /** this process's counters, served on --metrics-port */
  telemetry?: IngestTelemetry;
  /** files loaded at the same time, each in its own transaction (default 1) */
  workers?: number;
  /**
   * sessions that stage and check one large file at once (default: the cores divided by the
   * files loaded at the same time); the pool needs workers * (chunks + 1) + 1 connections
   */
  chunks?: number;
  /**
   * --once: a file another session holds is tried again until it is loaded or gone, so the
   * run drains the inbox (after a crash, the dead process's transaction may hold a file for a
   * moment after its files were taken over)
   */
  waitForBusy?: boolean;
}

export interface DrainSummary {
  handled: number;
  failed: number;
  rows: number;
}

/** Works through the inbox; survives database outages with backoff and a circuit breaker. */
export class Ingester {
  readonly breaker: CircuitBreaker;
  /** files that failed for a non-transient reason, by name -> mtime (retried when changed) */
  readonly failed = new Map<string, number>();
  #settings;

  constructor(readonly o: IngesterOptions) {
    this.breaker = new CircuitBreaker(o.cfg.BREAKER_THRESHOLD);
    this.#settings = settings(o.cfg);
  }

  #lastMaintenance = -Infinity;
  #chunks = 1;
  #swept = false;

  /**
   * In watch mode, every MAINTAIN_INTERVAL_MINUTES (0: never): retention and partitions
   * ahead (deno task maintain). Returns the result when it ran. A failure is logged, not fatal.
   */
  async maintainIfDue(): Promise<MaintenanceResult | undefined> {
    const every = this.o.cfg.MAINTAIN_INTERVAL_MINUTES * 60_000;
    const now = (this.o.clock ?? (() => new Date()))();
    if (every === 0 || now.getTime() - this.#lastMaintenance < every) return undefined;
    this.#lastMaintenance = now.getTime();
    try {
      const r = await maintain(this.o.sql, this.o.dirs, now);
      this.o.telemetry?.maintenance.set({}, Date.now() / 1000);
      this.o.log.info("maintenance done", { ...r });
      warnKept(this.o.log, r);
      return r;
    } catch (error) {
      this.o.log.warn("maintenance failed: retried at the next interval", {
        error: (error as Error).message,
      });
      return undefined;
    }
  }

  get stopping(): boolean {
    return this.o.signal?.aborted ?? false;
  }

  /** Processes every ready file once. */
  async drain(giveUpAfterMs = Infinity): Promise<DrainSummary> {
    const summary: DrainSummary = { handled: 0, failed: 0, rows: 0 };
    const ready = await listReady(this.o.dirs.inbox);
    await this.#reportInbox(ready.length);
    if (!this.#swept) await this.#sweep();
    const started = Date.now();
    let queue = ready;
    while (queue.length > 0) {
      // each worker takes the next file in inbox order; a file is still one transaction
      const busy: Entry[] = [];
      let next = 0;
      const files = queue;
      const work = async () => {
        while (next < files.length && !this.stopping) {
          const entry = files[next++];
          if (this.failed.get(entry.name) === entry.mtime) continue;
          const r = await this.#one(entry, giveUpAfterMs);
          if (r === "failed") summary.failed++;
          else if (r !== "skipped" && r.outcome === "busy") busy.push(entry);
          else if (r !== "skipped") {
            summary.handled++;
            summary.rows += r.result?.rows ?? 0;
          }
        }
      };
      const workers = Math.max(1, Math.min(this.o.workers ?? 1, files.length));
      this.#chunks = this.o.chunks ??
        Math.max(1, Math.floor(navigator.hardwareConcurrency / workers));
      await Promise.all(Array.from({ length: workers }, work));
      if (!this.o.waitForBusy || this.stopping || Date.now() - started > giveUpAfterMs) break;
      if (busy.length > 0) await sleep(250, this.o.signal);
      const still = new Set((await listReady(this.o.dirs.inbox)).map((e) => e.name));
      queue = busy.filter((e) => still.has(e.name));
    }
    if (summary.handled > 0) await this.#reportInbox((await listReady(this.o.dirs.inbox)).length);
    return summary;
  }

  /**
   * Once a process: drops the scratch tables of files loaded in chunks whose transaction died
   * with an earlier process (ingest.sweep_scratch; each chunked load also sweeps first).
   */
  async #sweep() {
    try {
      // prepared slices of files whose process died: committed or rolled back by what their
      // batch decided (before the sweep, which leaves the tables they read)
      const p = await recoverPrepared(this.o.sql);
      if (p.committed + p.rolled_back > 0) {
        this.o.log.info("prepared slices of unfinished loads recovered", p);
      }
      const [{ n }] = await this.o.sql`select ingest.sweep_scratch() as n`;
      this.#swept = true;
      if (n > 0) {
        this.o.log.info("dropped scratch tables of unfinished chunked loads", { tables: n });
      }
    } catch {
      // best effort: retried at the next drain
    }
  }

  /** Tells analytics.pipeline_health how many files wait (the database cannot see the inbox). */
  async #reportInbox(waiting: number) {
    try {
      await reportInbox(this.o.sql, waiting);
    } catch {
      // best effort: a database that is down will be noticed by the next load
    }
  }

  async #one(entry: Entry, giveUpAfterMs: number): Promise<LoadResult | "failed" | "skipped"> {
    const { log, dirs } = this.o;
    if (entry.refused) {
      await moveInto(entry.path, dirs.rejected);
      log.warn("refused file", { file: entry.name, reason: entry.refused });
      return "skipped";
    }
    const started = Date.now();
    for (let attempt = 0;; attempt++) {
      if (this.stopping) return "skipped";
      if (this.breaker.state === "open" && !(await this.#probe(started, giveUpAfterMs))) {
        return "failed";
      }
      try {
        const r = await loadFile(this.o.sql, entry.path, this.#settings, {
          role: this.o.cfg.INGEST_ROLE,
          chunks: entry.size >= this.o.cfg.PARALLEL_FILE_MIN_MB * 1024 * 1024 ? this.#chunks : 1,
        });
        if (this.breaker.success()) log.info("database reachable again: circuit closed");
        await this.#finish(entry, r);
        return r;
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return "skipped"; // another ingester moved it
        if (error instanceof FileChangedError) {
          log.warn("file changed while loading: left in the inbox for the next scan", {
            file: entry.name,
          });
          return "skipped";
        }
        const next = decide(this.#retry(giveUpAfterMs), error, attempt, started);
        if (!next.retry && next.why === "not retryable") {
          this.failed.set(entry.name, entry.mtime);
          this.o.telemetry?.files.inc({ outcome: "failed" });
          log.error("file failed: left in the inbox; fix the cause, then touch or re-drop it", {
            file: entry.name,
            error: (error as Error).message,
          });
          return "failed";
        }
        const opened = this.breaker.failure();
        if (opened) {
          log.error("database unreachable: circuit open, probing until it answers", {
            failures: this.breaker.failures,
            error: (error as Error).message,
          });
        } else if (this.breaker.state === "closed" && next.retry) {
          log.warn("database error: retrying", {
            file: entry.name,
            attempt: attempt + 1,
            retry_in_ms: next.delayMs,
            error: (error as Error).message,
          });
          await sleep(next.delayMs, this.o.signal);
        }
        if (!next.retry) {
          this.o.telemetry?.files.inc({ outcome: "failed" });
          return "failed";
        }
      }
    }
  }

  /** The shared retry policy (common/retry.ts), giving up after `giveUpAfterMs`. */
  #retry(giveUpAfterMs: number) {
    return retryPolicy(this.o.cfg, giveUpAfterMs);
  }

  /** While the circuit is open: one cheap query per interval until the database answers. */
  async #probe(started: number, giveUpAfterMs: number): Promise<boolean> {
    const interval = this.o.cfg.DB_RETRY_MAX_SECONDS * 1000;
    for (let n = 0; !this.stopping; n++) {
      if (Date.now() - started > giveUpAfterMs) return false;
      await sleep(Math.min(interval, backoffMs(n, 500, interval)), this.o.signal);
      try {
        await this.o.sql`select 1`;
        const downFor = ((Date.now() - this.breaker.openedAt) / 1000).toFixed(1);
        this.breaker.success();
        this.o.log.info("database recovered: circuit closed", { down_seconds: downFor });
        return true;
      } catch {
        this.o.log.debug("probe failed: database still unreachable");
      }
    }
    return false;
  }

  async #finish(entry: Entry, r: LoadResult) {
    const { log, dirs } = this.o;
    if (r.outcome !== "busy") crashPoint("after-commit");
    this.#count(r);
    switch (r.outcome) {
      case "busy":
        log.debug("file held by another ingester", { file: entry.name });
        return;
      case "rejected":
        await moveInto(entry.path, dirs.rejected);
        log.warn("rejected file", { file: entry.name, reason: r.reason });
        return;
      case "duplicate_file": {
        const to = r.originalStatus === "rejected" ? dirs.rejected : dirs.processed;
        await moveInto(entry.path, to);
        log.info("duplicate_file: content already ingested, skipped", {
          file: entry.name,
          first_seen_as: r.reason,
        });
        return;
      }
      default: {
        await moveInto(entry.path, dirs.processed);
        const res = r.result;
        const seconds = r.totalMs / 1000;
        log.info(r.outcome === "empty" ? "empty file" : "loaded", {
          file: entry.name,
          rows: res?.rows ?? 0,
          valid: res?.valid ?? 0,
          invalid: res?.invalid ?? 0,
          duplicates: res?.duplicates ?? 0,
          late: res?.late ?? 0,
          rows_per_s: res ? Math.round(res.rows / seconds) : 0,
          ms: Math.round(r.totalMs),
        });
        if (r.unknownColumns?.length) {
          log.info("unknown columns kept in extra", {
            file: entry.name,
            columns: r.unknownColumns,
          });
        }
        if (r.expectedSchemaVersion && r.expectedSchemaVersion !== r.schemaVersion) {
          log.warn("schema version mismatch: alert recorded in quality.alerts", {
            file: entry.name,
            schema_version: r.schemaVersion,
            pinned_version: r.expectedSchemaVersion,
          });
        }
        if (res?.alert) {
          log.warn("validity below threshold: alert recorded in quality.alerts", {
            file: entry.name,
            validity_rate: res.validity_rate,
            threshold: this.o.cfg.MIN_VALIDITY_RATE,
          });
        }
      }
    }
  }

  #count(r: LoadResult) {
    const t = this.o.telemetry;
    if (!t || r.outcome === "busy") return;
    const outcome =
      r.outcome === "rejected" || r.outcome === "duplicate_file" || r.outcome === "empty"
        ? r.outcome
        : "loaded";
    t.files.inc({ outcome });
    t.lastFile.set({}, Date.now() / 1000);
    if (outcome === "loaded") t.fileDuration.observe({}, r.totalMs / 1000);
    if (r.result) {
      t.rows.inc({ outcome: "valid" }, r.result.valid);
      t.rows.inc({ outcome: "invalid" }, r.result.invalid);
      t.rows.inc({ outcome: "duplicate" }, r.result.duplicates);
    }
  }

  /** Drains, then waits for file-system events (and rescans every few seconds as a net). */
  async watch(): Promise<void> {
    const { log, dirs, cfg } = this.o;
    let wake: (() => void) | undefined;
    let pending = true;
    const watcher = Deno.watchFs(dirs.inbox, { recursive: false });
    this.o.signal?.addEventListener("abort", () => {
      watcher.close();
      wake?.();
    });
    (async () => {
      try {
        for await (const _ of watcher) {
          pending = true;
          wake?.();
        }
      } catch {
        // closed
      }
    })();
    log.info("watching inbox", { dir: dirs.inbox });
    while (!this.stopping) {
      await this.maintainIfDue();
      if (pending) {
        pending = false;
        await this.drain();
        continue;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, cfg.SCAN_INTERVAL_SECONDS * 1000);
      });
      wake = undefined;
      pending = true;
    }
  }
}
