// The growth KPI sections of `deno task report` (db/views/090_… to 140_…). Figures come from
// the catalogue's views and range functions as they are (analytics.period_metrics,
// channel_summary, cart_abandonment_summary): nothing is summed or divided here.
import type postgres from "postgres";
import type { Column, Format, Row, Section } from "./sections.ts";

const col = (key: string, format: Format, title = key): Column => ({ key, title, format });

const performanceColumns = (dim: string): Column[] => [
  col(dim, "text", dim.replace("_", " ")),
  col("sessions", "int"),
  col("orders", "int"),
  col("revenue", "money"),
  col("session_conversion_rate", "rate", "session conv."),
  col("aov", "money"),
];

/** The KPI sections, read in the report's transaction. */
export async function fetchKpiSections(
  tx: postgres.TransactionSql,
  since: string | null,
  limit: number,
): Promise<Section[]> {
  const period = since ? `since ${since}` : "all days";
  const performance = async (channel: string, dim: string): Promise<Row[]> =>
    await tx`
      select value as ${tx(dim)}, sessions::int, orders::int, revenue::float8,
          session_conversion_rate::float8, aov::float8
      from analytics.channel_summary(${channel}, ${since}::date, null)
      limit ${limit}` as Row[];

  return [
    {
      key: "traffic_sources",
      title: `Traffic sources (${period}; the session's first event)`,
      columns: performanceColumns("traffic_source"),
      rows: await performance("traffic_source", "traffic_source"),
    },
    {
      key: "devices",
      title: `Devices (${period})`,
      columns: performanceColumns("device"),
      rows: await performance("device", "device"),
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
        select category, carts::int, abandoned_carts::int, abandonment_rate::float8,
            abandoned_value::float8
        from analytics.cart_abandonment_summary(${since}::date, null)
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
      key: "customer_retention",
      title: "Weekly retention (cohorts by the UTC week of the first purchase, newest first)",
      columns: [
        col("cohort_week", "text", "cohort week"),
        col("weeks_since", "int", "week"),
        col("cohort_customers", "int", "customers"),
        col("active_customers", "int", "active"),
        col("retention_rate", "rate", "retention"),
      ],
      rows: await tx`
        select cohort_week::text, weeks_since::int, cohort_customers::int,
            active_customers::int, retention_rate::float8
        from analytics.customer_retention
        order by cohort_week desc, weeks_since
        limit ${limit}` as Row[],
    },
    {
      key: "product_affinity",
      title:
        "Customers also bought (each product's best match, at least 3 shared sessions, most shared first)",
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
        col("comparison", "text"),
      ],
      rows: await tx`
        select to_char(hour at time zone 'UTC', 'YYYY-MM-DD"T"HH24:00"Z"') as hour,
            events::int, orders::int, revenue::float8, last_week_revenue::float8,
            revenue_change::float8, comparison
        from analytics.hourly_trend
        where ${since}::date is null or hour >= ${since}::date::timestamp at time zone 'UTC'
        order by hour desc
        limit ${limit}` as Row[],
    },
  ];
}

/** Key figures of the last 7 UTC days (today included) against the 7 days before. */
export async function fetchPeriodSection(tx: postgres.TransactionSql): Promise<Section> {
  const rows = await tx`
    select metric, unit, value::float8 as value, previous_value::float8 as previous_value,
        change::float8 as change, comparison, from_day::text as from_day,
        to_day::text as to_day
    from analytics.period_metrics(null, null)` as Row[];
  const span = rows[0] ? `${rows[0].from_day} – ${rows[0].to_day}` : "";
  return {
    key: "key_figures",
    title: `Key figures, last 7 UTC days (${span}) vs the 7 days before`,
    columns: [
      col("metric", "text"),
      col("value", "by_unit"),
      col("previous_value", "by_unit", "previous"),
      col("change", "rate"),
      col("unit", "text"),
      col("comparison", "text"),
    ],
    rows,
  };
}
