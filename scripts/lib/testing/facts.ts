// Every fact the pipeline stores or reports, as rows in a stable order: two databases that
// took the same input compare equal on these (Citus vs single node, chunks vs one session).
import { ANALYTICS_VIEWS } from "../analytics/analytics.ts";
import type { Sql } from "../common/db.ts";

// Every stored fact, in a stable order; ids and timestamps that the database assigns at
// ingestion (dead_letter_id, created_at, ingested_at) are left out, batch ids are kept.
export const FACTS: Record<string, string> = {
  batch_metrics: `select batch_id, source_kind, source_name, sha256, rows, valid, invalid,
      duplicates, late, validity_rate, reason_counts, bytes
    from quality.batch_metrics order by batch_id`,
  events: `select event_id, event_time, event_type, user_id, session_id, product_id, category,
      price, quantity, total_amount, currency, device, traffic_source, payment_method,
      search_query, encode(email_hash, 'hex') as email_hash, is_late, batch_id, line_no, extra
    from core.events order by event_id`,
  event_ids: `select event_id, payload_hash, batch_id, line_no from core.event_ids
    order by event_id`,
  dead_letter: `select batch_id, source, line_no, reasons, raw_line, event_id, event_time,
      event_type, user_id, session_id, product_id, category, price, quantity, currency, device,
      traffic_source, payment_method, search_query, core.unseal_email(user_email_sealed) as user_email,
      schema_version, raw_bytes, extra,
      replayed_at is not null as replayed, replay_count
    from quality.dead_letter order by batch_id, line_no`,
  files: `select sha256, file_name, bytes, status, reason, batch_id, schema_version,
      unknown_columns from ingest.files order by sha256`,
  replays: `select replay_id, reasons, source, rows, moved, duplicates, still_invalid
    from quality.replays order by replay_id`,
  daily_sales: "select * from analytics.daily_sales order by day",
  hourly_events: "select * from analytics.hourly_events order by hour, event_type",
  category_performance: "select * from analytics.category_performance order by category",
  product_performance: "select * from analytics.product_performance order by product_id",
  funnel: "select * from analytics.funnel order by 1",
  customer_rfm: "select * from analytics.customer_rfm order by user_id",
  data_quality: "select * from analytics.data_quality order by 1, 2",
};
// every other analytics view (the growth KPIs), except those that read the clock
for (const view of ANALYTICS_VIEWS) {
  if (view in FACTS || view === "pipeline_health" || view === "hourly_trend") continue;
  FACTS[view] = `select * from analytics.${view} as v order by v::text`;
}

export async function facts(sql: Sql): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const [name, q] of Object.entries(FACTS)) out[name] = [...await sql.unsafe(q)];
  return out;
}
