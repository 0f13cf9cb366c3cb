// The KPI sections of `deno task report`, read as the analyst from a small hand-made load.
import { assert, assertEquals } from "../testing/assert.ts";
import { loadConfig } from "../common/config.ts";
import { connect } from "../common/db.ts";
import { bytesSource, loadSource, settings } from "../batch/mod.ts";
import { testDb } from "../testing/testdb.ts";
import { fetchReport, renderReport } from "./report.ts";

Deno.test("the report's KPI sections: traffic, devices, engagement, carts, segments, affinity, trend", async () => {
  const db = await testDb("kpi_report");
  const analyst = connect({ url: db.url, role: "pipeline_analyst", max: 1 });
  try {
    // all events within one minute of a fixed past instant: one UTC day, one hour
    const base = Math.floor(Date.now() / 86_400_000) * 86_400_000 - 86_400_000 + 10 * 3_600_000;
    const at = (s: number) => new Date(base + s * 1000).toISOString();
    const id = (n: number) => `0190c000-0000-7000-8000-${String(n).padStart(12, "0")}`;
    const rows = [
      // s1 (ads, mobile): view, cart 2 x 10, purchase of product 1 and 2
      [1, at(0), "view", 7, "s1", 1, "books", "", "", "mobile", "ads"],
      [2, at(10), "add_to_cart", 7, "s1", 1, "books", "10.00", 2, "mobile", "ads"],
      [3, at(20), "purchase", 7, "s1", 1, "books", "10.00", 2, "mobile", "ads"],
      [4, at(30), "purchase", 7, "s1", 2, "toys", "5.00", 1, "mobile", "ads"],
      // s2 (email, desktop): a toys cart of 30, abandoned
      [5, at(0), "add_to_cart", 8, "s2", 3, "toys", "15.00", 2, "desktop", "email"],
      // s3 (ads, mobile): buys 1 and 2 again
      [6, at(5), "purchase", 9, "s3", 1, "books", "10.00", 1, "mobile", "ads"],
      [7, at(6), "purchase", 9, "s3", 2, "toys", "5.00", 1, "mobile", "ads"],
    ];
    const csv =
      "event_id,event_time,event_type,user_id,session_id,product_id,category,price,quantity," +
      "device,traffic_source\n" +
      rows.map(([n, ...rest]) => [id(n as number), ...rest].join(",")).join("\n") + "\n";
    const r = await loadSource(
      db.sql,
      bytesSource(new TextEncoder().encode(csv)),
      "k.csv",
      settings(loadConfig({})),
    );
    assertEquals(r.outcome, "loaded");

    const report = await fetchReport(analyst, { limit: 10 });
    const section = (key: string) => report.sections.find((s) => s.key === key)!.rows;
    assertEquals(section("traffic_sources"), [
      // ads: 2 sessions, 4 orders, 20 + 5 + 10 + 5 = 40
      {
        traffic_source: "ads",
        sessions: 2,
        orders: 4,
        revenue: 40,
        session_conversion_rate: 1,
        aov: 10,
      },
      {
        traffic_source: "email",
        sessions: 1,
        orders: 0,
        revenue: 0,
        session_conversion_rate: 0,
        aov: null,
      },
    ]);
    assertEquals(section("devices").map((d) => [d.device, d.sessions, d.revenue]), [
      ["mobile", 2, 40],
      ["desktop", 1, 0],
    ]);
    const day = at(0).slice(0, 10);
    assertEquals(section("session_engagement"), [{
      day,
      sessions: 3,
      events_per_session: "2.33",
      median_duration_seconds: 1,
      p90_duration_seconds: 24.2, // durations 0, 1, 30: 1 + 0.8 x 29
      bounce_rate: 0.333333,
      search_session_rate: 0,
    }]);
    assertEquals(section("cart_abandonment"), [
      { category: "toys", carts: 1, abandoned_carts: 1, abandonment_rate: 1, abandoned_value: 30 },
      { category: "books", carts: 1, abandoned_carts: 0, abandonment_rate: 0, abandoned_value: 0 },
    ]);
    assertEquals(section("customer_segments").map((s) => [s.segment, s.customers, s.ltv]), [
      ["High value", 0, 0],
      ["Regular", 0, 0],
      ["New", 2, 40],
      ["At risk", 0, 0],
      ["Churned", 0, 0],
    ]);
    // products 1 and 2 share 2 sessions: below the default minimum of 3, not shown
    assertEquals(section("product_affinity"), []);
    assertEquals(
      section("hourly_trend").map((h) => [h.events, h.orders, h.revenue, h.comparison]),
      [[7, 4, 40, "not comparable: no data for the hour a week earlier"]],
    );
    const text = renderReport(report);
    for (
      const title of [
        "Traffic sources",
        "Devices",
        "Session engagement",
        "Cart abandonment",
        "Customer segments",
        "Customers also bought",
        "Hourly trend",
      ]
    ) assert(text.includes(title), title);
  } finally {
    await analyst.end({ timeout: 5 });
    await db.drop();
  }
});
