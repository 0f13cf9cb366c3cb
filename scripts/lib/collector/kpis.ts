// GET /v1/dashboard/kpis: the analyst dashboard's figures for a UTC date range (KPI cards with
// the previous period, funnel, hourly trend vs last week, top products, segments, traffic
// sources, data quality by reason), read as the analyst from the analytics views. Sums over a
// range are sums of the views' daily counters; rates are recomputed from those sums.
// GET /v1/dead-letter?reason=CODE: example rejected rows, behind DEAD_LETTER_KEYS.
import type postgres from "postgres";
import type { Sql } from "../common/db.ts";
import { plain, read } from "./analytics.ts";
import { ApiKeys } from "./auth.ts";
import { HttpError } from "./responses.ts";

const DAY_MS = 86_400_000;
export const MAX_RANGE_DAYS = 366;
export const DEFAULT_RANGE_DAYS = 7;

export interface Range {
  from: string;
  to: string;
  days: number;
  previous_from: string;
  previous_to: string;
}

const iso = (ms: number) => new Date(ms).toISOString().slice(0, 10);

function parseDay(name: string, raw: string): number {
  const ms = Date.parse(`${raw}T00:00:00Z`);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(raw) || isNaN(ms) || iso(ms) !== raw) {
    throw new HttpError(400, `${name} must be a UTC date like 2026-11-21 (got "${raw}")`);
  }
  return ms;
}

/** ?from=&to= (UTC days, inclusive); default: the last 7 days up to today. */
export function parseRange(params: URLSearchParams, now = Date.now()): Range {
  const today = Math.floor(now / DAY_MS) * DAY_MS;
  const toRaw = params.get("to"), fromRaw = params.get("from");
  const to = toRaw ? parseDay("to", toRaw) : today;
  const from = fromRaw ? parseDay("from", fromRaw) : to - (DEFAULT_RANGE_DAYS - 1) * DAY_MS;
  if (from > to) {
    throw new HttpError(400, `from (${iso(from)}) is after to (${iso(to)}): swap them`);
  }
  const days = (to - from) / DAY_MS + 1;
  if (days > MAX_RANGE_DAYS) {
    throw new HttpError(400, `The range is ${days} days: choose at most ${MAX_RANGE_DAYS}`);
  }
  return {
    from: iso(from),
    to: iso(to),
    days,
    previous_from: iso(from - days * DAY_MS),
    previous_to: iso(from - DAY_MS),
  };
}

interface Totals {
  revenue: number;
  orders: number;
  sessions: number;
  converted: number;
}

export interface Card {
  value: number | null;
  previous: number | null;
  /** (value - previous) / previous; null when there is nothing to compare with */
  change: number | null;
}

const num = (v: unknown) => (v === null || v === undefined ? 0 : Number(v));
const ratio = (a: number, b: number) => (b > 0 ? a / b : null);
const change = (value: number | null, previous: number | null) =>
  value === null || previous === null || previous === 0 ? null : (value - previous) / previous;
const card = (value: number | null, previous: number | null): Card => ({
  value,
  previous,
  change: change(value, previous),
});

async function totals(tx: postgres.TransactionSql, from: string, to: string): Promise<Totals> {
  const [t] = await tx`
    select coalesce(sum(revenue), 0) as revenue, coalesce(sum(orders), 0) as orders,
        coalesce(sum(sessions), 0) as sessions, coalesce(sum(converted_sessions), 0) as converted
    from analytics.traffic_source_performance
    where day between ${from}::date and ${to}::date`;
  return {
    revenue: num(t.revenue),
    orders: num(t.orders),
    sessions: num(t.sessions),
    converted: num(t.converted),
  };
}

export async function dashboardKpis(analyst: Sql, range: Range) {
  return await read(analyst, async (tx) => {
    const [meta] = await tx`
      select (select reporting_currency from analytics.reporting_currency) as currency,
          exists (select from analytics.kpi_sessions) as has_events,
          (select max(day) from analytics.kpi_sessions)::text as last_day,
          now() as now`;
    const cur = await totals(tx, range.from, range.to);
    const prev = await totals(tx, range.previous_from, range.previous_to);
    const cards = {
      revenue: card(cur.revenue, prev.revenue),
      orders: card(cur.orders, prev.orders),
      aov: card(ratio(cur.revenue, cur.orders), ratio(prev.revenue, prev.orders)),
      conversion: card(ratio(cur.converted, cur.sessions), ratio(prev.converted, prev.sessions)),
    };
    const [f] = await tx`
      select coalesce(sum(view_sessions), 0) as view, coalesce(sum(add_to_cart_sessions), 0) as cart,
          coalesce(sum(purchase_sessions), 0) as purchase
      from analytics.funnel where day between ${range.from}::date and ${range.to}::date`;
    const steps = [
      { step: "Viewed a product", sessions: num(f.view) },
      { step: "Added to cart", sessions: num(f.cart) },
      { step: "Purchased", sessions: num(f.purchase) },
    ];
    const funnel = steps.map((s, i) => ({
      ...s,
      rate_from_previous: i === 0 ? null : ratio(s.sessions, steps[i - 1].sessions),
      rate_from_first: i === 0 ? null : ratio(s.sessions, steps[0].sessions),
    }));
    // the 24 hours of the range's last day (its current hour flagged partial) and the same
    // hours a week earlier
    const trend = (await tx`
      select h.hour, t.revenue, t.orders, coalesce(t.is_partial, false) as is_partial,
          w.revenue as last_week_revenue, w.orders as last_week_orders
      from generate_series(
          ${range.to}::date::timestamp at time zone 'UTC',
          ${range.to}::date::timestamp at time zone 'UTC' + interval '23 hours',
          interval '1 hour'
      ) as h (hour)
      left join analytics.hourly_trend as t on t.hour = h.hour
      left join analytics.hourly_trend as w on w.hour = h.hour - interval '7 days'
      order by h.hour`).map((r) => ({
      hour: (r.hour as Date).toISOString(),
      revenue: num(r.revenue),
      orders: num(r.orders),
      last_week_revenue: num(r.last_week_revenue),
      last_week_orders: num(r.last_week_orders),
      is_partial: r.is_partial as boolean,
    }));
    const traffic = plain(
      await tx`
      select traffic_source, sum(sessions)::int as sessions, sum(orders)::int as orders,
          sum(revenue) as revenue,
          round(sum(converted_sessions) / nullif(sum(sessions), 0), 6) as conversion_rate,
          round(sum(revenue) / nullif(sum(orders), 0), 2) as aov
      from analytics.traffic_source_performance
      where day between ${range.from}::date and ${range.to}::date
      group by traffic_source
      order by sum(revenue) desc, traffic_source`,
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
    const reasons = plain(
      await tx`
      select reason, sum(rows)::int as rows
      from analytics.rollup_quality_reasons
      where hour >= ${range.from}::date::timestamp at time zone 'UTC'
          and hour < (${range.to}::date + 1)::timestamp at time zone 'UTC'
      group by reason order by sum(rows) desc, reason`,
    );
    const [q] = await tx`
      select coalesce(sum(rows), 0)::int as rows, coalesce(sum(valid), 0)::int as valid,
          coalesce(sum(invalid), 0)::int as invalid, coalesce(sum(duplicates), 0)::int as duplicates
      from analytics.rollup_quality_hourly
      where hour >= ${range.from}::date::timestamp at time zone 'UTC'
          and hour < (${range.to}::date + 1)::timestamp at time zone 'UTC'`;
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
      quality: { ...q, reasons },
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
