// The metrics catalogue (analytics.metrics, docs/metrics.md) against a real database: a seeded
// multi-day, multi-currency shop (an event every hour for 14 UTC days up to the current hour,
// plus one lone day a week earlier), and every surface — the report, the dashboard API,
// /v1/analytics and each Grafana panel query run as pipeline_analyst — showing the catalogue's
// value. LTV, the period comparison and affinity are checked against computations written
// separately over core.events; coverage, affinity support and zero-filled series directly.
import { assert, assertEquals } from "../testing/assert.ts";
import { loadConfig } from "../common/config.ts";
import { connect, type Sql } from "../common/db.ts";
import { logger } from "../common/log.ts";
import { createApp } from "../collector/app.ts";
import { bytesSource, loadSource, settings } from "../batch/mod.ts";
import { testDb } from "../testing/testdb.ts";
import { fetchReport } from "./report.ts";
import { BEGIN, END, readCatalogue, renderCatalogue } from "./catalogue.ts";

const HOUR = 3_600_000, DAY = 24 * HOUR;
const iso = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const HEADER = "event_id,event_time,event_type,user_id,session_id,product_id,category,price," +
  "quantity,currency,device,traffic_source\n";
const root = new URL("../../../", import.meta.url).pathname;

interface Shop {
  today: number;
  csv: string;
}

/** 14 UTC days of events up to the current hour, one every hour, and a lone day (today - 20). */
export function shop(now = Date.now()): Shop {
  const today = Math.floor(now / DAY) * DAY;
  const currentHour = Math.floor(now / HOUR) * HOUR;
  let seq = 0;
  const lines: string[] = [];
  const ev = (
    t: number,
    type: string,
    user: number | "",
    session: string,
    product: number,
    price: number | "",
    qty: number | "",
    currency: string,
    device: string,
    source: string,
  ) => {
    const id = `0190f000-0000-7000-8000-${String(++seq).padStart(12, "0")}`;
    const category = ["books", "toys", "sports"][product % 3];
    lines.push(
      [
        id,
        new Date(t + seq).toISOString(), // distinct times: same-instant events of a session are duplicates
        type,
        user,
        session,
        product,
        category,
        price,
        qty,
        currency,
        device,
        source,
      ].join(","),
    );
  };
  let i = 0;
  for (let h = today - 13 * DAY; h <= currentHour; h += HOUR, i++) {
    const t = Math.min(h + 1_000, now - 60_000);
    // guests (no user_id) only browse: a purchase needs a user
    const user = i % 5 === 0 && i % 3 !== 0 && i % 4 !== 0 ? "" : 1 + (i % 40);
    const product = 1 + (i % 6);
    const device = ["mobile", "desktop", "tablet"][i % 3];
    const source = ["ads", "email", "search", "direct"][i % 4];
    const s = `s${i}`;
    ev(t, "view", user, s, product, "", "", "USD", device, source);
    if (i % 2 === 0) ev(t, "add_to_cart", user, s, product, 12, 1, "USD", device, source);
    if (i % 3 === 0) {
      const currency = ["USD", "EUR", "GBP"][Math.floor(i / 3) % 3];
      ev(t, "purchase", user, s, product, 10 + (i % 7), 1 + (i % 2), currency, device, source);
    }
    if (i % 4 === 0) {
      // products 1 and 2 bought together: a well supported pair
      ev(t, "purchase", user, `p${i}`, 1, 5, 1, "USD", device, source);
      ev(t, "purchase", user, `p${i}`, 2, 6, 1, "USD", device, source);
    }
  }
  // a lone day: the one-off pair 5 + 6, and days without events before the 14 days
  const far = today - 20 * DAY + 12 * HOUR;
  ev(far, "purchase", 999, "far", 5, 7, 1, "USD", "mobile", "ads");
  ev(far, "purchase", 999, "far", 6, 8, 1, "USD", "mobile", "ads");
  return { today, csv: HEADER + lines.join("\n") + "\n" };
}

export async function seed(sql: Sql, s: Shop) {
  // exact rates, so every conversion is a whole cent: 1 EUR = 1.1 USD, 1 GBP = 1.25 USD
  await sql`delete from core.exchange_rates where currency in ('EUR', 'GBP')`;
  await sql`insert into core.exchange_rates (currency, day, usd_per_unit)
    values ('EUR', ${iso(s.today - 30 * DAY)}::date, 1.1),
        ('GBP', ${iso(s.today - 30 * DAY)}::date, 1.25)`;
  const r = await loadSource(
    sql,
    bytesSource(new TextEncoder().encode(s.csv)),
    "catalogue.csv",
    settings(loadConfig({})),
  );
  assertEquals(r.outcome, "loaded");
}

const n = (v: unknown) => (v === null || v === undefined ? null : Number(v));
const byMetric = (rows: Record<string, unknown>[]) =>
  Object.fromEntries(rows.map((r) => [r.metric as string, n(r.value)]));

Deno.test("catalogue: every source exists, and docs/metrics.md is generated from it", async () => {
  const db = await testDb("catalogue_sources");
  try {
    const metrics = await readCatalogue(db.sql);
    assert(metrics.length >= 40, `${metrics.length} metrics`);
    assertEquals(new Set(metrics.map((m) => m.metric)).size, metrics.length, "unique names");
    const periodMetrics = new Set(
      (await db.sql`select metric from analytics.period_metrics(null, null)`).map((r) => r.metric),
    );
    const columns = new Set(
      (await db.sql`
        select c.relname || '.' || a.attname as name
        from pg_class as c join pg_namespace as s on s.oid = c.relnamespace
        join pg_attribute as a on a.attrelid = c.oid and a.attnum > 0
        where s.nspname = 'analytics' and c.relkind = 'v'
        union all
        select p.proname || '().' || unnest(p.proargnames[p.pronargs + 1:])
        from pg_proc as p join pg_namespace as s on s.oid = p.pronamespace
        where s.nspname = 'analytics' and p.proretset`).map((r) => r.name as string),
    );
    for (const m of metrics) {
      assert(m.sources.length > 0, `${m.metric}: no source`);
      for (const src of m.sources) {
        const [, rest] = src.split("analytics.");
        if (rest.startsWith("period_metrics:")) {
          assert(periodMetrics.has(rest.slice(15)), `${m.metric}: ${src}`);
        } else assert(columns.has(rest), `${m.metric}: ${src} is no analytics column`);
      }
    }
    const doc = await Deno.readTextFile(`${root}docs/metrics.md`);
    const block = doc.slice(doc.indexOf(BEGIN), doc.indexOf(END) + END.length);
    assertEquals(block, renderCatalogue(metrics), "docs/metrics.md: run deno task metrics-doc");
  } finally {
    await db.drop();
  }
});

Deno.test("window rules: Grafana's last 7 days is 7 UTC days, the previous period, bad ranges", async () => {
  const db = await testDb("catalogue_windows");
  try {
    const [w] = await db.sql`
      select analytics.window_first_day('2026-11-23T15:00:00Z', '2026-11-30T15:00:00Z')::text
              as first,
          analytics.window_last_day('2026-11-30T15:00:00Z')::text as last,
          analytics.window_first_day('2026-11-01T00:00:00Z', '2026-11-07T23:59:59.999Z')::text
              as abs_first,
          analytics.window_last_day('2026-11-07T23:59:59.999Z')::text as abs_last,
          analytics.window_last_day('2026-11-08T00:00:00Z')::text as midnight`;
    assertEquals(w, {
      first: "2026-11-24",
      last: "2026-11-30",
      abs_first: "2026-11-01",
      abs_last: "2026-11-07",
      midnight: "2026-11-07",
    });
    const [p] = await db.sql`
      select from_day::text, to_day::text, days, previous_from::text, previous_to::text,
          is_partial
      from analytics.metric_period('2026-11-01', '2026-11-01')`;
    assertEquals(p, {
      from_day: "2026-11-01",
      to_day: "2026-11-01",
      days: 1,
      previous_from: "2026-10-31",
      previous_to: "2026-10-31",
      is_partial: false,
    });
    const [d] = await db.sql`
      select to_day = (now() at time zone 'UTC')::date as ends_today, days, is_partial
      from analytics.metric_period()`;
    assertEquals(d, { ends_today: true, days: 7, is_partial: true });
    for (
      const [from, to, msg] of [
        ["2026-11-10", "2026-11-01", "after it ends"],
        ["2020-01-01", "2026-01-01", "choose at most 366"],
      ]
    ) {
      let err: { message: string; code?: string } | undefined;
      try {
        await db.sql`select * from analytics.metric_period(${from}::date, ${to}::date)`;
      } catch (e) {
        err = e as { message: string; code?: string };
      }
      assert(err?.message.includes(msg) && err.code === "22023", `${from}..${to}: ${err?.message}`);
    }
  } finally {
    await db.drop();
  }
});

Deno.test("every surface shows the catalogue's value: report, dashboard API, /v1/analytics, Grafana", async () => {
  const db = await testDb("catalogue_surfaces");
  const dir = await Deno.makeTempDir({ prefix: "catalogue_test_" });
  const analyst = connect({ url: db.url, role: "pipeline_analyst", max: 2 });
  const ingest = connect({ url: db.url, role: "pipeline_ingest", max: 1 });
  try {
    const s = shop();
    await seed(db.sql, s);
    const cfg = loadConfig({
      DATABASE_URL: db.url,
      API_KEYS: "k",
      DATA_DIR: dir,
      LOG_DIR: `${dir}/logs`,
    });
    const app = createApp({
      cfg,
      ingest,
      analyst,
      log: logger("c", { level: "error", dir: `${dir}/logs`, quiet: true }),
    });
    const get = async (path: string) => {
      const res = await app.fetch(new Request(`http://c.test${path}`));
      const body = await res.json();
      assertEquals(res.status, 200, `${path}: ${JSON.stringify(body)}`);
      return body;
    };

    // the catalogue's values, as the analyst reads them
    const period = [...await analyst`select * from analytics.period_metrics(null, null)`];
    const catalogue = byMetric(period);
    const from = iso(s.today - 6 * DAY), to = iso(s.today);
    const channel = (c: string) =>
      analyst`select * from analytics.channel_summary(${c}, ${from}::date, ${to}::date)`;
    const traffic = [...await channel("traffic_source")];
    const devices = [...await channel("device")];
    const funnel = [...await analyst`select * from analytics.funnel_summary(${from}, ${to})`];
    const carts = [
      ...await analyst`
      select * from analytics.cart_abandonment_summary(${from}, ${to})`,
    ];
    const segments = [...await analyst`select * from analytics.customer_segments`];
    const affinity = [...await analyst`select * from analytics.product_affinity`];

    // the catalogue agrees with itself: a period is the sum of its days (exact rates: no cents
    // lost to rounding), sessions add up over channels
    const [days] = await analyst`
      select sum(revenue) as revenue, sum(orders) as orders, sum(units) as units
      from analytics.daily_sales where day between ${from} and ${to}`;
    assertEquals(
      [catalogue.revenue, catalogue.orders, catalogue.units],
      [n(days.revenue), n(days.orders), n(days.units)],
    );
    assertEquals(catalogue.sessions, traffic.reduce((a, r) => a + Number(r.sessions), 0));
    assertEquals(catalogue.sessions, devices.reduce((a, r) => a + Number(r.sessions), 0));
    assertEquals(catalogue.purchase_sessions, Number(funnel[2].sessions));
    assertEquals(
      catalogue.session_conversion_rate,
      Math.round((catalogue.purchase_sessions! / catalogue.sessions!) * 1e6) / 1e6,
    );
    assert(catalogue.revenue! > 0 && catalogue.orders! > 0, "the shop sold");

    // report (deno task report --json builds from the same fetchReport)
    const report = await fetchReport(analyst, { limit: 1000 });
    const section = (k: string) => report.sections.find((x) => x.key === k)!.rows;
    assertEquals(byMetric(section("key_figures")), catalogue);
    assertEquals(
      section("key_figures").map((r) => r.comparison),
      period.map((r) => r.comparison),
    );
    const seg = section("customer_segments").filter((r) => Number(r.customers) > 0);
    assertEquals(
      seg.map((r) => [r.segment, r.customers, r.ltv, r.avg_ltv]).sort(),
      segments.map((r) => [r.segment, Number(r.customers), n(r.ltv), n(r.avg_ltv)]).sort(),
    );
    assertEquals(
      section("product_affinity").map((r) => [r.product_id, r.recommended_product_id]).sort(),
      affinity.filter((a) => Number(a.rank) === 1)
        .map((a) => [String(a.product_id), String(a.recommended_product_id)]).sort(),
    );

    // dashboard API
    const k = await get("/v1/dashboard/kpis");
    assertEquals([k.range.from, k.range.to, k.range.days, k.range.is_partial], [from, to, 7, true]);
    for (const m of period) {
      assertEquals(k.cards[m.metric].value, n(m.value), `card ${m.metric}`);
      assertEquals(k.cards[m.metric].previous, n(m.previous_value), `card ${m.metric}`);
      assertEquals(k.cards[m.metric].change, n(m.change), `card ${m.metric}`);
      assertEquals(k.cards[m.metric].comparison, m.comparison, `card ${m.metric}`);
    }
    assertEquals(
      k.traffic_sources.map((
        t: Record<string, unknown>,
      ) => [t.traffic_source, t.sessions, t.revenue]),
      traffic.map((t) => [t.value, Number(t.sessions), n(t.revenue)]),
    );
    assertEquals(
      k.funnel.map((f: Record<string, unknown>) => [f.step, f.sessions, f.rate_from_previous]),
      funnel.map((f) => [f.step, Number(f.sessions), n(f.rate_from_previous)]),
    );
    assertEquals(
      k.segments.filter((x: { customers: number }) => x.customers > 0)
        .map((x: Record<string, unknown>) => [x.segment, x.customers, x.avg_ltv]).sort(),
      segments.map((x) => [x.segment, Number(x.customers), n(x.avg_ltv)]).sort(),
    );
    const lastDay = [
      ...await analyst`
      select hour, revenue from analytics.hourly_trend
      where hour >= ${to}::date::timestamp at time zone 'UTC' order by hour`,
    ];
    assertEquals(
      k.trend.filter((t: { revenue: number | null }) => t.revenue !== null)
        .map((t: { revenue: number }) => t.revenue),
      lastDay.map((r) => n(r.revenue)),
    );

    // /v1/analytics: the catalogue itself and the views as they are
    const api = await get("/v1/analytics/metrics?limit=1000");
    assertEquals(
      api.rows.map((r: { metric: string }) => r.metric),
      (await readCatalogue(analyst)).map((m) => m.metric),
    );
    const daily = await get(`/v1/analytics/daily_sales?day=${to}`);
    assertEquals(
      daily.rows[0].revenue,
      n(
        (await analyst`
      select revenue from analytics.daily_sales where day = ${to}`)[0].revenue,
      ),
    );
    assertEquals(
      (await get("/v1/analytics/product_affinity?limit=1000")).rows.length,
      affinity.length,
    );

    // Grafana: each panel query as the analyst over "Last 7 days" (now-7d .. now)
    const json = JSON.parse(
      await Deno.readTextFile(`${root}deploy/grafana/dashboards/ecommerce-pipeline.json`),
    );
    const expand = (q: string) =>
      q.replaceAll("$__timeFrom()", "(now() - interval '7 days')")
        .replaceAll("$__timeTo()", "now()")
        .replaceAll(
          /\$__timeFilter\(([^()]*(?:\([^()]*\))?[^()]*)\)/g,
          "($1 between now() - interval '7 days' and now())",
        )
        .replaceAll("$affinity_min_sessions", "3");
    const panel = async (title: string) => {
      const p = json.panels.find((x: { title: string }) => x.title.startsWith(title));
      assert(p, `Grafana panel "${title}"`);
      return [...await analyst.unsafe(expand(p.targets[0].rawSql))];
    };
    assertEquals(n((await panel("Revenue"))[0].Revenue), catalogue.revenue);
    assertEquals(n((await panel("Orders"))[0].Orders), catalogue.orders);
    assertEquals(n((await panel("Average order value"))[0].AOV), catalogue.aov);
    assertEquals(
      n((await panel("Session conversion"))[0]["Session conversion"]),
      catalogue.session_conversion_rate,
    );
    assertEquals(
      (await panel("Traffic sources")).map((r) => [r.source, n(r.sessions), n(r.revenue)]),
      traffic.map((t) => [t.value, Number(t.sessions), n(t.revenue)]),
    );
    assertEquals(
      (await panel("Devices")).map((r) => [r.device, n(r.sessions), n(r["session conversion"])]),
      devices.map((t) => [t.value, Number(t.sessions), n(t.session_conversion_rate)]),
    );
    assertEquals(
      (await panel("Cart abandonment")).map((r) => [r.category, n(r.carts), n(r.rate)]),
      carts.map((c) => [c.category, Number(c.carts), n(c.abandonment_rate)]),
    );
    assertEquals(
      (await panel("Change vs the previous period")).map((
        r,
      ) => [r.metric, n(r.change), r.comparison]),
      period.map((r) => [r.metric, n(r.change), r.comparison]),
    );
    assertEquals(
      (await panel("Customers also bought")).map((
        r,
      ) => [String(r.product), String(r["also bought"])]).sort(),
      affinity.filter((a) => Number(a.rank) === 1)
        .map((a) => [String(a.product_id), String(a.recommended_product_id)]).sort(),
    );
    const seven = await panel("Revenue per hour");
    const [hours] = await analyst`
      select count(*)::int as n, sum(revenue) as revenue from analytics.hourly_trend
      where hour between now() - interval '7 days' and now()`;
    assertEquals([seven.length, seven.reduce((a, r) => a + Number(r.revenue), 0)], [
      hours.n,
      n(hours.revenue),
    ]);
    // the daily series panels: the catalogue's columns of the days in the range, as they are
    const days7 = (view: string, cols: string) =>
      analyst.unsafe(`select ${cols} from analytics.${view}
        where day::timestamptz between now() - interval '7 days' and now() order by day`);
    const values = (rows: Record<string, unknown>[]) =>
      rows.map((r) => Object.values(r).map((v) => (v instanceof Date ? v.getTime() : n(v))));
    assertEquals(
      values(await panel("Funnel")),
      values([
        ...await days7("funnel", "day, view_sessions, add_to_cart_sessions, purchase_sessions"),
      ]),
    );
    assertEquals(
      values(await panel("Session engagement")),
      values([
        ...await days7("session_engagement", "day, median_duration_seconds, p90_duration_seconds"),
      ]),
    );
    assertEquals(
      (await panel("Customer segments")).map((r) => [r.segment, n(r.customers), n(r["avg LTV"])])
        .sort(),
      segments.map((x) => [x.segment, Number(x.customers), n(x.avg_ltv)]).sort(),
    );
  } finally {
    await Promise.all([analyst.end({ timeout: 2 }), ingest.end({ timeout: 2 })]);
    await db.drop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("LTV, comparisons with coverage, affinity support and zero-filled series", async () => {
  const db = await testDb("catalogue_rules");
  try {
    const s = shop();
    await seed(db.sql, s);
    const sql = db.sql;

    // LTV: revenue to date per customer, computed here from core.events
    const ltv = [
      ...await sql`
      select user_id::text, sum(price * quantity * case currency when 'EUR' then 1.1
              when 'GBP' then 1.25 else 1 end) as ltv,
          count(*) as orders, min(event_time) as first_at
      from core.events where event_type = 'purchase' and user_id is not null
      group by user_id order by user_id`,
    ];
    const rfm = [
      ...await sql`
      select user_id::text, historical_ltv, frequency, tenure_days, annual_revenue_run_rate
      from analytics.customer_rfm order by user_id`,
    ];
    assertEquals(
      rfm.map((r) => [r.user_id, n(r.historical_ltv), n(r.frequency)]),
      ltv.map((r) => [
        r.user_id,
        n(r.ltv),
        n(r.orders),
      ]),
    );
    // the run rate only with >= 2 orders and >= 30 days of tenure: nobody here has 30 days
    assert(rfm.some((r) => Number(r.frequency) >= 2 && Number(r.tenure_days) >= 13));
    assertEquals(rfm.filter((r) => r.annual_revenue_run_rate !== null).length, 0);
    // a segment's average LTV is the average of its customers' historical LTV
    assertEquals(
      [
        ...await sql`
        select segment, avg_ltv from analytics.customer_segments order by 1`,
      ].map((r) => [
        r.segment,
        n(r.avg_ltv),
      ]),
      [
        ...await sql`
        select segment, round(avg(historical_ltv), 2) as avg from analytics.customer_rfm
        group by 1 order by 1`,
      ].map((r) => [r.segment, n(r.avg)]),
    );
    // the segments equal the last day of their history
    assertEquals(
      [
        ...await sql`
        select segment, customers, ltv, avg_ltv from analytics.customer_segments order by 1`,
      ]
        .map((r) => ({ ...r })),
      [
        ...await sql`
        select segment, customers, ltv, avg_ltv from analytics.customer_segment_history
        where day = (select max(day) from analytics.customer_segment_history) order by 1`,
      ]
        .map((r) => ({ ...r })),
    );

    // weekly retention: cohorts by the UTC week (Monday) of the first purchase, from core.events
    const weekOf = (t: Date) => {
      const d = Math.floor(t.getTime() / DAY) * DAY;
      return d - ((new Date(d).getUTCDay() + 6) % 7) * DAY;
    };
    const bought = new Map<string, Set<number>>();
    for (
      const r of await sql`
        select user_id::text, event_time from core.events where event_type = 'purchase'`
    ) {
      if (!bought.has(r.user_id)) bought.set(r.user_id, new Set());
      bought.get(r.user_id)!.add(weekOf(r.event_time));
    }
    const lastWeek = weekOf(new Date());
    const expected: string[] = [];
    const cohorts = new Map<number, Set<number>[]>();
    for (const weeks of bought.values()) {
      const first = Math.min(...weeks);
      if (!cohorts.has(first)) cohorts.set(first, []);
      cohorts.get(first)!.push(weeks);
    }
    for (const [first, members] of [...cohorts].sort((a, b) => a[0] - b[0])) {
      for (let w = first, k = 0; w <= lastWeek; w += 7 * DAY, k++) {
        const active = members.filter((m) => m.has(w)).length;
        expected.push(
          `${iso(first)} ${k} ${members.length} ${active} ${(active / members.length).toFixed(6)}`,
        );
      }
    }
    assertEquals(
      (await sql`
        select cohort_week::text || ' ' || weeks_since || ' ' || cohort_customers || ' ' ||
            active_customers || ' ' || retention_rate as line
        from analytics.customer_retention order by cohort_week, weeks_since`).map((r) => r.line),
      expected,
    );
    assert(expected.some((l) => !l.endsWith(" 0.000000") && !l.endsWith(" 1.000000")));

    // the default period (today partial) is covered on both sides: compared like for like, up
    // to the current hour, with figures computed here from core.events
    const period = [...await sql`select * from analytics.period_metrics()`];
    const revenue = period.find((r) => r.metric === "revenue")!;
    assertEquals([revenue.is_comparable, revenue.is_partial], [true, true]);
    assert(String(revenue.comparison).startsWith("partial period:"), revenue.comparison);
    const cutoff = Math.floor(Date.now() / HOUR) * HOUR + HOUR;
    const span = async (start: number, end: number) =>
      (await sql`
        select coalesce(sum(price * quantity * case currency when 'EUR' then 1.1
            when 'GBP' then 1.25 else 1 end), 0) as revenue
        from core.events where event_type = 'purchase'
            and event_time >= ${new Date(start)} and event_time < ${new Date(end)}`)[0].revenue;
    const cur = n(await span(s.today - 6 * DAY, cutoff))!;
    const prev = n(await span(s.today - 13 * DAY, cutoff - 7 * DAY))!;
    assertEquals([n(revenue.value), n(revenue.previous_value)], [cur, prev]);
    assertEquals(n(revenue.change), Math.round(((cur - prev) / prev) * 1e6) / 1e6);

    // a baseline with data on 1 of its 7 days: not comparable, and the reason
    const from = iso(s.today - 12 * DAY), to = iso(s.today - 6 * DAY);
    const partial = [...await sql`select * from analytics.period_metrics(${from}, ${to})`];
    assertEquals(partial.map((r) => [r.change, r.is_comparable]), partial.map(() => [null, false]));
    assertEquals(
      partial[0].comparison,
      `not comparable: the previous period ${iso(s.today - 19 * DAY)} – ${
        iso(s.today - 13 * DAY)
      } has data in 24 of its 168 hours (1 of 7 days)`,
    );
    assertEquals([n(partial[0].coverage), n(partial[0].previous_coverage)], [
      1,
      n((24 / 168).toFixed(6)),
    ]);

    // affinity: the pair bought together in every 4th hour's session, never the one-off pair
    const pairs = [
      ...await sql`
      select product_id::int, recommended_product_id::int, pair_sessions::int, score
      from analytics.product_affinity order by 1, 2`,
    ];
    assertEquals(pairs.map((p) => [p.product_id, p.recommended_product_id]), [[1, 2], [2, 1]]);
    const [basket] = await sql`
      select count(*) filter (where product_id = 1)::int as a,
          count(*) filter (where product_id = 2)::int as b
      from (select distinct session_id, product_id from core.events
          where event_type = 'purchase') as x`;
    const together = pairs[0].pair_sessions;
    const cosine = together / Math.sqrt(basket.a * basket.b);
    assertEquals(n(pairs[0].score), Math.round(cosine * Math.min(together, 10) / 10 * 1e6) / 1e6);
    const all = [
      ...await sql`
      select product_id::int, recommended_product_id::int, pair_sessions::int, score
      from analytics.product_affinity_ranked(1, 10) where product_id in (5, 6) order by 1`,
    ];
    // with a minimum of 1, the one-off pair shows, scored a tenth of its cosine of 1
    assertEquals(
      all.map((p) => [p.product_id, p.recommended_product_id, p.pair_sessions, n(p.score)]),
      [
        [5, 6, 1, 0.1],
        [6, 5, 1, 0.1],
      ],
    );

    // zero-filled: a row for every day and hour between the lone day and the 14 days
    const [d] = await sql`
      select count(*)::int as days, count(*) filter (where orders = 0)::int as empty,
          max(day) - min(day) + 1 as span
      from analytics.daily_sales`;
    assertEquals([d.days, d.empty], [d.span, 6]);
    const [f] = await sql`select count(*)::int as days from analytics.funnel`;
    const [e] = await sql`select count(*)::int as days from analytics.session_engagement`;
    assertEquals([f.days, e.days], [d.span, d.span]);
    const [h] = await sql`
      select count(*)::int as hours,
          (extract(epoch from max(hour) - min(hour)) / 3600)::int + 1 as span,
          count(*) filter (where events = 0)::int as empty,
          count(*) filter (where revenue_change is not null and not is_covered)::int as bad
      from analytics.hourly_trend`;
    assertEquals([h.hours, h.empty, h.bad], [
      h.span,
      h.span - 1 - 13 * 24 - (new Date().getUTCHours() + 1),
      0,
    ]);
  } finally {
    await db.drop();
  }
});
