// GET /v1/dashboard/kpis: the analyst dashboard's figures for a UTC date range (KPI cards with
// the previous period, funnel, hourly trend vs last week, top products, segments, traffic
// sources, data quality by reason), read as the analyst. Every figure, the window (default:
// the last 7 UTC days) and every comparison comes from the metrics catalogue's SQL
// (docs/metrics.md): this file only parses the request and shapes the rows.
// GET /v1/dead-letter?reason=CODE: example rejected rows, behind DEAD_LETTER_KEYS.
import type { Sql } from "../common/db.ts";
import { plain, read } from "./analytics.ts";
import { ApiKeys } from "./auth.ts";
import { HttpError } from "./responses.ts";

/** The requested UTC days; NULL = the catalogue's default (analytics.metric_period). */
export interface RangeRequest {
  from: string | null;
  to: string | null;
}

export interface Range {
  from: string;
  to: string;
  days: number;
  previous_from: string;
  previous_to: string;
  /** the period has not ended: figures so far, compared up to the same hour */
  is_partial: boolean;
}

function parseDay(name: string, raw: string | null): string | null {
  if (raw === null || raw === "") return null;
  const ms = Date.parse(`${raw}T00:00:00Z`);
  if (
    !/^\d{4}-\d{2}-\d{2}$/.test(raw) || isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== raw
  ) {
    throw new HttpError(400, `${name} must be a UTC date like 2026-11-21 (got "${raw}")`);
  }
  return raw;
}

/** ?from=&to= (UTC days, inclusive), checked for form only; the window rules are SQL's. */
export function parseRange(params: URLSearchParams): RangeRequest {
  return { from: parseDay("from", params.get("from")), to: parseDay("to", params.get("to")) };
}

export interface Card {
  value: number | null;
  previous: number | null;
  /** (value - previous) / previous; null when not comparable (comparison says why) */
  change: number | null;
  is_comparable: boolean;
  comparison: string;
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

export async function dashboardKpis(analyst: Sql, request: RangeRequest) {
  return await read(analyst, async (tx) => {
    let period;
    try {
      [period] = await tx`
        select from_day::text, to_day::text, days, previous_from::text, previous_to::text,
            is_partial
        from analytics.metric_period(${request.from}::date, ${request.to}::date)`;
    } catch (error) {
      if ((error as { code?: string }).code === "22023") {
        throw new HttpError(400, (error as Error).message, {}, {}, { cause: error });
      }
      throw error;
    }
    const range: Range = {
      from: period.from_day,
      to: period.to_day,
      days: period.days,
      previous_from: period.previous_from,
      previous_to: period.previous_to,
      is_partial: period.is_partial,
    };
    const metrics = await tx`
      select * from analytics.period_metrics(${range.from}::date, ${range.to}::date)`;
    const cards: Record<string, Card> = {};
    for (const m of metrics) {
      cards[m.metric] = {
        value: num(m.value),
        previous: num(m.previous_value),
        change: num(m.change),
        is_comparable: m.is_comparable,
        comparison: m.comparison,
      };
    }
    const [meta] = await tx`
      select (select reporting_currency from analytics.reporting_currency) as currency,
          exists (select from analytics.kpi_sessions) as has_events,
          (select max(day) from analytics.kpi_sessions)::text as last_day,
          now() as now`;
    const funnel = (await tx`
      select step, sessions, rate_from_previous, rate_from_first
      from analytics.funnel_summary(${range.from}::date, ${range.to}::date)
      order by step_number`).map((r) => ({
      step: r.step as string,
      sessions: Number(r.sessions),
      rate_from_previous: num(r.rate_from_previous),
      rate_from_first: num(r.rate_from_first),
    }));
    // the 24 hours of the range's last day next to the same hours a week earlier (hours after
    // the pipeline's watermark have no row: no figure, not a zero)
    const trend = (await tx`
      select h.hour, t.revenue, t.orders, t.last_week_revenue, t.last_week_orders,
          t.revenue_change, coalesce(t.is_partial, false) as is_partial, t.comparison
      from generate_series(
          ${range.to}::date::timestamp at time zone 'UTC',
          ${range.to}::date::timestamp at time zone 'UTC' + interval '23 hours',
          interval '1 hour'
      ) as h (hour)
      left join analytics.hourly_trend as t on t.hour = h.hour
      order by h.hour`).map((r) => ({
      hour: (r.hour as Date).toISOString(),
      revenue: num(r.revenue),
      orders: num(r.orders),
      last_week_revenue: num(r.last_week_revenue),
      last_week_orders: num(r.last_week_orders),
      revenue_change: num(r.revenue_change),
      is_partial: r.is_partial as boolean,
      comparison: (r.comparison ?? "no data for this hour") as string,
    }));
    const traffic = plain(
      await tx`
      select value as traffic_source, sessions, purchase_sessions, orders, revenue,
          session_conversion_rate, aov
      from analytics.channel_summary('traffic_source', ${range.from}::date, ${range.to}::date)`,
    );
    const products = plain(
      await tx`
      select product_id::text, orders, units, revenue, revenue_rank
      from analytics.product_performance
      order by revenue_rank, product_id limit 10`,
    );
    const segments = plain(
      await tx`
      select s.segment, coalesce(c.customers, 0)::int as customers, coalesce(c.share, 0) as share,
          coalesce(c.ltv, 0) as ltv, c.avg_ltv
      from unnest(array['High value', 'Regular', 'New', 'At risk', 'Churned'])
          with ordinality as s (segment, position)
      left join analytics.customer_segments as c on c.segment = s.segment
      order by s.position`,
    );
    const [q] = await tx`
      select rows, valid, invalid, duplicates, validity_rate, reasons
      from analytics.quality_summary(${range.from}::date, ${range.to}::date)`;
    return {
      generated_at: (meta.now as Date).toISOString(),
      database: "reachable" as const,
      currency: meta.currency as string,
      has_events: meta.has_events as boolean,
      last_day: meta.last_day as string | null,
      range,
      cards,
      funnel,
      trend,
      traffic_sources: traffic,
      top_products: products,
      segments,
      quality: {
        rows: Number(q.rows),
        valid: Number(q.valid),
        invalid: Number(q.invalid),
        duplicates: Number(q.duplicates),
        validity_rate: num(q.validity_rate),
        reasons: q.reasons as { reason: string; rows: number }[],
      },
    };
  });
}

export const REASON = /^[a-z][a-z0-9_]{0,63}$/;

/** GET /v1/dead-letter?reason=CODE[&limit=N], behind DEAD_LETTER_KEYS. */
export function createDeadLetterHandler(deps: { sql: Sql; keys: string; role: string }) {
  const keys = deps.keys.trim() ? new ApiKeys(deps.keys) : undefined;
  return async (req: Request, url: URL) => {
    if (!keys) {
      throw new HttpError(
        404,
        "The dead-letter drill-down is off: set DEAD_LETTER_KEYS to enable it",
      );
    }
    try {
      keys.authenticate(req.headers.get("authorization"));
    } catch {
      throw new HttpError(
        401,
        "The dead letter needs a key with read access: send Authorization: Bearer <one of DEAD_LETTER_KEYS>",
        { "www-authenticate": 'Bearer realm="dead-letter"' },
      );
    }
    const reason = url.searchParams.get("reason") ?? "";
    if (!REASON.test(reason)) {
      throw new HttpError(
        400,
        `reason must be a reason code such as negative_price (got "${reason}")`,
      );
    }
    const rawLimit = url.searchParams.get("limit") ?? "20";
    if (!/^\d+$/.test(rawLimit) || Number(rawLimit) < 1 || Number(rawLimit) > 100) {
      throw new HttpError(400, `limit must be a whole number from 1 to 100 (got "${rawLimit}")`);
    }
    const rows = await deps.sql.begin("read only", async (tx) => {
      await tx.unsafe(`set local role ${deps.role}`);
      return await tx`select * from quality.dead_letter_examples(${reason}, ${Number(rawLimit)})`;
    });
    return { reason, count: rows.length, rows: plain(rows) };
  };
}
