// The operational routes: /health (for load balancers and make up) and /metrics (Prometheus).
import type { Sql } from "../common/db.ts";
import type { Logger } from "../common/log.ts";
import { isRetryable } from "../common/retry.ts";
import { CONTENT_TYPE } from "../common/metrics.ts";
import type { Limiter } from "./limiter.ts";
import { DB_RETRY_AFTER, json } from "./responses.ts";
import type { Route } from "./route.ts";
import { inboxBacklog, pipelineStatus, schemaStatus } from "./status.ts";
import type { Telemetry } from "./telemetry.ts";

export function opsRoutes(
  deps: { analyst: Sql; log: Logger },
  telemetry: Telemetry,
  limiter: Limiter,
  inboxDir: string,
  /** when the collector started (Date.now()) */
  started: number,
): Route[] {
  const { log } = deps;

  async function health(): Promise<Response> {
    const base = {
      batches_in_flight: limiter.inFlight,
      max_concurrent_batches: limiter.max,
      uptime_seconds: Math.round((Date.now() - started) / 1000),
    };
    try {
      const s = await pipelineStatus(deps.analyst);
      return json(200, { status: "ok", database: "reachable", last_batch: s.last_batch, ...base });
    } catch (error) {
      const down = isRetryable(error);
      log.warn(down ? "health: database unreachable" : "health: database error", {
        error: (error as Error).message,
      });
      return json(503, {
        status: "unavailable",
        database: down ? "unreachable" : "error",
        error: down
          ? "The database does not answer: batches are refused meanwhile; see the collector log"
          : `The database answered with an error (${
            (error as Error).message
          }): is it migrated? run make up`,
        ...base,
      }, { "retry-after": String(DB_RETRY_AFTER) });
    }
  }

  async function metrics(): Promise<Response> {
    const t = telemetry;
    try {
      const s = await pipelineStatus(deps.analyst);
      t.databaseUp.set({}, 1);
      t.dbRows.set({ outcome: "valid" }, s.valid);
      t.dbRows.set({ outcome: "invalid" }, s.invalid);
      t.dbRows.set({ outcome: "duplicate" }, s.duplicates);
      t.dbBatches.set({}, s.batches);
      t.queueAge.set({}, Number(s.analytics_queue_age_seconds ?? 0));
      t.files.reset();
      for (const status of ["loading", "done", "empty", "rejected"]) {
        t.files.set({ status }, s.files[status] ?? 0);
      }
      const schema = await schemaStatus(deps.analyst);
      t.schemaBatches.reset();
      for (const [version, n] of Object.entries(schema.versions)) {
        t.schemaBatches.set({ version }, n);
      }
      t.unknownColumnBatches.reset();
      for (const [column, n] of Object.entries(schema.unknown_columns)) {
        t.unknownColumnBatches.set({ column }, n);
      }
      t.schemaAlerts.reset();
      for (const [kind, n] of Object.entries(schema.alerts)) t.schemaAlerts.set({ kind }, n);
      t.lastBatchAge.reset();
      t.lastBatchValidity.reset();
      if (s.last_batch) {
        t.lastBatchAge.set({}, Number(s.last_batch.age_seconds));
        if (s.last_batch.validity_rate !== null) {
          t.lastBatchValidity.set({}, Number(s.last_batch.validity_rate));
        }
      }
    } catch (error) {
      // process figures are still worth a scrape; database ones are left out, not stale
      t.databaseUp.set({}, 0);
      for (
        const g of [
          t.dbRows,
          t.dbBatches,
          t.files,
          t.lastBatchAge,
          t.lastBatchValidity,
          t.schemaBatches,
          t.unknownColumnBatches,
          t.schemaAlerts,
          t.queueAge,
        ]
      ) {
        g.reset();
      }
      log.debug("metrics: database unreachable", { error: (error as Error).message });
    }
    t.inbox.set({}, await inboxBacklog(inboxDir));
    t.inFlight.set({}, limiter.inFlight);
    return new Response(t.registry.render(), {
      headers: { "content-type": CONTENT_TYPE, "cache-control": "no-store" },
    });
  }

  return [
    { method: "GET", pattern: /^\/health$/, label: "/health", handler: health },
    { method: "GET", pattern: /^\/metrics$/, label: "/metrics", handler: metrics },
  ];
}
