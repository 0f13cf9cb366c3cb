import { assertEquals } from "../scripts/lib/testing/assert.ts";
import { testDb } from "../scripts/lib/testing/testdb.ts";
import { loadConfig } from "../scripts/lib/common/config.ts";
import { bytesSource, loadSource, settings } from "../scripts/lib/batch/mod.ts";

Deno.test("core.to_reporting: the day's rate, else the latest earlier, else the earliest later", async () => {
  const db = await testDb("money_convert");
  try {
    await db.sql`
      insert into core.exchange_rates (currency, day, usd_per_unit) values
        ('EUR', '2026-01-10', 1.10), ('EUR', '2026-01-20', 1.20), ('GBP', '2026-01-10', 1.25)`;
    const rows = await db.sql`
      select
        round(core.to_reporting(100, 'EUR', '2026-01-10'), 6)::text as same_day,
        round(core.to_reporting(100, 'EUR', '2026-01-15'), 6)::text as earlier,
        round(core.to_reporting(100, 'EUR', '2026-01-25'), 6)::text as latest,
        round(core.to_reporting(100, 'USD', '2026-01-25'), 6)::text as usd,
        core.to_reporting(100, 'JPY', '2026-01-25') as unknown`;
    assertEquals(rows[0], {
      same_day: "110.000000",
      earlier: "110.000000",
      latest: "120.000000",
      usd: "100.000000",
      unknown: null,
    });
    // a day before every non-default rate: the shipped default of 2025-01-02 is earlier
    const [{ early }] = await db.sql`
      select round(core.to_reporting(100, 'EUR', '2020-01-01'), 6)::text as early`;
    assertEquals(early, "103.500000");
    await db.sql`update core.settings set reporting_currency = 'GBP'`;
    const [{ gbp }] = await db.sql`
      select round(core.to_reporting(100, 'EUR', '2026-01-10'), 6)::text as gbp`;
    assertEquals(gbp, "88.000000"); // 100 EUR = 110 USD = 110 / 1.25 GBP
    // the analyst cannot use schema core, but reads converted figures through a view
    await db.sql.unsafe(`set role pipeline_owner;
      create view analytics.money_probe as
      select round(core.to_reporting(10, 'EUR', '2026-01-20'), 6)::text as v;
      reset role`);
    await db.sql.begin(async (tx) => {
      await tx.unsafe("set local role pipeline_analyst");
      const [{ v }] = await tx`select v from analytics.money_probe`;
      assertEquals(v, "9.600000"); // 10 EUR = 12 USD = 12 / 1.25 GBP
    });
  } finally {
    await db.drop();
  }
});

// ------------------------------------------------ revenue in several currencies, exact to the cent

const HEADER = "event_id,event_time,event_type,user_id,session_id,product_id,category,price," +
  "quantity,currency\n";

/** Five purchases on two days in three currencies: [day, user, product, category, price, qty, currency]. */
const PURCHASES: [string, number, number, string, string, number, string][] = [
  ["2026-01-10", 1, 1, "books", "10.00", 1, "USD"],
  ["2026-01-10", 2, 1, "books", "20.00", 2, "EUR"],
  ["2026-01-10", 1, 2, "clothing", "8.00", 1, "GBP"],
  ["2026-01-11", 2, 2, "clothing", "10.00", 3, "EUR"],
  ["2026-01-11", 1, 1, "books", "3.33", 1, "GBP"],
];

function purchasesCsv(): Uint8Array {
  const lines = PURCHASES.map(([day, user, product, category, price, qty, currency], i) =>
    [
      `0190c000-0000-7000-8000-${String(i + 1).padStart(12, "0")}`,
      `${day}T12:00:00Z`,
      "purchase",
      user,
      `s-${i}`,
      product,
      category,
      price,
      qty,
      currency,
    ].join(",")
  );
  return new TextEncoder().encode(HEADER + lines.join("\n") + "\n");
}

Deno.test("revenue: every view converts each day's currencies at that day's rate, to the cent", async () => {
  const db = await testDb("money_views");
  try {
    const sql = db.sql;
    await sql`
      insert into core.exchange_rates (currency, day, usd_per_unit) values
        ('EUR', '2026-01-10', 1.10), ('EUR', '2026-01-11', 1.20), ('GBP', '2026-01-10', 1.25)`;
    await loadSource(sql, bytesSource(purchasesCsv()), "money.csv", settings(loadConfig({})));
    const views = async () => ({
      daily: (await sql`
        select day::text, orders, revenue::text, aov::text, reporting_currency
        from analytics.daily_sales order by day`).map((r) => [
        r.day,
        r.orders,
        r.revenue,
        r.aov,
        r.reporting_currency,
      ]),
      breakdown: (await sql`
        select day::text, currency, orders, units, revenue::text, revenue_reporting::text
        from analytics.daily_revenue_by_currency order by day, currency`).map((r) => [
        r.day,
        r.currency,
        r.orders,
        r.units,
        r.revenue,
        r.revenue_reporting,
      ]),
      products: (await sql`
        select product_id, revenue::text, revenue_rank::int from analytics.product_performance
        order by product_id`).map((r) => [r.product_id, r.revenue, r.revenue_rank]),
      categories: (await sql`
        select category, revenue::text, avg_selling_price::text
        from analytics.category_performance order by category`).map((r) => [
        r.category,
        r.revenue,
        r.avg_selling_price,
      ]),
      customers: (await sql`
        select user_id, historical_ltv::text from analytics.customer_rfm order by user_id`).map((
        r,
      ) => [r.user_id, r.historical_ltv]),
      hourly: (await sql`
        select hour::date::text as day, revenue::text from analytics.hourly_events
        where event_type = 'purchase' and events > 0 order by hour`).map((r) => [r.day, r.revenue]),
    });

    // by hand: USD 10 + EUR 40 x 1.10 + GBP 8 x 1.25 = 64.00 on the 10th;
    // EUR 30 x 1.20 + GBP 3.33 x 1.25 (the latest earlier GBP rate) = 40.1625 on the 11th
    assertEquals(await views(), {
      daily: [
        ["2026-01-10", 3, "64.00", "21.33", "USD"],
        ["2026-01-11", 2, "40.16", "20.08", "USD"],
      ],
      breakdown: [
        ["2026-01-10", "EUR", 1, 2, "40.00", "44.00"],
        ["2026-01-10", "GBP", 1, 1, "8.00", "10.00"],
        ["2026-01-10", "USD", 1, 1, "10.00", "10.00"],
        ["2026-01-11", "EUR", 1, 3, "30.00", "36.00"],
        ["2026-01-11", "GBP", 1, 1, "3.33", "4.16"],
      ],
      products: [[1, "58.16", 1], [2, "46.00", 2]], // 10 + 44 + 4.1625; 10 + 36
      categories: [["books", "58.16", "14.54"], ["clothing", "46.00", "11.50"]],
      customers: [[1, "24.16"], [2, "80.00"]], // 10 + 10 + 4.1625; 44 + 36
      hourly: [["2026-01-10", "64.00"], ["2026-01-11", "40.16"]],
    });

    // a late GBP rate for the 11th corrects every figure of that day at once, no rebuild
    await sql`insert into core.exchange_rates (currency, day, usd_per_unit)
      values ('GBP', '2026-01-11', 1.30)`;
    const late = await views();
    assertEquals(late.daily[1], ["2026-01-11", 2, "40.33", "20.17", "USD"]); // 36 + 4.329; 40.33 / 2
    assertEquals(late.products, [[1, "58.33", 1], [2, "46.00", 2]]);
    assertEquals(late.customers, [[1, "24.33"], [2, "80.00"]]);
    assertEquals(late.daily[0], ["2026-01-10", 3, "64.00", "21.33", "USD"]);

    // reporting in EUR: the 10th = 10 / 1.10 + 40 + 10 / 1.10 = 58.1818...;
    // the 11th = 30 + 3.33 x 1.30 / 1.20 = 33.6075
    await sql`update core.settings set reporting_currency = 'EUR'`;
    const eur = await views();
    assertEquals(eur.daily, [
      ["2026-01-10", 3, "58.18", "19.39", "EUR"],
      ["2026-01-11", 2, "33.61", "16.81", "EUR"], // aov = 33.61 / 2, half up
    ]);
    // a rebuild from core.events gives the same figures as the incremental rollups
    await sql`select analytics.rebuild_rollups()`;
    assertEquals(await views(), eur);
  } finally {
    await db.drop();
  }
});
