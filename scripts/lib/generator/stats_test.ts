// The generator's default shop against the ranges of a real shop, over a seeded run ingested
// into a real database and read back from the analytics views: funnel, conversion, buy-now
// share, late share, per-market prices, source and device conversion, the daily cycle.
import { assert, assertEquals } from "../testing/assert.ts";
import { loadConfig } from "../common/config.ts";
import { fileSource, loadSource, settings } from "../batch/mod.ts";
import { testDb } from "../testing/testdb.ts";
import { generate } from "./generate.ts";

const LATE_RATE = 0.02;
const between = (label: string, x: number, lo: number, hi: number) =>
  assert(x >= lo && x <= hi, `${label} = ${x.toFixed(4)}, expected ${lo}..${hi}`);

Deno.test("the default shop converts like a real one (seeded run, read from the views)", async () => {
  const db = await testDb("generator_stats");
  const dir = await Deno.makeTempDir({ prefix: "stats_test_" });
  try {
    // two days of history in daily windows (traffic cycle) plus ten minutes around now
    const day = 86_400_000;
    const today = Math.floor(Date.now() / day) * day;
    const history = await generate({
      files: 2,
      events: 40_000,
      intervalSeconds: 86_400,
      startTime: new Date(today - 2 * day),
      seed: 7,
      anomalyRate: 0,
      duplicateRate: 0,
      lateRate: 0,
      outDir: dir,
    });
    const live = await generate({
      files: 5,
      events: 2_000,
      intervalSeconds: 60,
      seed: 8,
      anomalyRate: 0,
      duplicateRate: 0,
      lateRate: LATE_RATE,
      outDir: `${dir}/live`,
    });
    const cfg = settings(loadConfig({}));
    for (const f of history.files) {
      await loadSource(db.sql, await fileSource(`${dir}/${f.name}`), f.name, cfg);
    }
    for (const f of live.files) {
      await loadSource(db.sql, await fileSource(`${dir}/live/${f.name}`), f.name, cfg);
    }
    const sql = db.sql;

    // funnel and conversion per full history day
    const days = await sql`
      select d.day::text, d.visitors, d.buyers, f.view_sessions, f.add_to_cart_sessions,
          f.purchase_sessions
      from analytics.daily_sales as d join analytics.funnel as f on f.day = d.day
      where d.day < ${new Date(today)}::date order by d.day`;
    assertEquals(days.length, 2);
    for (const d of days) {
      const stats = {
        conversion: d.buyers / d.visitors,
        viewToCart: d.add_to_cart_sessions / d.view_sessions,
        cartToPurchase: d.purchase_sessions / d.add_to_cart_sessions,
      };
      console.log(d.day, JSON.stringify(stats));
      between(`${d.day} visitor conversion`, stats.conversion, 0.01, 0.05);
      between(`${d.day} session view->cart`, stats.viewToCart, 0.02, 0.1);
      between(`${d.day} cart->purchase`, stats.cartToPurchase, 0.2, 0.6);
    }

    // purchases without an add to cart in the same session: the buy-now share only
    const [s] = await sql`
      with sessions as (
          select session_id,
              bool_or(event_type = 'purchase') as bought,
              bool_or(event_type = 'add_to_cart') as carted
          from core.events group by session_id
      )
      select count(*) filter (where bought)::int as buying,
          count(*) filter (where bought and not carted)::int as buy_now
      from sessions`;
    console.log("buy now", s.buy_now, "of", s.buying);
    between("buy-now share of buying sessions", s.buy_now / s.buying, 0.02, 0.15);

    // late rows: about the configured late rate of the rows near now, none of the history
    const [late] = await sql`
      select sum(late)::int as late, sum(valid)::int as valid from quality.batch_metrics
      where source_name like '%-8-%'`;
    console.log("late", late.late, "of", late.valid);
    between("late share near now", late.late / late.valid, LATE_RATE * 0.6, LATE_RATE * 1.4);

    // a product costs a different number in each market, about the converted amount
    const prices = await sql`
      select product_id, currency, min(price)::float8 as price from core.events
      where price is not null -- one run, one catalog: the history's (the live run's late rows
          -- fall before midnight in the first hours of a UTC day)
          and batch_id in (
              select batch_id from quality.batch_metrics where source_name like '%-7-%'
          )
      group by 1, 2`;
    const byProduct = new Map<number, Record<string, number>>();
    for (const p of prices) {
      byProduct.set(p.product_id, { ...byProduct.get(p.product_id), [p.currency]: p.price });
    }
    let compared = 0;
    for (const m of byProduct.values()) {
      if (m.USD === undefined || m.EUR === undefined || m.USD < 20) continue;
      compared++;
      between("EUR price / USD price", m.EUR / m.USD, 0.9, 0.99);
      if (m.GBP !== undefined) between("GBP price / USD price", m.GBP / m.USD, 0.76, 0.82);
    }
    assert(compared > 20, `only ${compared} products seen in USD and EUR`);

    // conversion differs by traffic source and device: email beats social, desktop mobile
    const conv = await sql`
      select dim, value,
          count(distinct session_id) filter (where event_type = 'purchase')::float8
              / count(distinct session_id) as rate
      from core.events
      cross join lateral (values ('source', traffic_source), ('device', device)) as t (dim, value)
      group by dim, value`;
    const rate = (dim: string, value: string) =>
      conv.find((r) => r.dim === dim && r.value === value)!.rate as number;
    console.log(JSON.stringify(conv.map((r) => [r.value, Number(r.rate.toFixed(4))])));
    assert(rate("source", "email") > 2 * rate("source", "social"), "email vs social");
    assert(rate("device", "desktop") > 1.3 * rate("device", "mobile"), "desktop vs mobile");

    // the daily cycle: the busiest UTC hour of a history day has 3x the quietest one's events
    const hours = await sql`
      select sum(events)::int as events from analytics.hourly_events
      where hour < ${new Date(today)} group by hour`;
    const counts = hours.map((h) => h.events as number);
    between("peak / trough hour", Math.max(...counts) / Math.min(...counts), 3, 20);

    // returning customers: some users buy on both days
    const [r] = await sql`
      select count(*)::int as n from analytics.customer_rfm where frequency > 1`;
    assert(r.n > 0, "no customer bought twice");
  } finally {
    await Deno.remove(dir, { recursive: true });
    await db.drop();
  }
});
