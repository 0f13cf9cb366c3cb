// Pipeline figures read at request time: database totals (via analytics.collector_status(),
// a definer function the analyst may call) and the inbox backlog on disk.
import type { Sql } from "../common/db.ts";
import { within } from "../common/retry.ts";

export interface LastBatch {
  batch_id: number;
  source_kind: string;
  finished_at: string;
  rows: number;
  validity_rate: number | null;
  age_seconds: number;
}

export interface PipelineStatus {
  batches: number;
  rows: number;
  valid: number;
  invalid: number;
  duplicates: number;
  late: number;
  last_batch: LastBatch | null;
  files: Record<string, number>;
  /** seconds the oldest deferred HTTP batch has waited for the rollups (0: none) */
  analytics_queue_age_seconds?: number;
}

export { TimeoutError } from "../common/retry.ts";
export { inboxBacklog } from "../common/inbox.ts";

export async function pipelineStatus(analyst: Sql, timeoutMs = 3_000): Promise<PipelineStatus> {
  const [{ status }] = await within(
    analyst`select analytics.collector_status() as status`,
    timeoutMs,
    "The database",
  );
  return status as PipelineStatus;
}

/** Schema drift figures (analytics.collector_schema(), docs/schema-registry.md). */
export interface SchemaStatus {
  /** batches per schema version */
  versions: Record<string, number>;
  /** batches per unknown column name (the 50 most frequent) */
  unknown_columns: Record<string, number>;
  /** open alerts per kind: schema_mismatch, deprecated_schema */
  alerts: Record<string, number>;
}

export async function schemaStatus(analyst: Sql, timeoutMs = 3_000): Promise<SchemaStatus> {
  const [{ status }] = await within(
    analyst`select analytics.collector_schema() as status`,
    timeoutMs,
    "The database",
  );
  return status as SchemaStatus;
}
