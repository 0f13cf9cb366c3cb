// The analytics views against a real database: every column of every view is checked against
// an independent computation (plain SQL over core.events and the quality tables, or TypeScript),
// after each load, replay and full rebuild.
import { assert, assertEquals, assertRejects } from "../testing/assert.ts";
import { ANALYTICS_VIEWS, rebuildRollups, reportInbox } from "./analytics.ts";
import { loadConfig } from "../common/config.ts";
import { connect, type Sql } from "../common/db.ts";
import { applyDeferred } from "./deferred.ts";
import { bytesSource, loadSource, settings } from "../batch/mod.ts";
import { testDb } from "../testing/testdb.ts";

const cfg = settings(loadConfig({}));
const HEADER =
  "event_id,event_time,event_type,user_id,session_id,product_id,category,price,quantity\n";
const DAY = 86_400_000;
/** UTC midnight three days ago: D, D+1 and D+2 are whole past days. */
const D = Math.floor(Date.now() / DAY) * DAY - 3 * DAY;
const id = (n: number) => `0190b000-0000-7000-8000-${String(n).padStart(12, "0")}`;

/** event_time on day D+offset at HH:MM[:SS[.mmm]] UTC */
function at(offset: number, clock: string): string {
  const [h, m, s = "0"] = clock.split(":");
  return new Date(D + offset * DAY + (Number(h) * 60 + Number(m)) * 60_000 + Number(s) * 1000)
    .toISOString();
}

interface Ev {
  n: number;
  time: string;
  type: string;
  user?: number;
  session: string;
  product?: number;
  category?: string;
  price?: string;
  qty?: number;
}

function line(e: Ev): string {
  return [
    id(e.n),
    e.time,
    e.type,
    e.user ?? "",
    e.session,
    e.product ?? "",
    e.category ?? "",
    e.price ?? "",
    e.qty ?? "",
  ].join(",") + "\n";
}

const csv = (events: Ev[]) => new TextEncoder().encode(HEADER + events.map(line).join(""));

function load(sql: Sql, name: string, events: Ev[], kind: "file" | "http" = "file") {
  return loadSource(sql, bytesSource(csv(events)), name, cfg, { kind, role: "pipeline_ingest" });
}

// ---------------------------------------------------------------- independent computations

const visitorSql = "case when user_id is null then 'guest:' || session_id else user_id::text end";

/** US dollars per unit on a day: that day's rate, else the latest earlier, else the earliest later. */
const rateSql = (currency: string, day: string) => `
    coalesce(
        (select usd_per_unit from core.exchange_rates
         where currency = ${currency} and day <= ${day} order by day desc limit 1),
        (select usd_per_unit from core.exchange_rates
         where currency = ${currency} and day > ${day} order by day limit 1))`;

/** core.events with amount_rep: each purchase converted on its own, at its UTC day's rates. */
const EVENTS = `(
    select e.*,
        e.total_amount * ${rateSql("e.currency", "(e.event_time at time zone 'UTC')::date")}
            / ${rateSql("s.reporting_currency", "(e.event_time at time zone 'UTC')::date")}
            as amount_rep,
        s.reporting_currency
    from core.events as e cross join core.settings as s
) as ev`;

async function expectedDailySales(sql: Sql) {
  return await sql.unsafe(`
    with d as (
        select
            (event_time at time zone 'UTC')::date as day,
            count(*) filter (where event_type = 'purchase') as orders,
            coalesce(sum(quantity) filter (where event_type = 'purchase'), 0) as units,
            coalesce(sum(amount_rep) filter (where event_type = 'purchase'), 0)::numeric(24, 2)
                as revenue,
            count(distinct user_id) filter (where event_type = 'purchase') as buyers,
            count(distinct ${visitorSql}) as visitors,
            count(*) as events,
            min(reporting_currency) as reporting_currency
        from ${EVENTS}
        group by 1
    )
    , days as (
        select g::date as day
        from generate_series((select min(day) from d), (select max(day) from d), interval '1 day')
            as g
    )
    -- every day between the first and the last with events: zero-filled
    select c.day, coalesce(d.orders, 0) as orders, coalesce(d.units, 0) as units,
        coalesce(d.revenue, 0.00) as revenue,
        case when d.orders > 0 then round(d.revenue / d.orders, 2) end as aov,
        coalesce(d.buyers, 0) as buyers, coalesce(d.visitors, 0) as visitors,
        case when d.visitors > 0 then round(d.buyers::numeric / d.visitors, 6) end as buyer_rate,
        case when d.visitors > 0 then round(d.revenue / d.visitors, 2) end as revenue_per_visitor,
        coalesce(d.events, 0) as events, core.reporting_currency() as reporting_currency
    from days as c left join d on d.day = c.day order by c.day`);
}

/** The contract's event types (docs/contract.md section 1), written here independently. */
const EVENT_TYPES = ["view", "search", "add_to_cart", "remove_from_cart", "wishlist", "purchase"];

async function expectedHourly(sql: Sql) {
  const rows = await sql.unsafe(`
    select
        date_trunc('hour', event_time at time zone 'UTC') at time zone 'UTC' as hour,
        event_type,
        count(*) as events,
        count(distinct ${visitorSql}) as visitors,
        coalesce(sum(amount_rep) filter (where event_type = 'purchase'), 0)::numeric(24, 2)
            as revenue
    from ${EVENTS}
    group by 1, 2
    order by 1, 2`);
  const [{ reporting_currency }] = await sql`select core.reporting_currency()`;
  // every event type in every hour from the first to the last hour with events: zero-filled
  const key = (t: number, type: string) => `${t} ${type}`;
  const byKey = new Map(rows.map((r) => [key(r.hour.getTime(), r.event_type), r]));
  const filled = [];
  for (
    let t = rows[0]?.hour.getTime();
    rows.length && t <= rows[rows.length - 1].hour.getTime();
    t += 3_600_000
  ) {
    for (const type of [...EVENT_TYPES].sort()) {
      const r = byKey.get(key(t, type));
      filled.push({
        hour: new Date(t),
        event_type: type,
        events: r?.events ?? 0,
        visitors: r?.visitors ?? 0,
        revenue: r?.revenue ?? "0.00",
        reporting_currency,
      });
    }
  }
  return filled;
}

async function expectedCategories(sql: Sql) {
  return await sql.unsafe(`
    with c as (
        select category,
            count(*) filter (where event_type = 'view') as views,
            count(*) filter (where event_type = 'add_to_cart') as add_to_carts,
            count(*) filter (where event_type = 'purchase') as orders,
            coalesce(sum(quantity) filter (where event_type = 'purchase'), 0) as units,
            coalesce(sum(amount_rep) filter (where event_type = 'purchase'), 0)::numeric(24, 2)
                as revenue,
            count(*) as events,
            min(reporting_currency) as reporting_currency
        from ${EVENTS} where category is not null group by category
    )
    select category, views, add_to_carts, orders, units, revenue,
        case when units > 0 then round(revenue / units, 2) end as avg_selling_price,
        case when views > 0 then round(orders::numeric / views, 6) end as orders_per_view,
        events, reporting_currency
    from c order by category`);
}

async function expectedProducts(sql: Sql) {
  const rows = await sql.unsafe(`
    select product_id,
        count(*) filter (where event_type = 'view') as views,
        count(*) filter (where event_type = 'purchase') as orders,
        coalesce(sum(quantity) filter (where event_type = 'purchase'), 0) as units,
        coalesce(sum(amount_rep) filter (where event_type = 'purchase'), 0)::numeric(24, 2)
            as revenue,
        count(*) as events,
        min(reporting_currency) as reporting_currency
    from ${EVENTS} where product_id is not null group by product_id order by product_id`);
  // rank in TypeScript: 1 + the number of products with strictly more revenue
  const cents = (r: Record<string, unknown>) => Math.round(Number(r.revenue) * 100);
  return rows.map((r) => ({
    product_id: r.product_id,
    views: r.views,
    orders: r.orders,
    units: r.units,
    revenue: r.revenue,
    orders_per_view: r.views > 0 ? (r.orders / r.views).toFixed(6) : null,
    revenue_rank: 1 + rows.filter((o) => cents(o) > cents(r)).length,
    events: r.events,
    reporting_currency: r.reporting_currency,
  }));
}

async function expectedFunnel(sql: Sql) {
  const rows = await sql.unsafe(`
    select (event_time at time zone 'UTC')::date as day,
        count(distinct session_id) filter (where event_type = 'view') as view_sessions,
        count(distinct session_id) filter (where event_type = 'add_to_cart')
            as add_to_cart_sessions,
        count(distinct session_id) filter (where event_type = 'purchase') as purchase_sessions
    from core.events group by 1 order by 1`);
  // every day between the first and the last: zero-filled
  const byDay = new Map(rows.map((r) => [r.day.getTime(), r]));
  const filled = [];
  for (
    let t = rows[0]?.day.getTime();
    rows.length && t <= rows[rows.length - 1].day.getTime();
    t += 86_400_000
  ) {
    filled.push(
      byDay.get(t) ??
        { day: new Date(t), view_sessions: 0, add_to_cart_sessions: 0, purchase_sessions: 0 },
    );
  }
  const rate = (a: number, b: number) => b > 0 ? (a / b).toFixed(6) : null;
  return filled.map((r) => ({
    ...r,
    view_to_cart_rate: rate(r.add_to_cart_sessions, r.view_sessions),
    cart_to_purchase_rate: rate(r.purchase_sessions, r.add_to_cart_sessions),
    view_to_purchase_rate: rate(r.purchase_sessions, r.view_sessions),
  }));
}

/** PostgreSQL's NTILE: the first (n % k) buckets hold one row more. */
function ntile(n: number, k: number): number[] {
  const out: number[] = [];
  const small = Math.floor(n / k);
  const big = n % k;
  for (let b = 1; b <= k; b++) {
    for (let i = 0; i < small + (b <= big ? 1 : 0); i++) out.push(b);
  }
  return out;
}

async function expectedRfm(sql: Sql) {
  const rows = await sql.unsafe(`
    with latest as materialized (
        select max((event_time at time zone 'UTC')::date) as as_of_day from core.events
    )
    select p.*, l.as_of_day, l.as_of_day - p.last_purchase_day as recency_days,
        l.as_of_day - p.first_purchase_day as tenure_days
    from (
        select user_id,
            count(*) as frequency,
            sum(amount_rep)::numeric(24, 2) as historical_ltv,
            min(reporting_currency) as reporting_currency,
            min((event_time at time zone 'UTC')::date) as first_purchase_day,
            max((event_time at time zone 'UTC')::date) as last_purchase_day
        from ${EVENTS} where event_type = 'purchase' group by user_id
    ) as p
    cross join latest as l
    order by p.user_id`);
  // deno-lint-ignore no-explicit-any
  type R = Record<string, any>;
  const users: R[] = [...rows];
  const score = (sorted: R[]) => {
    const tiles = ntile(sorted.length, 5);
    return new Map(sorted.map((r, i) => [r.user_id as number, tiles[i]]));
  };
  const byId = (a: R, b: R) => a.user_id - b.user_id;
  const r = score(
    [...users].sort((a, b) => a.last_purchase_day - b.last_purchase_day || byId(a, b)),
  );
  const f = score([...users].sort((a, b) => a.frequency - b.frequency || byId(a, b)));
  const m = score(
    [...users].sort((a, b) => Number(a.historical_ltv) - Number(b.historical_ltv) || byId(a, b)),
  );
  return users.map((u) => {
    const ltv = Number(u.historical_ltv);
    return {
      user_id: u.user_id,
      recency_days: u.recency_days,
      frequency: u.frequency,
      historical_ltv: u.historical_ltv,
      r_score: r.get(u.user_id),
      f_score: f.get(u.user_id),
      m_score: m.get(u.user_id),
      segment: u.recency_days > 90
        ? "Churned"
        : u.recency_days > 30
        ? "At risk"
        : Number(u.frequency) >= 5 || ltv >= 1000
        ? "High value"
        : u.tenure_days < 7
        ? "New"
        : "Regular",
      annual_revenue_run_rate: Number(u.frequency) >= 2 && u.tenure_days >= 30
        ? (ltv / u.tenure_days * 365).toFixed(2)
        : null,
      tenure_days: u.tenure_days,
      first_purchase_day: u.first_purchase_day,
      last_purchase_day: u.last_purchase_day,
      as_of_day: u.as_of_day,
      reporting_currency: u.reporting_currency,
    };
  });
}

async function expectedQuality(sql: Sql) {
  const batches = await sql.unsafe(`
    select date_trunc('hour', finished_at at time zone 'UTC') at time zone 'UTC' as hour,
        count(*) filter (where source_kind = 'file') as files,
        count(*) as batches,
        sum(rows)::bigint as rows,
        sum(valid)::bigint as valid,
        sum(invalid)::bigint as invalid,
        sum(duplicates)::bigint as duplicates,
        sum(late)::bigint as late,
        case when sum(valid + invalid) > 0
            then round(sum(valid) / sum(valid + invalid), 6) end as validity_rate
    from quality.batch_metrics group by 1`);
  const rejected = await sql.unsafe(`
    select date_trunc('hour', finished_at at time zone 'UTC') at time zone 'UTC' as hour,
        count(*) as n
    from ingest.files where status = 'rejected' group by 1`);
  const reasons = await sql.unsafe(`
    select date_trunc('hour', m.finished_at at time zone 'UTC') at time zone 'UTC' as hour,
        r.reason, count(*)::int as n
    from quality.dead_letter as d
    join quality.batch_metrics as m using (batch_id), unnest(d.reasons) as r (reason)
    group by 1, 2`);
  const active = [...batches, ...rejected].map((r) => r.hour.getTime());
  // every hour from the first to the last hour with batches or rejected files: zero-filled
  const hours: number[] = [];
  for (let t = Math.min(...active); active.length && t <= Math.max(...active); t += 3_600_000) {
    hours.push(t);
  }
  return hours.map((t) => {
    const b = batches.find((r) => r.hour.getTime() === t);
    const mine = reasons.filter((r) => r.hour.getTime() === t)
      .sort((a, b) => b.n - a.n || (a.reason < b.reason ? -1 : 1));
    return {
      hour: new Date(t),
      files: b?.files ?? 0,
      rejected_files: rejected.find((r) => r.hour.getTime() === t)?.n ?? 0,
      batches: b?.batches ?? 0,
      rows: b?.rows ?? 0,
      valid: b?.valid ?? 0,
      invalid: b?.invalid ?? 0,
      duplicates: b?.duplicates ?? 0,
      late: b?.late ?? 0,
      validity_rate: b?.validity_rate ?? null,
      top_reasons: mine.slice(0, 3).map((r) => r.reason),
      reason_counts: Object.fromEntries(mine.map((r) => [r.reason, r.n])),
    };
  });
}

const ORDER: Record<string, string> = {
  daily_sales: "day",
  hourly_events: "hour, event_type",
  category_performance: "category",
  product_performance: "product_id",
  funnel: "day",
  customer_rfm: "user_id",
  data_quality: "hour",
};

async function view(sql: Sql, name: string) {
  return [...await sql.unsafe(`select * from analytics.${name} order by ${ORDER[name]}`)];
}

/** Every view except pipeline_health (which depends on the clock), as plain rows. */
async function snapshot(sql: Sql) {
  const out: Record<string, unknown[]> = {};
  for (const name of Object.keys(ORDER)) out[name] = await view(sql, name);
  return out;
}

/** Every column of every view equals its independent computation. */
async function checkAll(sql: Sql, label: string) {
  const same = async (name: string, expected: unknown[]) =>
    assertEquals(await view(sql, name), [...expected], `${label}: ${name}`);
  await same("daily_sales", await expectedDailySales(sql));
  await same("hourly_events", await expectedHourly(sql));
  await same("category_performance", await expectedCategories(sql));
  await same("product_performance", await expectedProducts(sql));
  await same("funnel", await expectedFunnel(sql));
  await same("data_quality", await expectedQuality(sql));
  await same("customer_rfm", await expectedRfm(sql));
}

async function daily(sql: Sql, offset: number) {
  const [row] = await sql`
    select orders, units, revenue, aov, buyers, visitors, buyer_rate, revenue_per_visitor
    from analytics.daily_sales where day = ${
    new Date(D + offset * DAY).toISOString().slice(0, 10)
  }`;
  return row ? { ...row } : undefined;
}

async function funnelOf(sql: Sql, offset: number) {
  const [row] = await sql`
    select view_sessions, add_to_cart_sessions, purchase_sessions, view_to_cart_rate,
        cart_to_purchase_rate, view_to_purchase_rate
    from analytics.funnel where day = ${new Date(D + offset * DAY).toISOString().slice(0, 10)}`;
  return row ? { ...row } : undefined;
}

// ---------------------------------------------------------------- the seeded data set

const FILE_A: Ev[] = [
  {
    n: 1,
    time: at(0, "10:05"),
    type: "view",
    user: 1,
    session: "s1",
    product: 1,
    category: "electronics",
  },
  {
    n: 2,
    time: at(0, "10:06"),
    type: "add_to_cart",
    user: 1,
    session: "s1",
    product: 1,
    category: "electronics",
    price: "100.00",
    qty: 1,
  },
  {
    n: 3,
    time: at(0, "10:07"),
    type: "purchase",
    user: 1,
    session: "s1",
    product: 1,
    category: "electronics",
    price: "100.00",
    qty: 1,
  },
  {
    n: 4,
    time: at(0, "10:20"),
    type: "view",
    user: 2,
    session: "s2",
    product: 2,
    category: "books",
  },
  {
    n: 5,
    time: at(0, "10:21"),
    type: "purchase",
    user: 2,
    session: "s2",
    product: 2,
    category: "books",
    price: "15.50",
    qty: 2,
  },
  { n: 6, time: at(0, "11:00"), type: "view", session: "g1", product: 1, category: "electronics" },
  { n: 7, time: at(0, "11:01"), type: "view", session: "g1", product: 3, category: "clothing" },
  { n: 8, time: at(0, "11:02"), type: "search", session: "g1" },
  {
    n: 9,
    time: at(0, "23:59:59.999"),
    type: "view",
    user: 3,
    session: "s3",
    product: 3,
    category: "clothing",
  },
  {
    n: 10,
    time: at(1, "00:00"),
    type: "add_to_cart",
    user: 3,
    session: "s3",
    product: 3,
    category: "clothing",
    price: "40.00",
    qty: 3,
  },
  {
    n: 11,
    time: at(1, "00:00:01"),
    type: "purchase",
    user: 3,
    session: "s3",
    product: 3,
    category: "clothing",
    price: "40.00",
    qty: 3,
  },
  {
    n: 12,
    time: at(1, "09:00"),
    type: "purchase",
    user: 1,
    session: "s4",
    product: 2,
    category: "books",
    price: "15.50",
    qty: 1,
  },
  {
    n: 13,
    time: at(1, "09:01"),
    type: "wishlist",
    user: 1,
    session: "s4",
    product: 4,
    category: "home_garden",
  },
  // the same row again: a duplicate
  {
    n: 4,
    time: at(0, "10:20"),
    type: "view",
    user: 2,
    session: "s2",
    product: 2,
    category: "books",
  },
  // invalid: negative price; conflicting duplicate of n 1; guest purchase
  {
    n: 14,
    time: at(0, "12:00"),
    type: "purchase",
    user: 4,
    session: "s7",
    product: 2,
    category: "books",
    price: "-5.00",
    qty: 1,
  },
  {
    n: 1,
    time: at(0, "10:05"),
    type: "view",
    user: 1,
    session: "s1",
    product: 9,
    category: "electronics",
  },
  {
    n: 15,
    time: at(0, "12:30"),
    type: "purchase",
    session: "g1",
    product: 1,
    category: "electronics",
    price: "100.00",
    qty: 1,
  },
];

// late events for day D (already summed up), a new day, a duplicate of file A, an extreme price
const FILE_B: Ev[] = [
  {
    n: 20,
    time: at(0, "10:30"),
    type: "add_to_cart",
    user: 1,
    session: "s1",
    product: 2,
    category: "books",
    price: "15.50",
    qty: 1,
  },
  {
    n: 21,
    time: at(0, "10:40"),
    type: "add_to_cart",
    user: 2,
    session: "s2",
    product: 2,
    category: "books",
    price: "15.50",
    qty: 1,
  },
  { n: 22, time: at(0, "11:30"), type: "view", session: "g1", product: 1, category: "electronics" },
  {
    n: 23,
    time: at(0, "12:00"),
    type: "purchase",
    user: 5,
    session: "s5",
    product: 4,
    category: "home_garden",
    price: "200.00",
    qty: 1,
  },
  {
    n: 24,
    time: at(2, "08:00"),
    type: "view",
    user: 2,
    session: "s6",
    product: 1,
    category: "electronics",
  },
  {
    n: 25,
    time: at(2, "08:01"),
    type: "purchase",
    user: 2,
    session: "s6",
    product: 1,
    category: "electronics",
    price: "100.00",
    qty: 2,
  },
  FILE_A[2],
  {
    n: 26,
    time: at(2, "09:00"),
    type: "purchase",
    user: 6,
    session: "s8",
    product: 5,
    category: "sports",
    price: "20000.00",
    qty: 1,
  },
];

const BATCH_C: Ev[] = [
  { n: 30, time: at(2, "10:00"), type: "view", session: "g2", product: 1, category: "electronics" },
  {
    n: 31,
    time: at(2, "10:05"),
    type: "view",
    user: 7,
    session: "s9",
    product: 5,
    category: "sports",
  },
];

Deno.test("analytics views follow each batch, late events and replays exactly", async () => {
  const db = await testDb("analytics_seeded");
  const sql = db.sql;
  try {
    const a = await load(sql, "a.csv", FILE_A);
    assertEquals(
      [a.result!.rows, a.result!.valid, a.result!.duplicates, a.result!.invalid],
      [17, 13, 1, 3],
    );
    await checkAll(sql, "after a.csv");
    assertEquals(await daily(sql, 0), {
      orders: 2,
      units: 3,
      revenue: "131.00",
      aov: "65.50",
      buyers: 2,
      visitors: 4,
      buyer_rate: "0.500000",
      revenue_per_visitor: "32.75",
    });
    assertEquals(await daily(sql, 1), {
      orders: 2,
      units: 4,
      revenue: "135.50",
      aov: "67.75",
      buyers: 2,
      visitors: 2,
      buyer_rate: "1.000000",
      revenue_per_visitor: "67.75",
    });
    assertEquals(await funnelOf(sql, 0), {
      view_sessions: 4,
      add_to_cart_sessions: 1,
      purchase_sessions: 2,
      view_to_cart_rate: "0.250000",
      cart_to_purchase_rate: "2.000000",
      view_to_purchase_rate: "0.500000",
    });
    // a session that crosses midnight counts on both days; no view on D+1: rates NULL
    assertEquals(await funnelOf(sql, 1), {
      view_sessions: 0,
      add_to_cart_sessions: 1,
      purchase_sessions: 2,
      view_to_cart_rate: null,
      cart_to_purchase_rate: "2.000000",
      view_to_purchase_rate: null,
    });

    const b = await load(sql, "b.csv", FILE_B);
    assertEquals([b.result!.valid, b.result!.duplicates, b.result!.invalid], [6, 1, 1]);
    await checkAll(sql, "after b.csv");
    // late events went to day D: one more order, buyer and visitor, s2 reached the cart step
    assertEquals(await daily(sql, 0), {
      orders: 3,
      units: 4,
      revenue: "331.00",
      aov: "110.33",
      buyers: 3,
      visitors: 5,
      buyer_rate: "0.600000",
      revenue_per_visitor: "66.20",
    });
    assertEquals(await funnelOf(sql, 0), {
      view_sessions: 4,
      add_to_cart_sessions: 2,
      purchase_sessions: 3,
      view_to_cart_rate: "0.500000",
      cart_to_purchase_rate: "1.500000",
      view_to_purchase_rate: "0.750000",
    });
    const [cartHour] = await sql`
      select events, visitors, revenue from analytics.hourly_events
      where hour = ${at(0, "10:00")} and event_type = 'add_to_cart'`;
    assertEquals({ ...cartHour }, { events: 3, visitors: 2, revenue: "0.00" });

    // a file refused whole for its header: counted in data_quality.rejected_files only
    const bad = await loadSource(
      sql,
      bytesSource(new TextEncoder().encode("event_id,colour\n1,red\n")),
      "bad.csv",
      cfg,
    );
    assertEquals(bad.outcome, "rejected");
    const c = await load(sql, "c-batch", BATCH_C, "http");
    assertEquals(c.result!.valid, 2);
    await checkAll(sql, "after the http batch");

    // the extreme price row moves to events with a higher MAX_PRICE: counted once
    const [{ replay }] = await sql`
      select quality.replay(null, null, '{"max_price": 1000000}'::jsonb) as replay`;
    assertEquals([replay.rows, replay.moved, replay.still_invalid], [4, 1, 3]);
    await checkAll(sql, "after the replay");
    assertEquals((await daily(sql, 2))?.revenue, "20200.00");
    const [again] = await sql`
      select quality.replay(null, null, '{"max_price": 1000000}'::jsonb) as replay`;
    assertEquals(again.replay.moved, 0);
    await checkAll(sql, "after a replay that moves nothing");
    const [sports] = await sql`
      select views, orders, units, revenue, avg_selling_price, orders_per_view
      from analytics.category_performance where category = 'sports'`;
    assertEquals({ ...sports }, {
      views: 1,
      orders: 1,
      units: 1,
      revenue: "20000.00",
      avg_selling_price: "20000.00",
      orders_per_view: "1.000000",
    });
    const products = await sql`
      select product_id, revenue, revenue_rank from analytics.product_performance
      order by revenue_rank, product_id`;
    assertEquals(products.map((p) => [p.product_id, p.revenue, p.revenue_rank]), [
      [5, "20000.00", 1],
      [1, "300.00", 2],
      [4, "200.00", 3],
      [3, "120.00", 4],
      [2, "46.50", 5],
    ]);
    const rfm = await sql`
      select user_id, recency_days, frequency, historical_ltv, segment, annual_revenue_run_rate
      from analytics.customer_rfm order by user_id`;
    assertEquals(
      rfm.map((r) => [r.user_id, r.recency_days, r.frequency, r.historical_ltv, r.segment]),
      [
        [1, 1, 2, "115.50", "New"],
        [2, 0, 2, "231.00", "New"],
        [3, 1, 1, "120.00", "New"],
        [5, 2, 1, "200.00", "New"],
        [6, 0, 1, "20000.00", "High value"],
      ],
    );
    // the LTV is the revenue to date: no customer here has the 30 days a run rate needs
    assertEquals(rfm.map((r) => r.annual_revenue_run_rate), [null, null, null, null, null]);
    const [dq] = await sql`
      select sum(files)::int as files, sum(rejected_files)::int as rejected_files,
          sum(batches)::int as batches, sum(rows)::int as rows,
          sum(valid)::int as valid, sum(invalid)::int as invalid,
          sum(duplicates)::int as duplicates
      from analytics.data_quality`;
    assertEquals({ ...dq }, {
      files: 2,
      rejected_files: 1,
      batches: 3,
      rows: 27,
      valid: 22,
      invalid: 3,
      duplicates: 2,
    });

    // incremental = full rebuild, whatever the session's time zone
    const before = await snapshot(sql);
    await sql.begin(async (tx) => {
      await tx`set local timezone = 'Asia/Kolkata'`;
      await tx`select analytics.rebuild_rollups()`;
    });
    assertEquals(await snapshot(sql), before);
    const r = await rebuildRollups(sql);
    assertEquals(r.events, 22);
    assertEquals(await snapshot(sql), before);

    // pipeline health
    const [h] = await sql`select * from analytics.pipeline_health`;
    assertEquals(
      [h.last_file, h.last_batch_id, h.last_batch_kind, h.open_alerts, h.files_waiting],
      ["b.csv", c.result!.batch_id, "http", 2, null],
    );
    assertEquals(h.validity_rate_1h, (22 / 25).toFixed(6));
    assertEquals(h.rows_per_second_1h, (27 / 3600).toFixed(1));
    assert(Number(h.last_file_age_seconds) >= 0 && Number(h.last_file_age_seconds) < 600);
    await reportInbox(sql, 3);
    const [h2] = await sql`select files_waiting from analytics.pipeline_health`;
    assertEquals(h2.files_waiting, 3);
  } finally {
    await db.drop();
  }
});

/** A small deterministic PRNG (mulberry32). */
function prng(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CATEGORIES = ["electronics", "clothing", "home_garden", "sports", "books", "beauty", "toys"];

function randomFiles(seed: number, files: number, perFile: number): Ev[][] {
  const rnd = prng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  const out: Ev[][] = [];
  const all: Ev[] = [];
  let n = 1000;
  for (let f = 0; f < files; f++) {
    const rows: Ev[] = [];
    for (let i = 0; i < perFile; i++) {
      // a duplicate: of a row of this file, or in the last file of any earlier row (concurrent
      // batches sharing event ids can deadlock in ingest.accept_checked, see the report)
      const earlier = f === files - 1 ? all : rows;
      if (earlier.length > 0 && rnd() < 0.03) {
        rows.push(pick(earlier));
        continue;
      }
      const guest = rnd() < 0.2;
      const type = guest ? pick(["view", "view", "search"]) : pick([
        "view",
        "view",
        "view",
        "search",
        "add_to_cart",
        "remove_from_cart",
        "wishlist",
        "purchase",
        "purchase",
      ]);
      const user = guest ? undefined : 1 + Math.floor(rnd() * 25);
      const product = type === "search" && rnd() < 0.7 ? undefined : 1 + Math.floor(rnd() * 30);
      const cart = ["add_to_cart", "remove_from_cart", "purchase"].includes(type);
      const e: Ev = {
        n: n++,
        // anywhere in the last ~3 days: hours and days interleave across files
        time: new Date(D + Math.floor(rnd() * 3 * DAY)).toISOString(),
        type,
        user,
        session: guest ? `g${Math.floor(rnd() * 15)}` : `s${user}-${Math.floor(rnd() * 3)}`,
        product,
        category: product === undefined ? undefined : CATEGORIES[product % CATEGORIES.length],
        price: cart ? (1 + Math.floor(rnd() * 50000) / 100).toFixed(2) : undefined,
        qty: cart ? 1 + Math.floor(rnd() * 4) : undefined,
      };
      if (rnd() < 0.03) e.price = "-1.00"; // dead-lettered
      rows.push(e);
      all.push(e);
    }
    out.push(rows);
  }
  return out;
}

Deno.test("concurrent batches with overlapping days and visitors add up exactly", async () => {
  const db = await testDb("analytics_concurrent");
  const sql = db.sql;
  try {
    const files = randomFiles(7, 10, 250);
    const name = (i: number) => i % 2 ? `r${i}.csv` : `r${i}`;
    const kind = (i: number) => i % 2 ? "file" : "http";
    // the first batch alone: it creates the month's partition (concurrent first batches of a
    // month race in core.ensure_partitions, see the report)
    assertEquals((await load(sql, name(0), files[0], kind(0))).outcome, "loaded");
    // then four at a time, so batches really overlap on the same rollup rows
    for (const wave of [[1, 2, 3, 4], [5, 6, 7, 8]]) {
      const results = await Promise.all(wave.map((i) => load(sql, name(i), files[i], kind(i))));
      for (const r of results) assertEquals(r.outcome, "loaded");
    }
    assertEquals((await load(sql, name(9), files[9], kind(9))).outcome, "loaded");
    const [{ n }] = await sql`select count(*)::int as n from core.events`;
    assert(n > 1500, `only ${n} events`);
    await checkAll(sql, "after concurrent loads");
    const before = await snapshot(sql);
    await rebuildRollups(sql);
    assertEquals(await snapshot(sql), before);
  } finally {
    await db.drop();
  }
});

Deno.test("deferred analytics: each queued batch is counted once, by a round or by a rebuild", async () => {
  const db = await testDb("analytics_deferred");
  const sql = db.sql;
  const files = randomFiles(11, 8, 200);
  const deferred = (i: number) =>
    loadSource(sql, bytesSource(csv(files[i])), `d${i}`, cfg, {
      kind: "http",
      role: "pipeline_ingest",
      analytics: "deferred",
    });
  const rolledUp = async () =>
    Number((await sql`select coalesce(sum(events), 0) as n from analytics.rollup_daily`)[0].n);
  const queued = async () => ({
    ...(await sql`
      select (select count(*)::int from ingest.deferred_batches) as batches,
          (select count(*)::int from ingest.deferred_events) as events`)[0],
  });
  try {
    assertEquals((await load(sql, "f0", files[0])).outcome, "loaded");
    // deferred and inline batches at the same time: the inline ones count at once, the
    // deferred ones wait in the queue
    const wave = await Promise.all([
      deferred(1),
      load(sql, "f2", files[2]),
      deferred(3),
      load(sql, "f4", files[4]),
    ]);
    for (const r of wave) assertEquals(r.outcome, "loaded");
    const valid = (i: number) => wave[i - 1].result!.valid;
    const [{ inline }] = await sql`select count(*)::int as inline from core.events
      where batch_id <> all (${[wave[0].result!.batch_id, wave[2].result!.batch_id]})`;
    assertEquals(await rolledUp(), inline);
    assertEquals(await queued(), { batches: 2, events: valid(1) + valid(3) });
    const [health] = await sql`select * from analytics.pipeline_health`;
    assertEquals(health.analytics_queued_batches, 2);
    assert(Number(health.analytics_queue_age_seconds) >= 0);

    const round = await applyDeferred(sql);
    assertEquals([round.batches, round.events], [2, valid(1) + valid(3)]);
    assert(round.oldestQueuedAt !== null);
    await checkAll(sql, "after a round");
    const settled = await snapshot(sql);
    const again = await applyDeferred(sql);
    assertEquals([again.batches, again.events, again.oldestQueuedAt], [0, 0, null]);
    assertEquals(await snapshot(sql), settled);

    // a rebuild counts what is queued and empties the queue: a later round adds nothing
    for (const i of [5, 6]) assertEquals((await deferred(i)).outcome, "loaded");
    await rebuildRollups(sql);
    assertEquals(await queued(), { batches: 0, events: 0 });
    await checkAll(sql, "after a rebuild with a queue");
    const rebuilt = await snapshot(sql);
    assertEquals((await applyDeferred(sql)).events, 0);
    assertEquals(await snapshot(sql), rebuilt);

    // rounds running while batches queue: still every event once
    const last = await Promise.all([deferred(7), applyDeferred(sql), applyDeferred(sql)]);
    assertEquals(last[0].outcome, "loaded");
    await applyDeferred(sql);
    await checkAll(sql, "after concurrent rounds");
  } finally {
    await db.drop();
  }
});

Deno.test("hourly_events and data_quality have no gap: every hour (and event type) from first to last", async () => {
  const db = await testDb("analytics_zero_fill");
  const sql = db.sql;
  try {
    // events at D 10:05 and D 13:30 (hours 11 and 12 empty); a first batch with an invalid row
    await load(sql, "early.csv", [
      { n: 1, time: at(0, "10:05"), type: "view", session: "g1", product: 1, category: "books" },
      {
        n: 2,
        time: at(0, "10:06"),
        type: "purchase",
        user: 1,
        session: "s1",
        product: 1,
        category: "books",
        price: "-1.00",
        qty: 1,
      },
    ]);
    await load(sql, "late.csv", [{
      n: 3,
      time: at(0, "13:30"),
      type: "purchase",
      user: 1,
      session: "s1",
      product: 1,
      category: "books",
      price: "10.00",
      qty: 1,
    }]);
    // the first batch was ingested 3 hours before the second: 2 hours without batches between
    await sql`
      update quality.batch_metrics set finished_at = finished_at - interval '3 hours'
      where batch_id = (select min(batch_id) from quality.batch_metrics)`;
    await rebuildRollups(sql);
    await checkAll(sql, "with gaps");

    /** The steps between consecutive distinct hours of a view: all 1 hour when there is no gap. */
    const steps = async (view: string) =>
      (await sql.unsafe(`
        select distinct extract(epoch from lead(hour) over (order by hour) - hour)::int as s
        from (select distinct hour from analytics.${view}) as h`))
        .map((r) => r.s).filter((x) => x !== null);

    const events = await sql`
      select hour, count(*)::int as types, sum(events)::int as events
      from analytics.hourly_events group by hour order by hour`;
    assertEquals(events.map((r) => [r.hour.toISOString(), r.types, r.events]), [
      [at(0, "10:00"), 6, 1],
      [at(0, "11:00"), 6, 0],
      [at(0, "12:00"), 6, 0],
      [at(0, "13:00"), 6, 1],
    ]);
    assertEquals(await steps("hourly_events"), [3600]);
    const quiet = await sql`
      select event_type, events, visitors, revenue from analytics.hourly_events
      where hour = ${at(0, "11:00")} order by event_type`;
    assertEquals(
      quiet.map((r) => ({ ...r })),
      [
        "add_to_cart",
        "purchase",
        "remove_from_cart",
        "search",
        "view",
        "wishlist",
      ].map((t) => ({ event_type: t, events: 0, visitors: 0, revenue: "0.00" })),
    );

    const dq = await sql`
      select files, rejected_files, batches, rows, valid, invalid, duplicates, late,
          validity_rate, top_reasons, reason_counts
      from analytics.data_quality order by hour`;
    assertEquals(await steps("data_quality"), [3600]);
    const empty = {
      files: 0,
      rejected_files: 0,
      batches: 0,
      rows: 0,
      valid: 0,
      invalid: 0,
      duplicates: 0,
      late: 0,
      validity_rate: null,
      top_reasons: [],
      reason_counts: {},
    };
    assertEquals(dq.map((r) => ({ ...r })), [
      {
        ...empty,
        files: 1,
        batches: 1,
        rows: 2,
        valid: 1,
        invalid: 1,
        late: 1, // D is three days ago: the valid row is late
        validity_rate: "0.500000",
        top_reasons: ["negative_price"],
        reason_counts: { negative_price: 1 },
      },
      empty,
      empty,
      { ...empty, files: 1, batches: 1, rows: 1, valid: 1, late: 1, validity_rate: "1.000000" },
    ]);
  } finally {
    await db.drop();
  }
});

Deno.test("analytics views on an empty database: no rows, zero counts, NULL rates", async () => {
  const db = await testDb("analytics_empty");
  try {
    for (const name of ANALYTICS_VIEWS) {
      const rows = await db.sql.unsafe(`select * from analytics.${name}`);
      // pipeline_health is always one row, the catalogue lists the metrics
      if (name === "metrics") assert(rows.length > 0, name);
      else if (name !== "pipeline_health") assertEquals(rows.length, 0, name);
    }
    const [h] = await db.sql`select * from analytics.pipeline_health`;
    assertEquals({ ...h, checked_at: null }, {
      checked_at: null,
      last_file: null,
      last_file_at: null,
      last_file_age_seconds: null,
      files_waiting: null,
      files_waiting_reported_at: null,
      last_batch_id: null,
      last_batch_kind: null,
      last_batch_seconds: null,
      rows_per_second_1m: "0.0",
      rows_per_second_1h: "0.0",
      validity_rate_1h: null,
      open_alerts: 0,
      last_alert_at: null,
      analytics_queued_batches: 0,
      analytics_queue_age_seconds: null,
      kafka_partitions: 0,
      kafka_lag: null,
      kafka_lag_updated_at: null,
    });
    assertEquals((await rebuildRollups(db.sql)).events, 0);
    // a header-only file: a batch with no events
    const r = await load(db.sql, "empty.csv", []);
    assertEquals(r.outcome, "empty");
    const dq = await db
      .sql`select rows, valid, validity_rate, top_reasons from analytics.data_quality`;
    assertEquals(dq.map((d) => ({ ...d })), [{
      rows: 0,
      valid: 0,
      validity_rate: null,
      top_reasons: [],
    }]);
    const [{ n }] = await db.sql`select count(*)::int as n from analytics.daily_sales`;
    assertEquals(n, 0);
  } finally {
    await db.drop();
  }
});

Deno.test("the analyst reads every analytics object and nothing of core, quality or ingest", async () => {
  const db = await testDb("analytics_grants");
  const analyst = connect({ url: db.url, role: "pipeline_analyst", max: 1 });
  try {
    await load(db.sql, "a.csv", FILE_A);
    const objects = await db.sql`
      select c.relname from pg_class as c
      join pg_namespace as n on n.oid = c.relnamespace
      where n.nspname = 'analytics' and c.relkind in ('r', 'v', 'm', 'p')
      order by 1`;
    for (const v of ANALYTICS_VIEWS) assert(objects.some((o) => o.relname === v), v);
    for (const { relname } of objects) {
      await analyst.unsafe(`select * from analytics.${relname} limit 1`);
    }
    const [{ n }] = await analyst`select count(*)::int as n from analytics.daily_sales`;
    assertEquals(n, 2);
    const forbidden = await db.sql`
      select n.nspname || '.' || c.relname as name from pg_class as c
      join pg_namespace as n on n.oid = c.relnamespace
      where n.nspname in ('core', 'quality', 'ingest') and c.relkind in ('r', 'p', 'v')
      order by 1`;
    assert(forbidden.length >= 8);
    for (const { name } of forbidden) {
      const err = await assertRejects(() => analyst.unsafe(`select 1 from ${name} limit 1`));
      assertEquals((err as Error & { code?: string }).code, "42501", name);
    }
    // the analyst cannot run the maintenance functions either
    for (
      const call of [
        "analytics.rebuild_rollups()",
        "analytics.apply_batch(1)",
        "analytics.apply_deferred()",
      ]
    ) {
      const err = await assertRejects(() => analyst.unsafe(`select ${call}`));
      assertEquals((err as Error & { code?: string }).code, "42501", call);
    }
    // no analytics column carries e-mail or raw dead-letter values
    const leaks = await db.sql`
      select table_name, column_name from information_schema.columns
      where table_schema = 'analytics'
          and (column_name like '%email%' or column_name like 'raw%')`;
    assertEquals(leaks.length, 0);
  } finally {
    await analyst.end({ timeout: 5 });
    await db.drop();
  }
});
