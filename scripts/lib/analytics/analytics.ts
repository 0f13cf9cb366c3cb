// Analytics maintenance: the rollups behind the analytics views are updated inside every batch
// transaction (analytics.apply_batch), so figures are fresh at commit; HTTP batches may defer
// that step (deferred.ts). These helpers cover the rest: a forced full rebuild and the inbox
// report.
import type { Sql } from "../common/db.ts";

/** The analytics views people and scripts read (db/views), in file order. */
export const ANALYTICS_VIEWS = [
  "metrics",
  "daily_sales",
  "hourly_events",
  "category_performance",
  "product_performance",
  "funnel",
  "customer_rfm",
  "data_quality",
  "pipeline_health",
  "channel_performance",
  "traffic_source_performance",
  "device_performance",
  "session_engagement",
  "cart_abandonment",
  "customer_segment_history",
  "customer_segments",
  "customer_retention",
  "product_affinity",
  "hourly_trend",
] as const;
export type AnalyticsView = typeof ANALYTICS_VIEWS[number];

export interface RebuildResult {
  /** events counted into the rebuilt rollups */
  events: number;
  /** time the rebuild took inside the database */
  ms: number;
}

/**
 * Rebuilds every rollup from core.events, quality.batch_metrics and quality.dead_letter in one
 * transaction. Waits for batches in flight and holds new ones back until it commits; readers
 * keep seeing the previous figures until then. Needs the schema owner's rights (or superuser).
 */
export async function rebuildRollups(sql: Sql): Promise<RebuildResult> {
  const [{ result }] = await sql`select analytics.rebuild_rollups() as result`;
  return { events: Number(result.events), ms: Number(result.ms) };
}

/**
 * Records how many files are waiting in the inbox, for analytics.pipeline_health. The ingester
 * may call it after each scan; the database cannot see the directory itself.
 */
export async function reportInbox(sql: Sql, filesWaiting: number): Promise<void> {
  if (!Number.isInteger(filesWaiting) || filesWaiting < 0) {
    throw new RangeError(`Files waiting must be a whole number >= 0 (got "${filesWaiting}")`);
  }
  await sql`select analytics.report_inbox(${filesWaiting}::int)`;
}
