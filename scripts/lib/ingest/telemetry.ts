// The file ingester's own metrics (deno task ingest --metrics-port N): what this process did,
// plus the inbox and the database read at scrape time. Names match the collector's where the
// figure is the same (pipeline_inbox_files, pipeline_database_up), so one alert covers both.
import type { Sql } from "../common/db.ts";
import { CONTENT_TYPE, Registry } from "../common/metrics.ts";
import { inboxBacklog } from "../common/inbox.ts";

const SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export function createIngestTelemetry() {
  const registry = new Registry();
  const t = {
    registry,
    files: registry.counter(
      "pipeline_ingest_files_total",
      "Files this ingester finished, by outcome (loaded, empty, rejected, duplicate_file, failed)",
      ["outcome"],
    ),
    rows: registry.counter(
      "pipeline_ingest_rows_total",
      "Rows of the files this ingester loaded, by outcome",
      ["outcome"],
    ),
    fileDuration: registry.histogram(
      "pipeline_ingest_file_duration_seconds",
      "Time to load one file (one database transaction), in seconds",
      [],
      SECONDS,
    ),
    lastFile: registry.gauge(
      "pipeline_ingest_last_file_timestamp_seconds",
      "Unix time this ingester last finished a file",
    ),
    maintenance: registry.gauge(
      "pipeline_ingest_maintenance_last_success_timestamp_seconds",
      "Unix time of this ingester's last successful maintenance run (retention)",
    ),
    inbox: registry.gauge(
      "pipeline_inbox_files",
      "Files waiting in the inbox (not *.tmp nor dotfiles)",
    ),
    databaseUp: registry.gauge(
      "pipeline_database_up",
      "1 when the database answered this scrape, else 0",
    ),
  };
  for (const outcome of ["valid", "invalid", "duplicate"]) t.rows.inc({ outcome }, 0);
  for (const outcome of ["loaded", "empty", "rejected", "duplicate_file", "failed"]) {
    t.files.inc({ outcome }, 0);
  }
  return t;
}

export type IngestTelemetry = ReturnType<typeof createIngestTelemetry>;

/** The /metrics response: process figures plus the inbox and a database probe. */
export async function renderIngestMetrics(
  t: IngestTelemetry,
  sql: Sql,
  inbox: string,
): Promise<Response> {
  try {
    await Promise.race([
      sql`select 1`,
      new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), 2000)),
    ]);
    t.databaseUp.set({}, 1);
  } catch {
    t.databaseUp.set({}, 0);
  }
  t.inbox.set({}, await inboxBacklog(inbox));
  return new Response(t.registry.render(), {
    headers: { "content-type": CONTENT_TYPE, "cache-control": "no-store" },
  });
}
