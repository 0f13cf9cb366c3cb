// The growth KPI sections of `deno task report` (db/views/090_… to 140_…). Figures come from
// the views as they are; sums over a period are sums of the views' daily counters (rates are
// recomputed from those sums, never averaged).
import type postgres from "postgres";
import type { Column, Format, Row, Section } from "./report.ts";

const col = (key: string, format: Format, title = key): Column => ({ key, title, format });

const performanceColumns = (dim: string): Column[] => [
  col(dim, "text", dim.replace("_", " ")),
  col("sessions", "int"),
  col("orders", "int"),
  col("revenue", "money"),
  col("conversion_rate", "rate", "conversion"),
  col("aov", "money"),
];

/** The KPI sections, read in the report's transaction. */
export async function fetchKpiSections(
  tx: postgres.TransactionSql,
  since: string | null,
  limit: number,
): Promise<Section[]> {
  const period = since ? `since ${since}` : "all days";
  const performance = async (view: string, dim: string): Promise<Row[]> =>
    await tx.unsafe(
      `select ${dim}, sum(sessions)::int as sessions, sum(orders)::int as orders,
          sum(revenue)::float8 as revenue,
          round(sum(converted_sessions) / sum(sessions), 6)::float8 as conversion_rate,
          round(sum(revenue) / nullif(sum(orders), 0), 2)::float8 as aov
      from analytics.${view}
      where $1::date is null or day >= $1::date
      group by ${dim}
      order by sum(revenue) desc, ${dim}
      limit $2`,
      [since, limit],
    ) as Row[];

  return [
    {
      key: "traffic_sources",
      title: `Traffic sources (${period}; the session's first event)`,
      columns: performanceColumns("traffic_source"),
      rows: await performance("traffic_source_performance", "traffic_source"),
    },
    {
      key: "devices",
      title: `Devices (${period})`,
      columns: performanceColumns("device"),
      rows: await performance("device_performance", "device"),
    },
    {
      key: "session_engagement",
      title: "Session engagement (UTC days, newest first)",
      columns: [
        col("day", "text"),
        col("sessions", "int"),
        col("events_per_session", "text", "events/session"),
        col("median_duration_seconds", "seconds", "median"),
        col("p90_duration_seconds", "seconds", "p90"),
        col("bounce_rate", "rate", "bounce"),
        col("search_session_rate", "rate", "with search"),
      ],
      rows: await tx`
        select day::text as day, sessions::int, events_per_session::text,
            median_duration_seconds::float8, p90_duration_seconds::float8,
            bounce_rate::float8, search_session_rate::float8
        from analytics.session_engagement
        where ${since}::date is null or day >= ${since}::date
        order by day desc
        limit ${limit}` as Row[],
    },
    {
      key: "cart_abandonment",
      title: `Cart abandonment by category (${period})`,
      columns: [
        col("category", "text"),
        col("carts", "int"),
        col("abandoned_carts", "int", "abandoned"),
        col("abandonment_rate", "rate", "rate"),
        col("abandoned_value", "money", "abandoned value"),
      ],
      rows: await tx`
        select category, sum(carts)::int as carts, sum(abandoned_carts)::int as abandoned_carts,
            round(sum(abandoned_carts) / sum(carts), 6)::float8 as abandonment_rate,
            sum(abandoned_value)::float8 as abandoned_value
        from analytics.cart_abandonment
        where ${since}::date is null or day >= ${since}::date
        group by category
        order by sum(abandoned_value) desc, category
        limit ${limit}` as Row[],
    },
    {
      key: "customer_segments",
      title: "Customer segments (as of the latest UTC day with events)",
      columns: [
        col("segment", "text"),
        col("customers", "int"),
        col("share", "rate"),
        col("ltv", "money"),
        col("avg_ltv", "money", "avg ltv"),
      ],
      rows: await tx`
        select s.segment, coalesce(c.customers, 0)::int as customers,
            coalesce(c.share, 0)::float8 as share, coalesce(c.ltv, 0)::float8 as ltv,
            c.avg_ltv::float8 as avg_ltv
        from unnest(array['High value', 'Regular', 'New', 'At risk', 'Churned'])
            with ordinality as s (segment, position)
        left join analytics.customer_segments as c on c.segment = s.segment
        order by s.position` as Row[],
    },
    {
      key: "product_affinity",
      title: "Customers also bought (each product's best match, most shared baskets first)",
      columns: [
        col("product_id", "id", "product"),
        col("recommended_product_id", "id", "also bought"),
        col("pair_sessions", "int", "sessions"),
        col("confidence", "rate"),
        col("lift", "text"),
        col("score", "text"),
      ],
      rows: await tx`
        select product_id::text, recommended_product_id::text, pair_sessions::int,
            confidence::float8, lift::text, score::text
        from analytics.product_affinity
        where rank = 1
        order by pair_sessions desc, score desc, product_id
        limit ${limit}` as Row[],
    },
    {
      key: "hourly_trend",
      title: "Hourly trend vs the same hour last week (UTC hours, newest first)",
      columns: [
        col("hour", "text"),
        col("events", "int"),
        col("orders", "int"),
        col("revenue", "money"),
        col("last_week_revenue", "money", "last week"),
        col("revenue_change", "rate", "change"),
        col("status", "text"),
      ],
      rows: await tx`
        select to_char(hour at time zone 'UTC', 'YYYY-MM-DD"T"HH24:00"Z"') as hour,
            events::int, orders::int, revenue::float8, last_week_revenue::float8,
            revenue_change::float8,
            case when is_partial then 'partial' else '' end as status
        from analytics.hourly_trend
        where ${since}::date is null or hour >= ${since}::date::timestamp at time zone 'UTC'
        order by hour desc
        limit ${limit}` as Row[],
    },
  ];
}
