// make demo's runs: history and live are one shop (catalogue, prices, customers' e-mail hashes,
// checked in a real database), history covers every day of the comparison windows and today up
// to the live stretch, live continues the daily curve at its pace, and sessions last as long
// live as in history.
import { assert, assertEquals } from "../testing/assert.ts";
import { loadDemo } from "../testing/demo_data.ts";
import { testDb } from "../testing/testdb.ts";
import { generate } from "./generate.ts";
import {
  DEMO_DEFAULTS,
  type DemoOptions,
  historyRuns,
  liveRun,
  liveStart,
  paceAt,
  streamRun,
} from "./demo.ts";
import { cycleShare } from "./file.ts";

const DAY = 86_400_000, HOUR = 3_600_000, MINUTE = 60_000;

Deno.test("demo plan: the last 15 UTC days, today up to the live stretch, live to the minute of now", () => {
  const now = Date.parse("2026-12-08T15:42:30.500Z");
  const runs = historyRuns(DEMO_DEFAULTS, now, "out");
  const starts = runs.map((r) => (r.startTime as Date).toISOString().slice(0, 10));
  assertEquals(starts.slice(0, 3), ["2026-05-22", "2026-08-30", "2026-10-24"]);
  // every day of the dashboard's "7 days to today" and the 7 before them, and one more
  const days = [...Array(16).keys()].map((i) =>
    new Date(Date.parse("2026-11-23") + i * DAY).toISOString().slice(0, 10)
  );
  assertEquals(starts.slice(3), days);
  const today = runs[runs.length - 1];
  assertEquals(today.intervalSeconds, (15 * 60 + 37) * 60);
  const live = liveRun(DEMO_DEFAULTS, now, "out");
  assertEquals((live.startTime as Date).toISOString(), "2026-12-08T15:37:00.000Z");
  assertEquals([live.files, live.intervalSeconds], [5, 60]);
  assertEquals(liveStart(DEMO_DEFAULTS, now), Date.parse("2026-12-08T15:37:00Z"));
  // one shop for every run, history, live and the stream alike
  const shops = [...runs, live, streamRun(DEMO_DEFAULTS, "out")].map((r) =>
    JSON.stringify([r.shopSeed, r.shopUsers, r.shopProducts])
  );
  assertEquals(new Set(shops).size, 1);
  // one pace for the recent days, live and the stream; a quarter of it long ago
  assertEquals(
    [...runs, live, streamRun(DEMO_DEFAULTS, "out")].map((r) => r.dailyEvents),
    [25_000, 25_000, 25_000, ...Array(18).fill(100_000)],
  );
  // a few events per second: 1.16/s on average, 2.06/s at the 20:00 peak, 0.23/s at 03:00 UTC
  assertEquals(Math.round(DEMO_DEFAULTS.dailyEvents / 86_400 * 100) / 100, 1.16);
  const tuesday = Date.parse("2026-12-08T00:00:00Z");
  assertEquals(Math.round(paceAt(DEMO_DEFAULTS, tuesday + 20 * HOUR) * 100) / 100, 2.06);
  assertEquals(Math.round(paceAt(DEMO_DEFAULTS, tuesday + 3 * HOUR) * 100) / 100, 0.23);
});

Deno.test("cycleShare: a UTC day holds its weekday weight, an hour its share of it", () => {
  const sunday = Date.parse("2026-12-06T00:00:00Z");
  assertEquals(Math.round(cycleShare(sunday, sunday + DAY) * 1e9) / 1e9, 1.15);
  assertEquals(Math.round(cycleShare(sunday + DAY, sunday + 2 * DAY) * 1e9) / 1e9, 1.05);
  const peak = cycleShare(sunday + 20 * HOUR, sunday + 21 * HOUR);
  const quiet = cycleShare(sunday + 3 * HOUR, sunday + 4 * HOUR);
  assertEquals(Math.round(peak / quiet * 1000) / 1000, Math.round(1.6 / 0.18 * 1000) / 1000);
});

/** session_id -> [first, last] event time of the regular rows of a file (CSV, schema v2). */
async function sessionSpans(path: string, spans: Map<string, [number, number]>) {
  const text = await Deno.readTextFile(path);
  // the first five columns of a regular row never need quoting; injected anomalies do not match
  const row = /^[0-9a-f-]{36},([0-9T:.Z-]{24}),[a-z_]+,\d*,(s_[0-9a-f]{16}),/gm;
  for (const m of text.matchAll(row)) {
    const t = Date.parse(m[1]);
    const s = spans.get(m[2]);
    if (!s) spans.set(m[2], [t, t]);
    else spans.set(m[2], [Math.min(s[0], t), Math.max(s[1], t)]);
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

Deno.test("demo live: its rows per minute and session durations are the history's at that hour", async () => {
  const dir = await Deno.makeTempDir({ prefix: "demo_pace_" });
  try {
    const o: DemoOptions = { ...DEMO_DEFAULTS, liveMinutes: 40 };
    // history of a Tuesday 14:00-20:00 (the day file's own cycle), live 17:00-17:40 that day
    const day = Date.parse("2026-12-01T00:00:00Z");
    const history = await generate({
      ...historyRuns(o, day + DAY, `${dir}/h`).at(-1)!,
      startTime: new Date(day + 14 * HOUR),
      intervalSeconds: 6 * 3600,
    });
    const live = await generate(liveRun(o, day + 17 * HOUR + 40 * MINUTE, `${dir}/l`));
    // rows follow the curve: each minute's share of the day, the fractions carried over
    const expected = (from: number, minutes: number) =>
      Math.round(o.dailyEvents * cycleShare(from, from + minutes * MINUTE));
    assertEquals(live.totals.rows, expected(day + 17 * HOUR, 40));
    assertEquals(history.totals.rows, expected(day + 14 * HOUR, 360));
    // 17:00 of a Tuesday (hour weight 1.25 of 21.58, weekday 1): 96.54 rows a minute, 1.6/s
    for (const f of live.files) assert(f.rows === 96 || f.rows === 97, `${f.name}: ${f.rows}`);

    // sessions that start 17:00-17:20: as long live as in the history file
    const durations = async (d: string, names: string[]) => {
      const spans = new Map<string, [number, number]>();
      for (const n of names) await sessionSpans(`${d}/${n}`, spans);
      const from = day + 17 * HOUR, to = from + 20 * MINUTE;
      return [...spans.values()].filter(([a, b]) => a >= from && a < to && b > a)
        .map(([a, b]) => (b - a) / 1000);
    };
    const h = await durations(`${dir}/h`, history.files.map((f) => f.name));
    const l = await durations(`${dir}/l`, live.files.map((f) => f.name));
    assert(h.length > 100 && l.length > 100, `sessions: ${h.length} history, ${l.length} live`);
    const ratio = median(l) / median(h);
    assert(
      ratio > 0.67 && ratio < 1.5,
      `median session: live ${median(l).toFixed(1)} s, history ${median(h).toFixed(1)} s`,
    );
    assert(median(l) > 60, `live median session ${median(l).toFixed(1)} s`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("demo history and live in the database: one catalogue, one price list, one e-mail hash per customer, no empty hour", async () => {
  const db = await testDb("demo_shop");
  const dir = await Deno.makeTempDir({ prefix: "demo_shop_" });
  try {
    // the demo's runs at a smaller pace (every hour of the night still has events), and a
    // longer live stretch to hold some hundreds of rows even at night
    const o: DemoOptions = { ...DEMO_DEFAULTS, dailyEvents: 2_500, liveMinutes: 180 };
    // "now" is yesterday at 18:00 UTC, whatever the hour the test runs: at night a live
    // stretch at this pace holds too few customers to tell whether they return
    const now = Math.floor(Date.now() / DAY) * DAY - DAY + 18 * HOUR;
    const today = Math.floor(now / DAY) * DAY;
    const live = await loadDemo(db.sql, o, now, dir);
    const sql = db.sql;
    const liveBatches = sql`
      select batch_id from quality.batch_metrics where source_name in ${
      sql(live.files.map((f) => f.name))
    }`;

    // one category per product, one price per product and currency (carts and purchases),
    // across history and live
    const [p] = await sql`
      with e as (
          select product_id, category, currency, price, batch_id in (${liveBatches}) as in_live
          from core.events where product_id is not null
      ),
      per_currency as (
          select product_id, count(distinct price) as prices from e group by product_id, currency
      ),
      per_product as (
          select product_id, count(distinct category) as categories,
              bool_or(in_live) as in_live, bool_or(not in_live) as in_history
          from e group by product_id
      )
      select
          (select count(*)::int from per_product where categories > 1)
          + (select count(*)::int from per_currency where prices > 1) as mixed,
          (select count(*)::int from per_product where in_live and in_history) as shared`;
    assertEquals(p.mixed, 0);
    // (the catalogue holds 40 products at this pace)
    assert(p.shared >= 30, `products seen live and in history: ${p.shared} of 40`);

    // one e-mail hash per customer id, history and live alike; returning customers come live
    const [u] = await sql`
      select
        count(*) filter (where hashes > 1)::int as mixed,
        count(*) filter (where in_live and in_history)::int as returning
      from (
        select user_id, count(distinct email_hash) as hashes,
            bool_or(batch_id in (${liveBatches})) as in_live,
            bool_or(batch_id not in (${liveBatches})) as in_history
        from core.events where user_id is not null and email_hash is not null
        group by user_id
      ) as per_user`;
    assertEquals(u.mixed, 0);
    assert(u.returning >= 20, `customers live who bought or browsed before: ${u.returning}`);

    // every hour of the 15 full days has events, and today every hour up to the live stretch
    const hours = await sql`
      select date_trunc('hour', event_time) as hour from core.events
      where event_time >= ${new Date(today - 15 * DAY)} and event_time < ${new Date(now)}
      group by 1`;
    const expectedHours = 15 * 24 + Math.floor((now - today) / HOUR) + 1;
    const missing = expectedHours - hours.length;
    // the hour of now may still be empty right after it begins
    assert(missing === 0 || (missing === 1 && now % HOUR < 6 * MINUTE), `${missing} hours empty`);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await db.drop();
  }
});
