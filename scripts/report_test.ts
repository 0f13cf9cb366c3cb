import { assert, assertEquals, assertThrows } from "./lib/testing/assert.ts";
import { loadConfig } from "./lib/common/config.ts";
import { bytesSource, loadSource, settings } from "./lib/batch/mod.ts";
import { type Column, formatTable, formatValue } from "./lib/analytics/report.ts";
import { testDb } from "./lib/testing/testdb.ts";
import { parseReportArgs, UsageError } from "./report.ts";

const script = new URL("./report.ts", import.meta.url).pathname;

async function run(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", script, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("parseReportArgs: defaults, every flag, and one clear error for a bad one", () => {
  assertEquals(parseReportArgs([]), { json: false, since: undefined, limit: 10, help: false });
  assertEquals(parseReportArgs(["--json", "--since", "2026-11-01", "--limit", "3"]), {
    json: true,
    since: "2026-11-01",
    limit: 3,
    help: false,
  });
  assertEquals(parseReportArgs(["-h"]).help, true);
  assertThrows(() => parseReportArgs(["--colour"]), UsageError, "--colour");
  assertThrows(() => parseReportArgs(["--limit", "0"]), UsageError, "--limit must be");
  assertThrows(() => parseReportArgs(["--limit", "2x"]), UsageError, '(got "2x")');
  assertThrows(() => parseReportArgs(["--since", "2026-02-30"]), UsageError, "--since must be");
  assertThrows(() => parseReportArgs(["--since", "yesterday"]), UsageError, "--since must be");
  assertThrows(() => parseReportArgs(["extra"]), UsageError);
});

Deno.test("formatTable aligns columns, right-aligns numbers and shows NULL as -", () => {
  const columns: Column[] = [
    { key: "name", title: "name", format: "text" },
    { key: "n", title: "count", format: "int" },
    { key: "rate", title: "rate", format: "rate" },
    { key: "money", title: "revenue", format: "money" },
  ];
  const text = formatTable(columns, [
    { name: "books", n: 1234, rate: 0.5, money: 1234.5 },
    { name: "toys", n: 7, rate: null, money: 0 },
  ]);
  assertEquals(text.split("\n"), [
    "name   count    rate   revenue",
    "-----  -----  ------  --------",
    "books  1,234  50.00%  1,234.50",
    "toys       7       -      0.00",
  ]);
  assertEquals(formatTable(columns, []).split("\n")[2], "(no rows)");
  assertEquals(formatValue(["a", "b"], "list"), "a, b");
  assertEquals(formatValue([], "list"), "-");
  assertEquals(formatValue(12.345, "seconds"), "12.3s");
  assertEquals(formatValue(245, "seconds"), "4m 05s");
  assertEquals(formatValue(3 * 3600 + 7 * 60 + 5, "seconds"), "3h 07m");
  assertEquals(formatValue(2 * 86400 + 4 * 3600, "seconds"), "2d 04h");
  assertEquals(formatValue(103012, "id"), "103012");
  // key figures: each row's unit picks the format
  assertEquals(
    formatTable([{ key: "value", title: "value", format: "by_unit" }], [
      { value: 232444.19, unit: "USD" },
      { value: 0.023735, unit: "ratio" },
      { value: 831, unit: "orders" },
    ]).split("\n").slice(2),
    ["232,444.19", "     2.37%", "       831"],
  );
});

Deno.test("deno task report: bad flags exit 2 with one line, --help exits 0", async () => {
  const bad = await run(["--bogus"]);
  assertEquals(bad.code, 2);
  assertEquals(bad.stderr.trim().split("\n").length, 1, bad.stderr);
  assert(bad.stderr.startsWith("error: ") && bad.stderr.includes("--bogus"), bad.stderr);
  const limit = await run(["--limit", "-1"]);
  assertEquals(limit.code, 2);
  const help = await run(["--help"]);
  assertEquals(help.code, 0);
  assert(help.stdout.includes("--since YYYY-MM-DD"));
});

Deno.test("deno task report prints tables and JSON from the analytics views as the analyst", async () => {
  const db = await testDb("report_cli");
  try {
    const now = Date.now();
    const at = (minutes: number) => new Date(now - minutes * 60_000).toISOString();
    const id = (n: number) => `0190c000-0000-7000-8000-${String(n).padStart(12, "0")}`;
    const csv =
      "event_id,event_time,event_type,user_id,session_id,product_id,category,price,quantity\n" +
      `${id(1)},${at(30)},view,7,s1,42,books,,\n` +
      `${id(2)},${at(29)},purchase,7,s1,42,books,12.50,2\n` +
      `${id(3)},${at(28)},view,,g1,43,toys,,\n` +
      `${id(4)},${at(27)},purchase,8,s2,43,toys,-1,1\n`;
    const cfg = settings(loadConfig({}));
    await loadSource(db.sql, bytesSource(new TextEncoder().encode(csv)), "r.csv", cfg);

    const env = { DATABASE_URL: db.url };
    const json = await run(["--json", "--limit", "5"], env);
    assertEquals(json.code, 0, json.stderr);
    const report = JSON.parse(json.stdout);
    const today = at(30).slice(0, 10);
    assertEquals(report.daily_sales.length, 1);
    assertEquals(report.daily_sales[0], {
      day: today,
      orders: 1,
      units: 2,
      revenue: 25,
      aov: 25,
      buyers: 1,
      visitors: 2,
      buyer_rate: 0.5,
      revenue_per_visitor: 12.5,
    });
    assertEquals(report.reporting_currency, "USD");
    assertEquals(report.revenue_by_currency, [{
      day: today,
      currency: "USD",
      orders: 1,
      revenue: 25,
      rate_to_reporting: 1,
      revenue_reporting: 25,
    }]);
    assertEquals(report.top_products.map((p: { product_id: number }) => p.product_id), [42, 43]);
    assertEquals(
      report.customer_segments.map((s: { segment: string; customers: number }) => [
        s.segment,
        s.customers,
      ]),
      [["High value", 0], ["Regular", 0], ["New", 1], ["At risk", 0], ["Churned", 0]],
    );
    // the key figures: today's 25 USD, and no previous week to compare with
    const revenue = report.key_figures.find((k: { metric: string }) => k.metric === "revenue");
    assertEquals([revenue.value, revenue.change], [25, null]);
    assert(
      revenue.comparison.startsWith("not comparable: the previous period"),
      revenue.comparison,
    );
    assertEquals(report.data_quality[0].invalid, 1);
    assertEquals(report.data_quality[0].top_reasons, ["negative_price"]);
    assertEquals(report.pipeline_health.last_file, "r.csv");
    assertEquals(report.pipeline_health.open_alerts, 1);

    const text = await run([], env);
    assertEquals(text.code, 0, text.stderr);
    for (
      const title of [
        "Daily sales",
        "Top categories",
        "Top products",
        "Funnel",
        "Key figures, last 7 UTC days",
        "Customer segments",
        "Data quality",
        "Pipeline health",
      ]
    ) assert(text.stdout.includes(title), title);
    assert(text.stdout.includes("negative_price"));
    assert(text.stdout.includes("money in USD"), text.stdout);
    assert(text.stdout.includes("revenue USD"), text.stdout);
    assert(text.stdout.includes("Revenue by currency"), text.stdout);

    // --since after the data: the time series are empty, the rest is not
    const later = await run(["--json", "--since", "2099-01-01"], env);
    const empty = JSON.parse(later.stdout);
    assertEquals([empty.daily_sales.length, empty.funnel.length, empty.data_quality.length], [
      0,
      0,
      0,
    ]);
    assertEquals(empty.top_categories.length, 2);
  } finally {
    await db.drop();
  }
});
