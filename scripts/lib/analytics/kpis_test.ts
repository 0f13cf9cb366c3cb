// The growth KPI views (db/views/090_… to 140_…) against a real database: a seeded multi-day
// run (anomalies, duplicates within and across files, late events, a week-earlier window, files
// loaded inline and HTTP batches deferred) and every view compared with an independent
// computation over core.events (SQL written separately from the rollups, or TypeScript), before
// and after a full rebuild. Money converts per currency and UTC day, as docs/analytics.md says.
import { join } from "node:path";
import { assert, assertEquals } from "../testing/assert.ts";
import { rebuildRollups } from "./analytics.ts";
import { applyDeferred } from "./deferred.ts";
import { loadConfig } from "../common/config.ts";
import type { Sql } from "../common/db.ts";
import { bytesSource, loadSource, settings } from "../ingest/loader.ts";
import { testDb } from "../testing/testdb.ts";
import { generate } from "../../generate.ts";

const cfg = settings(loadConfig({}));
const HOUR = 3_600_000, DAY = 24 * HOUR;

// ---------------------------------------------------------------- independent computations

/** core.events with its UTC day and hour, read straight from the table. */
const EV = `
  ev as (
    select *, (event_time at time zone 'UTC')::date as day,
        date_trunc('hour', event_time at time zone 'UTC') at time zone 'UTC' as hour
    from core.events
  )`;

async function expectedPerformance(sql: Sql, dim: "traffic_source" | "device") {
  return await sql.unsafe(`
    with ${EV},
    firsts as (
        select distinct on (day, session_id) day, session_id, ${dim} as value
        from ev
        order by day, session_id, event_time, coalesce(traffic_source, ''), coalesce(device, '')
    ),
    sessions as (
        select day, session_id, min(user_id) as user_id,
            count(*) filter (where event_type = 'purchase') as orders
        from ev group by day, session_id
    ),
    money as (
        select day, session_id, currency, sum(price * quantity) as amount
        from ev where event_type = 'purchase' group by day, session_id, currency
    ),
    revenue as (
        select day, session_id, sum(core.to_reporting(amount, currency, day)) as revenue
        from money group by day, session_id
    ),
    per_value as (
        select s.day, coalesce(f.value, 'unknown') as value,
            count(distinct coalesce(s.user_id::text, 'guest:' || s.session_id)) as visitors,
            count(*) as sessions, count(*) filter (where s.orders > 0) as converted,
            sum(s.orders) as orders, coalesce(sum(r.revenue), 0) as revenue
        from sessions as s
        join firsts as f using (day, session_id)
        left join revenue as r using (day, session_id)
        group by 1, 2
    )
    select day::text, value as ${dim}, visitors, sessions, orders, round(revenue, 2) as revenue,
        round(converted::numeric / sessions, 6) as conversion_rate,
        case when orders > 0 then round(revenue / orders, 2) end as aov
    from per_value order by 1, 2`);
}

async function expectedCarts(sql: Sql) {
  return await sql.unsafe(`
    with ${EV},
    carts as (
        select day, session_id, category,
            count(*) filter (where event_type = 'purchase') as purchases
        from ev where category is not null and event_type in ('add_to_cart', 'purchase')
        group by 1, 2, 3
        having count(*) filter (where event_type = 'add_to_cart') > 0
    ),
    value as (
        select day, session_id, category, sum(core.to_reporting(amount, currency, day)) as value
        from (
            select day, session_id, category, currency, sum(price * quantity) as amount
            from ev where event_type = 'add_to_cart' and category is not null group by 1, 2, 3, 4
        ) as m
        group by 1, 2, 3
    )
    select c.day::text, c.category, count(*) as carts,
        count(*) filter (where c.purchases = 0) as abandoned_carts,
        round((count(*) filter (where c.purchases = 0))::numeric / count(*), 6)
            as abandonment_rate,
        round(coalesce(sum(v.value) filter (where c.purchases = 0), 0), 2) as abandoned_value
    from carts as c join value as v using (day, session_id, category)
    group by 1, 2 order by 1, 2`);
}

async function expectedHourly(sql: Sql) {
  return await sql.unsafe(`
    with ${EV},
    per_currency as (
        select hour, currency, count(*) as events,
            count(*) filter (where event_type = 'purchase') as orders,
            coalesce(sum(price * quantity) filter (where event_type = 'purchase'), 0) as amount
        from ev group by 1, 2
    ),
    h as (
        select hour, sum(events) as events, sum(orders) as orders,
            sum(core.to_reporting(amount, currency, (hour at time zone 'UTC')::date)) as revenue
        from per_currency group by hour
    )
    select h.hour, h.events, h.orders, round(h.revenue, 2) as revenue,
        coalesce(w.events, 0) as last_week_events, coalesce(w.orders, 0) as last_week_orders,
        round(coalesce(w.revenue, 0), 2) as last_week_revenue,
        round((h.events - w.events)::numeric / nullif(w.events, 0), 6) as events_change,
        round((h.orders - w.orders)::numeric / nullif(w.orders, 0), 6) as orders_change,
        round((h.revenue - w.revenue) / nullif(w.revenue, 0), 6) as revenue_change,
        h.hour + interval '1 hour' > now() as is_partial
    from h left join h as w on w.hour = h.hour - interval '7 days'
    order by 1`);
}

/** percentile_cont in TypeScript: linear interpolation between the closest ranks. */
function percentile(sorted: number[], p: number): number {
  const pos = p * (sorted.length - 1), lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

async function checkEngagement(sql: Sql) {
  const sessions = await sql.unsafe(`
    with ${EV}
    select day::text, count(*)::int as events,
        count(*) filter (where event_type = 'search')::int as searches,
        extract(epoch from max(event_time) - min(event_time))::float8 as seconds
    from ev group by day, session_id`);
  const byDay = new Map<string, { events: number; searches: number; seconds: number }[]>();
  for (const s of sessions) {
    if (!byDay.has(s.day)) byDay.set(s.day, []);
    byDay.get(s.day)!.push(s as never);
  }
  const view = await sql`
    select day::text, sessions::int, events_per_session::float8,
        median_duration_seconds::float8 as median, p90_duration_seconds::float8 as p90,
        bounce_rate::float8, search_session_rate::float8
    from analytics.session_engagement order by day`;
  assertEquals(view.map((v) => v.day), [...byDay.keys()].sort());
  for (const v of view) {
    const list = byDay.get(v.day)!;
    const secs = list.map((s) => s.seconds).sort((a, b) => a - b);
    const n = list.length;
    assertEquals(v.sessions, n, v.day);
    near(v.events_per_session, list.reduce((a, s) => a + s.events, 0) / n, 0.005, v.day);
    near(v.median, percentile(secs, 0.5), 0.05, `${v.day} median`);
    near(v.p90, percentile(secs, 0.9), 0.05, `${v.day} p90`);
    near(v.bounce_rate, list.filter((s) => s.events === 1).length / n, 5e-7, v.day);
    near(v.search_session_rate, list.filter((s) => s.searches > 0).length / n, 5e-7, v.day);
  }
  return view.length;
}

/** The segment rule of docs/analytics.md, written again in TypeScript. */
function segmentOf(recency: number, tenure: number, orders: number, ltv: number): string {
  if (recency > 90) return "Churned";
  if (recency > 30) return "At risk";
  if (orders >= 5 || ltv >= 1000) return "High value";
  if (tenure < 7) return "New";
  return "Regular";
}

async function expectedSegments(sql: Sql) {
  const purchases = await sql.unsafe(`
    with ${EV},
    m as (
        select user_id, day, currency, count(*) as orders, sum(price * quantity) as amount
        from ev where event_type = 'purchase' and user_id is not null group by 1, 2, 3
    )
    select user_id::text, day::text, sum(orders)::int as orders,
        sum(core.to_reporting(amount, currency, day))::text as revenue
    from m group by 1, 2 order by 1, 2`);
  const [{ last }] = await sql`select max((event_time at time zone 'UTC')::date)::text as last
    from core.events`;
  const dayNo = (d: string) => Date.parse(d + "T00:00:00Z") / DAY;
  const users = new Map<string, { day: number; orders: number; revenue: number }[]>();
  for (const p of purchases) {
    if (!users.has(p.user_id)) users.set(p.user_id, []);
    users.get(p.user_id)!.push({ day: dayNo(p.day), orders: p.orders, revenue: Number(p.revenue) });
  }
  const out = new Map<string, { customers: number; orders: number; ltv: number }>();
  const first = Math.min(...purchases.map((p) => dayNo(p.day)));
  for (let d = first; d <= dayNo(last); d++) {
    for (const list of users.values()) {
      const upto = list.filter((p) => p.day <= d);
      if (upto.length === 0) continue;
      const orders = upto.reduce((a, p) => a + p.orders, 0);
      const ltv = upto.reduce((a, p) => a + p.revenue, 0);
      const seg = segmentOf(d - upto[upto.length - 1].day, d - upto[0].day, orders, ltv);
      const key = `${new Date(d * DAY).toISOString().slice(0, 10)}|${seg}`;
      const o = out.get(key) ?? { customers: 0, orders: 0, ltv: 0 };
      o.customers++;
      o.orders += orders;
      o.ltv += ltv;
      out.set(key, o);
    }
  }
  return out;
}

async function checkSegments(sql: Sql) {
  const expected = await expectedSegments(sql);
  const view = await sql`
    select day::text, segment, customers::int, orders::int, ltv::float8
    from analytics.customer_segment_history order by day, segment`;
  assertEquals(view.map((v) => `${v.day}|${v.segment}`), [...expected.keys()].sort());
  for (const v of view) {
    const e = expected.get(`${v.day}|${v.segment}`)!;
    assertEquals([v.customers, v.orders], [e.customers, e.orders], `${v.day} ${v.segment}`);
    near(v.ltv, e.ltv, 0.006, `${v.day} ${v.segment} ltv`);
  }
  // the current view is the last day of the history, with shares summing to 1
  const current = await sql`
    select as_of::text, segment, customers::int, share::float8 from analytics.customer_segments
    order by segment`;
  const lastDay = view.at(-1)!.day;
  assertEquals(
    current.map((c) => [c.as_of, c.segment, c.customers]),
    view.filter((v) => v.day === lastDay).map((v) => [v.day, v.segment, v.customers]),
  );
  near(current.reduce((a, c) => a + c.share, 0), 1, 1e-5, "shares");
  return view;
}

async function checkAffinity(sql: Sql) {
  const lines = await sql`
    select distinct session_id, product_id::int from core.events
    where event_type = 'purchase' and product_id is not null`;
  const baskets = new Map<string, number[]>();
  for (const l of lines) {
    if (!baskets.has(l.session_id)) baskets.set(l.session_id, []);
    baskets.get(l.session_id)!.push(l.product_id);
  }
  const per = new Map<number, number>();
  const pairs = new Map<string, number>();
  for (const products of baskets.values()) {
    for (const p of products) per.set(p, (per.get(p) ?? 0) + 1);
    for (const a of products) {
      for (const b of products) {
        if (a !== b) pairs.set(`${a},${b}`, (pairs.get(`${a},${b}`) ?? 0) + 1);
      }
    }
  }
  const total = baskets.size;
  const rows = [...pairs].map(([k, n]) => {
    const [a, b] = k.split(",").map(Number);
    return {
      product_id: a,
      recommended_product_id: b,
      pair_sessions: n,
      support: n / total,
      confidence: n / per.get(a)!,
      lift: (n * total) / (per.get(a)! * per.get(b)!),
      score: n / Math.sqrt(per.get(a)! * per.get(b)!),
    };
  });
  const expected = new Map<string, typeof rows[number] & { rank: number }>();
  for (const a of new Set(rows.map((r) => r.product_id))) {
    rows.filter((r) => r.product_id === a)
      .sort((x, y) =>
        Math.round(y.score * 1e6) - Math.round(x.score * 1e6) ||
        y.pair_sessions - x.pair_sessions ||
        x.recommended_product_id - y.recommended_product_id
      )
      .slice(0, 10)
      .forEach((r, i) => expected.set(`${a},${i + 1}`, { ...r, rank: i + 1 }));
  }
  const view = await sql`
    select product_id::int, rank::int, recommended_product_id::int, pair_sessions::int,
        support::float8, confidence::float8, lift::float8, score::float8
    from analytics.product_affinity order by product_id, rank`;
  assertEquals(view.length, expected.size);
  for (const v of view) {
    const e = expected.get(`${v.product_id},${v.rank}`);
    assert(e, `unexpected row ${v.product_id} rank ${v.rank}`);
    const at = `${v.product_id} #${v.rank}`;
    assertEquals(
      [v.recommended_product_id, v.pair_sessions],
      [e.recommended_product_id, e.pair_sessions],
      at,
    );
    near(v.score, e.score, 5e-7, at);
    near(v.support, e.support, 5e-7, at);
    near(v.confidence, e.confidence, 5e-7, at);
    near(v.lift, e.lift, 5e-6, at);
  }
  return view.length;
}

function near(actual: number, expected: number, tolerance: number, what: string) {
  assert(
    Math.abs(actual - expected) <= tolerance,
    `${what}: ${actual} is not within ${tolerance} of ${expected}`,
  );
}

async function view(sql: Sql, name: string, order: string): Promise<Record<string, unknown>[]> {
  return [...await sql.unsafe(`select * from analytics.${name} order by ${order}`)];
}

const rows = (list: Iterable<Record<string, unknown>>): Record<string, unknown>[] => [...list];

async function checkAll(sql: Sql) {
  const str = (rows: Record<string, unknown>[]): Record<string, unknown>[] =>
    rows.map((r) => ({
      ...r,
      day: r.day instanceof Date ? r.day.toISOString().slice(0, 10) : r.day,
    }));
  const traffic = await expectedPerformance(sql, "traffic_source");
  assert(traffic.length > 12, "several days x sources");
  assertEquals(
    str(await view(sql, "traffic_source_performance", "day, traffic_source")),
    rows(traffic),
  );
  assertEquals(
    str(await view(sql, "device_performance", "day, device")),
    rows(
      await expectedPerformance(sql, "device"),
    ),
  );
  const carts = await expectedCarts(sql);
  assert(
    carts.some((c) => Number(c.abandoned_carts) > 0) &&
      carts.some((c) => c.carts > c.abandoned_carts),
  );
  assertEquals(str(await view(sql, "cart_abandonment", "day, category")), rows(carts));
  const hourly = await expectedHourly(sql);
  assert(hourly.some((h) => h.last_week_events > 0), "hours with a week-earlier comparison");
  assertEquals(await view(sql, "hourly_trend", "hour"), rows(hourly));
  assert((await checkEngagement(sql)) >= 3);
  await checkSegments(sql);
  assert((await checkAffinity(sql)) > 0);
}

Deno.test("KPI views equal independent computations over a seeded multi-day run, and after a rebuild", async () => {
  const db = await testDb("kpis_run");
  const dir = await Deno.makeTempDir({ prefix: "kpis-" });
  try {
    const sql = db.sql;
    // a day-specific EUR rate inside the run: conversion must use the event's UTC day
    const rateDay = new Date(Date.now() - DAY).toISOString().slice(0, 10);
    await sql`insert into core.exchange_rates (currency, day, usd_per_unit)
      values ('EUR', ${rateDay}::date, 1.5), ('GBP', ${rateDay}::date - 1, 1.1)`;
    const now = Math.floor(Date.now() / HOUR) * HOUR;
    const recent = await generate({
      files: 6,
      events: 1500,
      intervalSeconds: 8 * 3600,
      seed: 19,
      startTime: new Date(now - 48 * HOUR),
      anomalyRate: 0.03,
      duplicateRate: 0.05,
      lateRate: 0.05,
      outDir: dir,
    });
    const lastWeek = await generate({
      files: 2,
      events: 800,
      intervalSeconds: 4 * 3600,
      seed: 20,
      startTime: new Date(now - 7 * DAY - 6 * HOUR),
      duplicateRate: 0.05,
      outDir: dir,
    });
    const files = [...lastWeek.files, ...recent.files];
    for (const [i, f] of files.entries()) {
      const bytes = await Deno.readFile(join(dir, f.name));
      // every other file as a deferred HTTP batch, the rest inline
      const http = i % 2 === 1;
      const r = await loadSource(sql, bytesSource(bytes), f.name, cfg, {
        kind: http ? "http" : "file",
        role: "pipeline_ingest",
        ...(http ? { analytics: "deferred" as const } : {}),
      });
      assertEquals(r.outcome, "loaded", f.name);
    }
    await applyDeferred(sql);
    const [c] = await sql`select count(*)::int as n,
      count(*) filter (where is_late)::int as late,
      (select count(*)::int from quality.dead_letter) as dead,
      (select coalesce(sum(duplicates), 0)::int from quality.batch_metrics) as dups,
      count(distinct currency)::int as currencies
      from core.events`;
    assert(c.late > 0 && c.dead > 0 && c.dups > 0 && c.currencies === 3, JSON.stringify(c));

    await checkAll(sql);
    await rebuildRollups(sql);
    await checkAll(sql);
  } finally {
    await db.drop();
    await Deno.remove(dir, { recursive: true });
  }
});
