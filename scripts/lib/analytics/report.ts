// The analytics report: reads the analytics views (as the analyst role) and renders them as
// aligned terminal tables or plain JSON. Every figure is a column of the metrics catalogue
// (analytics.metrics, docs/metrics.md), selected as it is: nothing is computed here.
import type { Sql } from "../common/db.ts";
import { fetchKpiSections, fetchPeriodSection } from "./kpi_report.ts";
import type { Column, Format, Row, Section, Value } from "./sections.ts";

export type { Column, Format, Row, Section } from "./sections.ts";

export interface ReportOptions {
  /** first UTC day (YYYY-MM-DD) of the time series: daily sales, funnel, data quality */
  since?: string;
  /** rows per table */
  limit: number;
}

export interface Report {
  generated_at: string;
  /** the currency of every money column (core.settings.reporting_currency) */
  reporting_currency: string;
  since: string | null;
  limit: number;
  sections: Section[];
}

const col = (key: string, format: Format, title = key): Column => ({ key, title, format });

/** Reads every section of the report in one read-only transaction (one consistent snapshot). */
export async function fetchReport(sql: Sql, opts: ReportOptions): Promise<Report> {
  const since = opts.since ?? null;
  const limit = opts.limit;
  const sections: Section[] = [];
  let generated = new Date();
  let currency = "";
  await sql.begin("isolation level repeatable read read only", async (tx) => {
    const [{ now, reporting }] = await tx`
      select now() as now, (select reporting_currency from analytics.reporting_currency) as reporting`;
    generated = now;
    currency = reporting;
    /** a money column in the reporting currency: its title says which */
    const money = (key: string, title = key) => col(key, "money", `${title} ${currency}`);

    sections.push(await fetchPeriodSection(tx));

    sections.push({
      key: "daily_sales",
      title: "Daily sales (UTC days, newest first)",
      columns: [
        col("day", "text"),
        col("orders", "int"),
        col("units", "int"),
        money("revenue"),
        money("aov"),
        col("buyers", "int"),
        col("visitors", "int"),
        col("buyer_rate", "rate", "buyer rate"),
        money("revenue_per_visitor", "rev/visitor"),
      ],
      rows: await tx`
        select day::text as day, orders, units, revenue::float8 as revenue, aov::float8 as aov, buyers,
            visitors, buyer_rate::float8 as buyer_rate,
            revenue_per_visitor::float8 as revenue_per_visitor
        from analytics.daily_sales
        where ${since}::date is null or day >= ${since}::date
        order by day desc
        limit ${limit}`,
    });

    sections.push({
      key: "revenue_by_currency",
      title: `Revenue by currency paid in, converted to ${currency} at each day's rate`,
      columns: [
        col("day", "text"),
        col("currency", "text"),
        col("orders", "int"),
        col("revenue", "money", "revenue (paid)"),
        col("rate_to_reporting", "text", `rate ${currency}/unit`),
        money("revenue_reporting", "revenue"),
      ],
      rows: await tx`
        select day::text as day, currency, orders, revenue::float8 as revenue,
            rate_to_reporting::float8 as rate_to_reporting,
            revenue_reporting::float8 as revenue_reporting
        from analytics.daily_revenue_by_currency
        where ${since}::date is null or day >= ${since}::date
        order by day desc, currency
        limit ${limit}`,
    });

    sections.push({
      key: "top_categories",
      title: "Top categories by revenue (all time)",
      columns: [
        col("category", "text"),
        col("views", "int"),
        col("add_to_carts", "int", "carts"),
        col("orders", "int"),
        col("units", "int"),
        money("revenue"),
        money("avg_selling_price", "avg price"),
        col("orders_per_view", "rate", "orders/view"),
      ],
      rows: await tx`
        select category, views, add_to_carts, orders, units, revenue::float8 as revenue,
            avg_selling_price::float8 as avg_selling_price,
            orders_per_view::float8 as orders_per_view
        from analytics.category_performance
        order by revenue desc, category
        limit ${limit}`,
    });

    sections.push({
      key: "top_products",
      title: "Top products by revenue (all time)",
      columns: [
        col("revenue_rank", "int", "rank"),
        col("product_id", "id", "product"),
        col("views", "int"),
        col("orders", "int"),
        col("units", "int"),
        money("revenue"),
        col("orders_per_view", "rate", "orders/view"),
      ],
      rows: await tx`
        select revenue_rank, product_id, views, orders, units, revenue::float8 as revenue,
            orders_per_view::float8 as orders_per_view
        from analytics.product_performance
        order by revenue_rank, product_id
        limit ${limit}`,
    });

    sections.push({
      key: "funnel",
      title: "Funnel: sessions per step (UTC days, newest first)",
      columns: [
        col("day", "text"),
        col("view_sessions", "int", "viewed"),
        col("add_to_cart_sessions", "int", "carted"),
        col("purchase_sessions", "int", "bought"),
        col("view_to_cart_rate", "rate", "view->cart"),
        col("cart_to_purchase_rate", "rate", "cart->buy"),
        col("view_to_purchase_rate", "rate", "view->buy"),
      ],
      rows: await tx`
        select day::text as day, view_sessions, add_to_cart_sessions, purchase_sessions,
            view_to_cart_rate::float8 as view_to_cart_rate,
            cart_to_purchase_rate::float8 as cart_to_purchase_rate,
            view_to_purchase_rate::float8 as view_to_purchase_rate
        from analytics.funnel
        where ${since}::date is null or day >= ${since}::date
        order by day desc
        limit ${limit}`,
    });

    sections.push(...await fetchKpiSections(tx, since, limit));

    sections.push({
      key: "data_quality",
      title: "Data quality (UTC hours of ingestion, newest first)",
      columns: [
        col("hour", "text"),
        col("files", "int"),
        col("rejected_files", "int", "rejected"),
        col("batches", "int"),
        col("rows", "int"),
        col("valid", "int"),
        col("invalid", "int"),
        col("duplicates", "int", "dups"),
        col("late", "int"),
        col("validity_rate", "rate", "validity"),
        col("top_reasons", "list", "top reasons"),
      ],
      rows: await tx`
        select to_char(hour at time zone 'UTC', 'YYYY-MM-DD"T"HH24:00"Z"') as hour,
            files, rejected_files, batches, rows, valid, invalid, duplicates, late,
            validity_rate::float8 as validity_rate, top_reasons
        from analytics.data_quality
        where ${since}::date is null or hour >= ${since}::date::timestamp at time zone 'UTC'
        order by hour desc
        limit ${limit}`,
    });

    sections.push({
      key: "pipeline_health",
      title: "Pipeline health",
      columns: [
        col("last_file", "text", "last file"),
        col("last_file_age_seconds", "seconds", "file age"),
        col("files_waiting", "int", "waiting"),
        col("last_batch_seconds", "seconds", "last batch"),
        col("rows_per_second_1m", "int", "rows/s 1m"),
        col("rows_per_second_1h", "int", "rows/s 1h"),
        col("validity_rate_1h", "rate", "validity 1h"),
        col("open_alerts", "int", "open alerts"),
      ],
      rows: await tx`
        select last_file, last_file_at, last_file_age_seconds::float8 as last_file_age_seconds,
            files_waiting, files_waiting_reported_at, last_batch_id, last_batch_kind,
            last_batch_seconds::float8 as last_batch_seconds,
            rows_per_second_1m::float8 as rows_per_second_1m,
            rows_per_second_1h::float8 as rows_per_second_1h,
            validity_rate_1h::float8 as validity_rate_1h, open_alerts, last_alert_at
        from analytics.pipeline_health`,
    });
  });
  for (const s of sections) s.rows = s.rows.map((r) => ({ ...r }));
  return {
    generated_at: generated.toISOString(),
    reporting_currency: currency,
    since,
    limit,
    sections,
  };
}

const numberFormats = new Set<Format>(["id", "int", "money", "rate", "seconds", "by_unit"]);

/** 12.3s, 4m 05s, 3h 07m, 2d 04h */
function duration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const two = (n: number) => String(Math.floor(n)).padStart(2, "0");
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${two(seconds % 60)}s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ${two((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86400)}d ${two((seconds % 86400) / 3600)}h`;
}

/** One cell as text; NULL is "-". */
export function formatValue(value: Value | undefined, format: Format): string {
  if (value === null || value === undefined) return "-";
  switch (format) {
    case "int":
      return Math.round(Number(value)).toLocaleString("en-US");
    case "money":
      return Number(value).toLocaleString("en-US", {
        minimumFractionDigits: 2,
        maximumFractionDigits: 2,
      });
    case "rate":
      return `${(Number(value) * 100).toFixed(2)}%`;
    case "seconds":
      return duration(Number(value));
    case "list":
      return Array.isArray(value) ? (value.length ? value.join(", ") : "-") : String(value);
    default:
      return String(value);
  }
}

/** An aligned table: header, rule, rows; numbers right-aligned. "(no rows)" when empty. */
export function formatTable(columns: Column[], rows: Row[]): string {
  const unitFormat = (unit: unknown): Format =>
    /^[A-Z]{3}$/.test(String(unit)) ? "money" : unit === "ratio" ? "rate" : "int";
  const cells = rows.map((r) =>
    columns.map((c) =>
      formatValue(r[c.key], c.format === "by_unit" ? unitFormat(r.unit) : c.format)
    )
  );
  const widths = columns.map((c, i) =>
    Math.max(c.title.length, ...cells.map((line) => line[i].length))
  );
  const pad = (text: string, i: number) =>
    numberFormats.has(columns[i].format) ? text.padStart(widths[i]) : text.padEnd(widths[i]);
  const line = (parts: string[]) => parts.map(pad).join("  ").trimEnd();
  const out = [line(columns.map((c) => c.title)), widths.map((w) => "-".repeat(w)).join("  ")];
  if (cells.length === 0) out.push("(no rows)");
  for (const c of cells) out.push(line(c));
  return out.join("\n");
}

/** The whole report as terminal text. */
export function renderReport(report: Report): string {
  const head = `Analytics report, ${report.generated_at.slice(0, 19)}Z` +
    `, money in ${report.reporting_currency}` +
    (report.since ? `, since ${report.since}` : "") + `, up to ${report.limit} rows per table`;
  const parts = [head];
  for (const s of report.sections) parts.push(`${s.title}\n${formatTable(s.columns, s.rows)}`);
  return parts.join("\n\n") + "\n";
}

/** The report for machines: { generated_at, since, limit, <section>: rows[] }. */
export function reportJson(report: Report): string {
  const out: Record<string, unknown> = {
    generated_at: report.generated_at,
    reporting_currency: report.reporting_currency,
    since: report.since,
    limit: report.limit,
  };
  for (const s of report.sections) {
    out[s.key] = s.key === "pipeline_health" ? s.rows[0] ?? null : s.rows;
  }
  return JSON.stringify(out, null, 2) + "\n";
}
