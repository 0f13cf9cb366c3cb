// The collector's metrics: what this process did, plus pipeline figures read at scrape time.
import { Registry } from "../common/metrics.ts";

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export const OUTCOMES = ["valid", "invalid", "duplicate"] as const;
export type Outcome = typeof OUTCOMES[number];

export function createTelemetry() {
  const registry = new Registry();
  const t = {
    registry,
    httpRows: registry.counter(
      "pipeline_http_rows_total",
      "Rows received by this collector process, by outcome",
      ["outcome"],
    ),
    httpBatches: registry.counter(
      "pipeline_http_batches_total",
      "Batches this collector process committed",
    ),
    batchDuration: registry.histogram(
      "pipeline_http_batch_duration_seconds",
      "Time to load one HTTP batch (one database transaction), in seconds",
      [],
      SECONDS,
    ),
    groupSize: registry.histogram(
      "pipeline_http_group_requests",
      "Requests that shared one database transaction (group commit, GROUP_COMMIT_MS)",
      [],
      [1, 2, 4, 8, 16, 32, 64],
    ),
    lastValidity: registry.gauge(
      "pipeline_http_last_validity_ratio",
      "Validity rate (valid / (valid + invalid)) of this process's last batch with such rows",
    ),
    inFlight: registry.gauge(
      "pipeline_http_batches_in_flight",
      "Batches being received or loaded now",
    ),
    maxInFlight: registry.gauge(
      "pipeline_http_batches_in_flight_max",
      "MAX_CONCURRENT_BATCHES: beyond it POST /v1/events answers 503",
    ),
    browserEvents: registry.counter(
      "pipeline_browser_events_total",
      "Events POST /v1/collect received from browsers, by outcome (received: handed to the batch path; bot: dropped; rate_limited: refused with 429)",
      ["outcome"],
    ),
    requests: registry.counter(
      "pipeline_http_requests_total",
      "HTTP requests answered, by route and status code",
      ["route", "status"],
    ),
    requestDuration: registry.histogram(
      "pipeline_http_request_duration_seconds",
      "HTTP request duration, in seconds, by route",
      ["route"],
      SECONDS,
    ),
    databaseUp: registry.gauge(
      "pipeline_database_up",
      "1 when the database answered this scrape, else 0",
    ),
    dbRows: registry.gauge(
      "pipeline_database_rows",
      "Rows of every batch in the database (files, HTTP, replays), by outcome",
      ["outcome"],
    ),
    dbBatches: registry.gauge("pipeline_database_batches", "Batches recorded in the database"),
    files: registry.gauge(
      "pipeline_files",
      "Files in the ingest ledger, by status",
      ["status"],
    ),
    lastBatchAge: registry.gauge(
      "pipeline_last_batch_age_seconds",
      "Seconds since the last batch (any source) finished",
    ),
    lastBatchValidity: registry.gauge(
      "pipeline_last_batch_validity_ratio",
      "Validity rate of the last batch (any source); absent when that batch had no valid or invalid rows",
    ),
    deferredEvents: registry.counter(
      "pipeline_analytics_deferred_events_total",
      "Queued events this process added to the analytics rollups (HTTP_ANALYTICS=deferred)",
    ),
    deferredLag: registry.gauge(
      "pipeline_analytics_deferred_lag_seconds",
      "At the last round that applied anything: seconds since its oldest batch committed",
    ),
    schemaBatches: registry.gauge(
      "pipeline_schema_version_batches",
      "Batches recorded in the database, by the schema version their header declared",
      ["version"],
    ),
    unknownColumnBatches: registry.gauge(
      "pipeline_schema_unknown_column_batches",
      "Batches whose header named this column outside their schema version (values kept in extra); the 50 most frequent columns",
      ["column"],
    ),
    schemaAlerts: registry.gauge(
      "pipeline_schema_alerts_open",
      "Open schema alerts in quality.alerts, by kind (schema_mismatch: a pinned source sent another version; deprecated_schema)",
      ["kind"],
    ),
    queueAge: registry.gauge(
      "pipeline_analytics_queue_age_seconds",
      "Age of the oldest HTTP batch waiting for the analytics rollups (0: none waiting)",
    ),
    inbox: registry.gauge(
      "pipeline_inbox_files",
      "Files waiting in the inbox (DATA_DIR/incoming, not *.tmp nor dotfiles)",
    ),
  };
  for (const outcome of OUTCOMES) t.httpRows.inc({ outcome }, 0);
  return t;
}

export type Telemetry = ReturnType<typeof createTelemetry>;
