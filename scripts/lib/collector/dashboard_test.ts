// The analyst dashboard: its API (/v1/dashboard/kpis, /v1/dead-letter, every KPI view through
// /v1/analytics) against a real database, and the page in headless Chromium in these states
// (populated, empty, database down, read key missing or wrong, no permission, after a demo at
// 1400 and 390 px), asserting what the page shows and saving a screenshot of each
// (DASHBOARD_SCREENSHOT_DIR, default a temporary directory, printed).
import { assert, assertEquals } from "../testing/assert.ts";
import { loadConfig } from "../common/config.ts";
import { connect } from "../common/db.ts";
import { logger } from "../common/log.ts";
import { bytesSource, loadSource, settings } from "../batch/mod.ts";
import { type TestDb, testDb } from "../testing/testdb.ts";
import { createApp } from "./app.ts";
import { loadAssets } from "./dashboard.ts";
import { parseRange } from "./kpis.ts";
import { DEMO_DEFAULTS } from "../generator/demo.ts";
import { loadDemo } from "../testing/demo_data.ts";
import type { Page } from "playwright-core";

const PORT = Number(Deno.env.get("DASHBOARD_TEST_PORT") ?? 19191);
/** a port where nothing listens: the "database down" state */
const DEAD_DB_PORT = Number(Deno.env.get("DASHBOARD_TEST_DEAD_DB_PORT") ?? 19199);
const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";
const DL_KEY = "dl-key-for-tests";
const DAY = 86_400_000, HOUR = 3_600_000;
const NOW = Date.now();
const TODAY = Math.floor(NOW / DAY) * DAY;
const day = (n: number) => new Date(TODAY - n * DAY).toISOString().slice(0, 10);
/** the current hour (an event within it makes the hour partial) */
const CURRENT = new Date(Math.max(Math.floor(NOW / HOUR) * HOUR, NOW - 30_000));
const EMAIL = "alice@example.com";

const HEADER = "event_id,event_time,event_type,user_id,session_id,product_id,category,price," +
  "quantity,currency,device,traffic_source,user_email\n";
let seq = 0;
function ev(
  time: Date,
  type: string,
  user: number | "",
  session: string,
  price: string,
  currency: string,
  source: string,
  email = "",
) {
  const id = `0190d000-0000-7000-8000-${String(++seq).padStart(12, "0")}`;
  return [
    id,
    time.toISOString(),
    type,
    user,
    session,
    42,
    "books",
    price,
    price ? 1 : "",
    currency,
    "mobile",
    source,
    email,
  ].join(",");
}

/** Current period (7 days to today): 30 USD + 20 EUR; previous period: 25 + 10 USD. */
async function seed(db: TestDb) {
  const lines = [
    ev(CURRENT, "view", 1, "a", "", "USD", "ads"),
    ev(CURRENT, "purchase", 1, "a", "30.00", "USD", "ads"),
    ev(CURRENT, "view", "", "g", "", "USD", "social"),
    ev(new Date(CURRENT.getTime() - DAY), "add_to_cart", 2, "b", "20.00", "EUR", "email"),
    ev(new Date(CURRENT.getTime() - DAY), "purchase", 2, "b", "20.00", "EUR", "email"),
    ev(new Date(CURRENT.getTime() - 8 * DAY), "purchase", 3, "c", "25.00", "USD", "ads"),
    // the same hour a week ago: the trend's comparison
    ev(new Date(CURRENT.getTime() - 7 * DAY), "purchase", 4, "d", "10.00", "USD", "ads"),
    // rejected: a negative price, with an e-mail that must never reach the page
    ev(CURRENT, "purchase", 5, "e", "-3.00", "USD", "ads", EMAIL),
  ];
  const r = await loadSource(
    db.sql,
    bytesSource(new TextEncoder().encode(HEADER + lines.join("\n") + "\n")),
    "dash.csv",
    settings(loadConfig({})),
  );
  assertEquals([r.outcome], ["loaded"]);
  // an exact EUR rate for the conversion: 20 EUR = 22.00 USD
  await db.sql`insert into core.exchange_rates (currency, day, usd_per_unit)
    values ('EUR', ${
    day(1)
  }::date, 1.1) on conflict (currency, day) do update set usd_per_unit = 1.1`;
}

interface Served {
  base: string;
  close(): Promise<void>;
}

async function serve(dbUrl: string, vars: Record<string, string> = {}): Promise<Served> {
  const dir = await Deno.makeTempDir({ prefix: "dashboard_test_" });
  const cfg = loadConfig({
    DATABASE_URL: dbUrl,
    API_KEYS: "k",
    DATA_DIR: dir,
    LOG_DIR: `${dir}/logs`,
    DEAD_LETTER_KEYS: DL_KEY,
    ...vars,
  });
  const ingest = connect({ url: dbUrl, role: "pipeline_ingest", max: 1, connectTimeout: 2 });
  const analyst = connect({ url: dbUrl, role: "pipeline_analyst", max: 2, connectTimeout: 2 });
  const log = logger("dash", { level: "error", dir: `${dir}/logs`, quiet: true });
  const app = createApp({ cfg, ingest, analyst, log, assets: await loadAssets() });
  const server = Deno.serve({ port: PORT, hostname: "127.0.0.1", onListen() {} }, app.fetch);
  return {
    base: `http://127.0.0.1:${PORT}`,
    async close() {
      await app.drain(2_000);
      await server.shutdown();
      await Promise.all([ingest.end({ timeout: 2 }), analyst.end({ timeout: 2 })]);
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("parseRange: UTC days checked for form, the window left to SQL", () => {
  assertEquals(parseRange(new URLSearchParams()), { from: null, to: null });
  assertEquals(parseRange(new URLSearchParams("from=2026-11-01&to=2026-11-07")), {
    from: "2026-11-01",
    to: "2026-11-07",
  });
  for (
    const [q, msg] of [
      ["from=2026-02-30", "from must be a UTC date"],
      ["to=yesterday", "to must be a UTC date"],
    ]
  ) {
    let err: Error | undefined;
    try {
      parseRange(new URLSearchParams(q));
    } catch (e) {
      err = e as Error;
    }
    assert(err?.message.includes(msg), `${q}: ${err?.message}`);
  }
});

Deno.test("dashboard API: KPI figures, dead-letter drill-down behind its key, every KPI view", async () => {
  const db = await testDb("dashboard_api");
  const served = await serve(db.url);
  try {
    await seed(db);
    const get = (path: string, headers: Record<string, string> = {}) =>
      fetch(`${served.base}${path}`, { headers });
    const res = await get("/v1/dashboard/kpis");
    const k = await res.json();
    assertEquals(res.status, 200, JSON.stringify(k));
    assertEquals(k.currency, "USD");
    // the previous 7 days have data on 2 of them: figures, but no change (analytics.coverage)
    const notComparable = `not comparable: the previous period ${day(13)} – ${day(7)} has data in `;
    assertEquals([k.cards.revenue.value, k.cards.revenue.previous], [52, 35]);
    assertEquals([k.cards.revenue.change, k.cards.revenue.is_comparable], [null, false]);
    assert(k.cards.revenue.comparison.startsWith(notComparable), k.cards.revenue.comparison);
    assertEquals([k.cards.orders.value, k.cards.orders.previous], [2, 2]);
    assertEquals(k.cards.aov.value, 26);
    // sessions a, g, b: two with a purchase; previous c and d, both
    assertEquals(
      [k.cards.session_conversion_rate.value, k.cards.session_conversion_rate.previous],
      [0.666667, 1],
    );
    for (const c of Object.values(k.cards) as { change: number | null }[]) {
      assertEquals(c.change, null);
    }
    assertEquals(
      (await (await get("/v1/dashboard/kpis?from=2026-11-10&to=2026-11-01")).json()).error,
      "The period starts (2026-11-10) after it ends (2026-11-01): swap from and to",
    );
    assertEquals(k.funnel.map((f: { sessions: number }) => f.sessions), [2, 1, 2]);
    assertEquals(k.traffic_sources.map((t: { traffic_source: string }) => t.traffic_source), [
      "ads",
      "email",
      "social",
    ]);
    assertEquals(k.quality.reasons, [{ reason: "negative_price", rows: 1 }]);
    assertEquals(k.trend.length, 24);
    const partial = k.trend.filter((t: { is_partial: boolean }) => t.is_partial);
    assertEquals(partial.length, 1);
    assertEquals([partial[0].revenue, partial[0].last_week_revenue], [30, 10]);
    assertEquals(
      (await (await get("/v1/dashboard/kpis?from=2026-13-01")).json()).error,
      'from must be a UTC date like 2026-11-21 (got "2026-13-01")',
    );

    // drill-down: the key, a reason code, never the e-mail
    const dl = (key: string, q = "reason=negative_price") =>
      get(`/v1/dead-letter?${q}`, { authorization: `Bearer ${key}` });
    assertEquals((await dl("wrong")).status, 401);
    assertEquals((await dl(DL_KEY, "reason=DROP%20TABLE")).status, 400);
    const ok = await dl(DL_KEY);
    const body = await ok.text();
    assertEquals(ok.status, 200, body);
    const rows = JSON.parse(body).rows;
    assertEquals(rows.length, 1);
    assertEquals([rows[0].price, rows[0].reasons, rows[0].has_email], [
      "-3.00",
      ["negative_price"],
      true,
    ]);
    assert(!body.includes(EMAIL), "the e-mail left the database");
    // the analyst role cannot read the dead letter, not even through the function
    const analyst = connect({ url: db.url, role: "pipeline_analyst", max: 1 });
    try {
      let code = "";
      try {
        await analyst`select * from quality.dead_letter_examples('negative_price', 5)`;
      } catch (e) {
        code = (e as { code?: string }).code ?? "";
      }
      assertEquals(code, "42501");
    } finally {
      await analyst.end({ timeout: 2 });
    }

    for (
      const v of [
        "traffic_source_performance",
        "device_performance",
        "session_engagement",
        "cart_abandonment",
        "customer_segment_history",
        "customer_segments",
        "product_affinity",
        "hourly_trend",
      ]
    ) {
      const r = await get(`/v1/analytics/${v}`);
      const j = await r.json();
      assertEquals(r.status, 200, v);
      assert(j.count > 0 || v === "product_affinity", `${v} has rows`);
    }
  } finally {
    await served.close();
    await db.drop();
  }
  // drill-down off without DEAD_LETTER_KEYS
  const db2 = await testDb("dashboard_api_off");
  const off = await serve(db2.url, { DEAD_LETTER_KEYS: "" });
  try {
    const r = await fetch(`${off.base}/v1/dead-letter?reason=negative_price`);
    assertEquals([r.status, (await r.json()).error], [
      404,
      "The dead-letter drill-down is off: set DEAD_LETTER_KEYS to enable it",
    ]);
  } finally {
    await off.close();
    await db2.drop();
  }
});

async function browser() {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    const msg = `${CHROMIUM} not found (apt-get install chromium)`;
    if (Deno.env.get("DASHBOARD_BROWSER_REQUIRED") === "1") throw new Error(msg);
    console.log(`note: ${msg}: dashboard screenshot tests skipped`);
    return undefined;
  }
  const { chromium } = await import("playwright-core");
  return await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
}

const shots = Deno.env.get("DASHBOARD_SCREENSHOT_DIR") ??
  await Deno.makeTempDir({ prefix: "dashboard_shots_" });

Deno.test("dashboard in Chromium: populated, empty, database down, read key, no permission, after a demo", async (t) => {
  const b = await browser();
  if (!b) return;
  await Deno.mkdir(shots, { recursive: true });
  async function open(base: string, width = 1400, hash = "") {
    const page = await b!.newPage({ viewport: { width, height: 1500 } });
    const problems: string[] = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    await page.goto(`${base}/?refresh=60000${hash}`);
    await page.waitForSelector("body[data-kpi-refreshes]", { state: "attached", timeout: 60_000 });
    await page.waitForSelector("body[data-refreshes]", { state: "attached", timeout: 60_000 });
    const text = async (sel: string) => ((await page.textContent(sel)) ?? "").trim();
    const visible = (sel: string) => page.isVisible(sel);
    return { page, problems, text, visible };
  }
  /** The analyst panels marked not current, with what they say. */
  const staleMarks = (page: Page) =>
    page.$$eval(
      "#analyst section, .cards section",
      (els) => els.map((e) => (e as unknown as { dataset: { stale?: string } }).dataset.stale),
    );
  try {
    await t.step("populated", async () => {
      const db = await testDb("dashboard_page");
      await seed(db);
      const served = await serve(db.url);
      try {
        const { page, problems, text, visible } = await open(served.base);
        assertEquals(await text("#card-revenue .label"), "Revenue (USD)");
        assertEquals(await text("#card-revenue .value"), "52.00 USD");
        assert(
          (await text("#card-revenue .change")).startsWith(
            `not comparable: the previous period ${day(13)} – ${day(7)} has data in `,
          ),
        );
        assertEquals(await text("#card-orders .value"), "2");
        assertEquals(await text("#card-aov .value"), "26.00 USD");
        assertEquals(await text("#card-conversion .value"), "66.67 %");
        assert((await text("#card-conversion .change")).startsWith("not comparable"));
        assertEquals(await page.inputValue("#from"), day(6));
        assertEquals(await page.inputValue("#to"), day(0));
        assertEquals(await text("#tz"), "All dates and hours in UTC");
        assertEquals(await visible("#empty-state"), false);
        assertEquals(await visible("#down-state"), false);
        const funnel = await page.$$eval(
          "#funnel .funnel-row",
          (rows) => rows.map((r) => (r as unknown as { textContent: string }).textContent),
        );
        assertEquals(funnel, [
          "Viewed a product2 sessions",
          "Added to cart1 sessions · 50.00 % of previous",
          "Purchased2 sessions · 200.00 % of previous",
        ]);
        const cells = (sel: string) =>
          page.$$eval(
            `${sel} tr`,
            (rows) =>
              rows.map((r) =>
                [...(r as unknown as { children: { textContent: string }[] }).children].map((c) =>
                  c.textContent
                )
              ),
          );
        assertEquals((await cells("#traffic")).slice(1), [
          ["ads", "1", "1", "30.00 USD", "100.00 %", "30.00 USD"],
          ["email", "1", "1", "22.00 USD", "100.00 %", "22.00 USD"],
          ["social", "1", "0", "0.00 USD", "0.00 %", "–"],
        ]);
        // times in UTC, the "updated" one included
        assert(/^updated \d\d:\d\d:\d\d UTC$/.test(await text("#status")), await text("#status"));
        assertEquals((await cells("#segments")).slice(1).map((r) => [r[0], r[1]]), [
          ["High value", "0"],
          ["Regular", "2"], // users 3 and 4: first purchase 7 and 8 days ago
          ["New", "2"],
          ["At risk", "0"],
          ["Churned", "0"],
        ]);
        assertEquals((await cells("#products")).slice(1).map((r) => r.slice(0, 3)), [[
          "1",
          "42",
          "4",
        ]]);
        // the trend: the current hour is marked partial, and the axes say UTC
        assert((await text("#note-trend")).includes("in progress: partial (30.00 USD so far)"));
        assert((await text("#trend-title")).includes("(UTC, USD)"));
        const axis = await page.evaluate(() => {
          // deno-lint-ignore no-explicit-any
          const g = globalThis as any;
          return g.Chart.getChart(g.document.getElementById("chart-trend")).options.scales.x.title
            .text;
        });
        assertEquals(axis, "hour (UTC)");
        // data quality: reason code -> examples, behind the key, without the e-mail
        assertEquals((await cells("#reasons")).slice(1), [["negative_price", "1", "examples"]]);
        await page.click('#reasons button[data-reason="negative_price"]');
        await page.fill("#drill-key", "not-the-key");
        await page.click("#drill-form button");
        await page.locator("#drill-note", { hasText: /^cannot/ }).waitFor();
        assert((await text("#drill-note")).includes("DEAD_LETTER_KEYS"));
        await page.fill("#drill-key", DL_KEY);
        await page.click("#drill-form button");
        await page.locator("#drill-note", { hasText: "newest" }).waitFor();
        const drill = (await cells("#drill-rows")).slice(1);
        assertEquals(drill.map((r) => [r[1], r[2], r[7], r[9]]), [[
          "9",
          "negative_price",
          "-3.00",
          "(hidden)",
        ]]);
        assert(!(await page.content()).includes(EMAIL), "the e-mail reached the page");
        await page.screenshot({ path: `${shots}/populated.png`, fullPage: true });

        // a range that fails clears every analyst panel and says why
        await page.fill("#from", "2030-01-01");
        await page.click("#range-form button[type=submit]");
        await page.locator("#down-state", { hasText: "Cannot show this range" }).waitFor();
        assert((await text("#down-state")).includes("swap from and to"), await text("#down-state"));
        assertEquals(await text("#card-revenue .value"), "–");
        assertEquals(await page.$$eval("#traffic tr", (r) => r.length), 0);
        assertEquals(await text("#funnel"), "");
        assert(
          (await staleMarks(page)).every((m) => m === "not shown: this range failed"),
          "every analyst panel is marked",
        );
        assertEquals(problems, []);
        await page.close();
      } finally {
        await served.close();
        await db.drop();
      }
    });

    await t.step("empty", async () => {
      const db = await testDb("dashboard_empty");
      const served = await serve(db.url);
      try {
        const { page, problems, text, visible } = await open(served.base);
        assertEquals(await visible("#empty-state"), true);
        assert((await text("#empty-state")).includes("No events yet. Load some: make demo"));
        assertEquals(await text("#card-revenue .value"), "0.00 USD");
        // the current period is partial: the previous one counts as many hours (6 days and the
        // hours of today so far, 145 just after midnight UTC, 168 in the day's last hour)
        const change = await text("#card-revenue .change");
        const m = new RegExp(
          `^not comparable: the previous period ${day(13)} – ${
            day(7)
          } has data in 0 of its (\\d+) hours \\(0 of 7 days\\)$`,
        ).exec(change);
        assert(m && Number(m[1]) >= 145 && Number(m[1]) <= 168, change);
        assertEquals(await text("#card-aov .value"), "–");
        assertEquals(await text("#traffic td"), "no sessions in the range");
        await page.screenshot({ path: `${shots}/empty.png`, fullPage: true });
        assertEquals(problems, []);
        await page.close();
      } finally {
        await served.close();
        await db.drop();
      }
    });

    await t.step("database down", async () => {
      const served = await serve(`postgres://postgres@127.0.0.1:${DEAD_DB_PORT}/nothing`);
      try {
        const { page, problems, text, visible } = await open(served.base);
        assertEquals(await visible("#down-state"), true);
        assert(
          (await text("#down-state")).startsWith(
            "The database is unreachable, so no figure is shown",
          ),
          await text("#down-state"),
        );
        assert((await text("#down-state")).includes("make up"));
        assertEquals(await visible("#empty-state"), false);
        assertEquals(await visible("#key-state"), false);
        assertEquals(await page.getAttribute("#down-state", "data-problem"), "database");
        assertEquals(await text("#card-revenue .value"), "–");
        assert((await text("#status")).startsWith("database unreachable"), await text("#status"));
        assert((await staleMarks(page)).every((m) => m?.startsWith("not current: database")));
        await page.screenshot({ path: `${shots}/database-down.png`, fullPage: true });
        assertEquals(problems, []);
        await page.close();
      } finally {
        await served.close();
      }
    });
    await t.step(
      "read key: a prompt (not 'database unreachable'), a wrong key said so",
      async () => {
        const db = await testDb("dashboard_key");
        await seed(db);
        const served = await serve(db.url, { READ_KEYS: "rk-for-tests" });
        try {
          const { page, problems, text, visible } = await open(served.base, 390);
          assertEquals(await visible("#key-state"), true);
          assertEquals(await visible("#down-state"), false);
          assertEquals(
            await text("#key-title"),
            "This dashboard needs a read key: the server has READ_KEYS set.",
          );
          assertEquals(await text("#status"), "read key needed");
          assertEquals(await text("#card-revenue .value"), "–");
          assert(
            (await staleMarks(page)).every((m) => m === "not shown: a read key is needed"),
            "panels marked",
          );
          await page.screenshot({ path: `${shots}/key-prompt-390.png`, fullPage: true });
          await page.fill("#key-input", "not-a-read-key");
          await page.click("#key-form button");
          await page.locator("#key-title", { hasText: "not accepted" }).waitFor();
          assertEquals(
            await text("#key-title"),
            "The read key was not accepted: it is not one of the server's READ_KEYS.",
          );
          await page.fill("#key-input", "rk-for-tests");
          await page.click("#key-form button");
          await page.locator("#card-revenue .value", { hasText: "52.00 USD" }).waitFor();
          await page.locator("#status", { hasText: /^updated / }).waitFor();
          assertEquals(await visible("#key-state"), false);
          assertEquals(await visible("#down-state"), false);
          assert((await staleMarks(page)).every((m) => m === undefined), "panels current again");
          assertEquals(problems, []);
          await page.close();
        } finally {
          await served.close();
          await db.drop();
        }
      },
    );

    await t.step("no permission: its own message, not 'database unreachable'", async () => {
      const db = await testDb("dashboard_grants");
      await seed(db);
      await db.sql`revoke usage on schema analytics from pipeline_analyst`;
      const served = await serve(db.url);
      try {
        const { page, problems, text, visible } = await open(served.base);
        assertEquals(await visible("#down-state"), true);
        assertEquals(await page.getAttribute("#down-state", "data-problem"), "permission");
        const said = await text("#down-state");
        assert(
          said.startsWith("No permission. The database refused permission") &&
            said.includes("permission denied for schema analytics") &&
            said.includes("make up") && !said.includes("unreachable"),
          said,
        );
        assertEquals(await visible("#key-state"), false);
        assertEquals(await text("#status"), "no permission");
        assertEquals(await text("#card-revenue .value"), "–");
        assert((await staleMarks(page)).every((m) => m === "not current: no permission"));
        await page.screenshot({ path: `${shots}/no-permission.png`, fullPage: true });
        assertEquals(problems, []);
        await page.close();
      } finally {
        await served.close();
        await db.drop();
      }
    });

    await t.step(
      "after a demo: 1400 and 390 px, no overflow, money and comparisons plausible",
      async () => {
        const db = await testDb("dashboard_demo");
        const dir = await Deno.makeTempDir({ prefix: "dashboard_demo_" });
        const served = await serve(db.url);
        try {
          // make demo's runs at a smaller pace (about 60 orders a day)
          await loadDemo(db.sql, { ...DEMO_DEFAULTS, dailyEvents: 8_000 }, Date.now(), dir);
          for (const width of [1400, 390]) {
            const { page, problems, text } = await open(served.base, width);
            const [scroll, client] = await page.evaluate(() => {
              // deno-lint-ignore no-explicit-any
              const d = (globalThis as any).document.documentElement;
              return [d.scrollWidth, d.clientWidth];
            });
            assert(scroll <= client, `${width} px: the page is ${scroll} px wide`);
            // money: the currency and thousands separators, on the cards and in the tables
            const money = /^\d{1,3}(,\d{3})*\.\d{2} USD$/;
            const revenue = await text("#card-revenue .value");
            assert(money.test(revenue) && revenue.includes(","), `revenue card: ${revenue}`);
            assert(money.test(await text("#card-aov .value")), await text("#card-aov .value"));
            const column = (sel: string, i: number) =>
              page.$$eval(
                `${sel} tr td:nth-child(${i})`,
                (tds) => tds.map((td) => (td as unknown as { textContent: string }).textContent),
              );
            const figures = [
              ...await column("#traffic", 4),
              ...await column("#traffic", 6),
              ...await column("#products", 5),
              ...await column("#segments", 4),
            ];
            assert(figures.length > 20, `money cells: ${figures.length}`);
            for (const f of figures) assert(money.test(f), `a money cell: ${f}`);
            // both windows covered: every card compares, and no change is wild
            for (const card of ["revenue", "orders", "aov", "conversion"]) {
              const change = await text(`#card-${card} .change`);
              const m = /^[▲▼=] ([\d.]+) % \(/.exec(change);
              assert(m && Number(m[1]) < 50, `${card}: ${change}`);
            }
            assert(/^updated \d\d:\d\d:\d\d UTC$/.test(await text("#status")));
            await page.screenshot({ path: `${shots}/demo-${width}.png`, fullPage: true });
            assertEquals(problems, []);
            await page.close();
          }
        } finally {
          await served.close();
          await Deno.remove(dir, { recursive: true });
          await db.drop();
        }
      },
    );
    console.log(`screenshots: ${shots}`);
  } finally {
    await b.close();
  }
});
