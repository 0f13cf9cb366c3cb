// tracker.js in headless Chromium against the collector and a real database: the demo
// storefront clicked through, a lost answer retried, offline clicks drained, a foreign origin
// refused by CORS, nothing without consent. And the served tracker is the build of the source.
// Chromium: CHROMIUM_PATH (default /usr/bin/chromium); with DASHBOARD_BROWSER_REQUIRED=1 (CI) a
// missing browser fails these tests instead of skipping them.
import type { Browser, BrowserContext, Page } from "playwright-core";
import { assert, assertEquals } from "../testing/assert.ts";
import { loadConfig } from "../common/config.ts";
import { connect } from "../common/db.ts";
import { logger } from "../common/log.ts";
import { type TestDb, testDb } from "../testing/testdb.ts";
import { createApp } from "../collector/app.ts";
import { serveStorefront, type StorefrontOptions } from "../../storefront.ts";
import { buildTracker, MINIFIED } from "./build.ts";

const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";
// a real desktop Chrome: HeadlessChrome's own User-Agent is dropped as a bot
const CHROME_UA =
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

Deno.test("tracker.min.js is the esbuild build of tracker.js (run deno task tracker)", async () => {
  assertEquals(await Deno.readTextFile(MINIFIED), await buildTracker());
});

async function chromium(): Promise<Browser | undefined> {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    const msg = `${CHROMIUM} not found (apt-get install chromium)`;
    if (Deno.env.get("DASHBOARD_BROWSER_REQUIRED") === "1") throw new Error(msg);
    console.log(`note: ${msg}: tracker browser tests skipped`);
    return undefined;
  }
  const { chromium } = await import("playwright-core");
  return await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // browser-wide: beacons and keepalive requests that outlive their page do not take the
    // context's userAgent, and HeadlessChrome's own is dropped as a bot
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      `--user-agent=${CHROME_UA}`,
    ],
  });
}

interface Stack {
  db: TestDb;
  shop: string;
  endpoint: string;
  /** a second shop, on an origin the key does not allow */
  foreign: string;
  close(): Promise<void>;
}

async function stack(): Promise<Stack> {
  const db = await testDb("tracker_browser");
  const dir = await Deno.makeTempDir({ prefix: "tracker_test_" });
  const cfg = loadConfig({
    DATABASE_URL: db.url,
    API_KEYS: "secret-key",
    DATA_DIR: dir,
    LOG_DIR: `${dir}/logs`,
    HTTP_ANALYTICS: "inline",
  });
  const ingest = connect({ url: db.url, role: "pipeline_ingest", max: 2 });
  const analyst = connect({ url: db.url, role: "pipeline_analyst", max: 1 });
  const log = logger("tracker", { level: "error", dir: `${dir}/logs`, quiet: true });
  const app = createApp({ cfg, ingest, analyst, log });
  const collector = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    (req, info) => app.fetch(req, info),
  );
  const endpoint = `http://127.0.0.1:${collector.addr.port}`;
  const opts: StorefrontOptions[] = [0, 1].map(() => ({
    port: 0,
    endpoint,
    key: "",
    flushMs: 100,
  }));
  const shops = opts.map((o) => serveStorefront(o));
  const [shop, foreign] = shops.map((s) => `http://127.0.0.1:${s.addr.port}`);
  const [{ key }] = await db.sql`select ingest.add_site_key('demo', array[${shop}]) as key`;
  for (const o of opts) o.key = key;
  return {
    db,
    shop,
    endpoint,
    foreign,
    async close() {
      for (const s of shops) await s.shutdown();
      await app.drain(2000);
      await collector.shutdown();
      await Promise.all([ingest.end({ timeout: 2 }), analyst.end({ timeout: 2 })]);
      await db.drop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function until<T>(
  what: string,
  f: () => Promise<T | undefined> | T | undefined,
  ms = 15_000,
): Promise<T> {
  const end = Date.now() + ms;
  while (true) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** core.events of one session, once it holds `n` rows. */
async function rowsOf(db: TestDb, n: number) {
  return await until(`${n} rows in core.events`, async () => {
    const rows = await db.sql`
      select event_type, user_id::text, product_id::int, category, price::text, quantity,
             currency, payment_method, search_query, device, traffic_source, session_id,
             extra ->> 'anonymous_id' as anonymous_id, extra ->> 'utm_campaign' as campaign
      from core.events order by event_time, event_id`;
    if (rows.length > n) throw new Error(`${rows.length} rows in core.events, expected ${n}`);
    return rows.length === n ? rows.map((r) => ({ ...r })) : undefined;
  });
}

interface Watched {
  page: Page;
  /** requests to /v1/collect: the events each carried */
  sent: number[];
  statuses: number[];
  /** requests to /v1/collect that failed in the browser: their error */
  failed: string[];
  problems: string[];
}

async function open(ctx: BrowserContext): Promise<Watched> {
  const page = await ctx.newPage();
  const w: Watched = { page, sent: [], statuses: [], failed: [], problems: [] };
  page.on("pageerror", (e) => w.problems.push(e.message));
  page.on("request", (r) => {
    if (r.url().includes("/v1/collect") && r.method() === "POST") {
      w.sent.push(JSON.parse(r.postData() ?? "{}").events?.length ?? -1);
    }
  });
  page.on("requestfailed", (r) => {
    if (r.url().includes("/v1/collect")) w.failed.push(r.failure()?.errorText ?? "");
  });
  page.on("response", (r) => {
    if (r.url().includes("/v1/collect")) w.statuses.push(r.status());
  });
  return w;
}

const queued = (page: Page) =>
  page.evaluate(() => JSON.parse(localStorage.getItem("ept_queue") ?? "[]").length as number);

const counts = async (db: TestDb) => {
  const [c] = await db.sql`
    select coalesce(sum(duplicates), 0)::int as duplicates,
           (select count(*)::int from quality.dead_letter) as dead
    from quality.batch_metrics`;
  return { duplicates: c.duplicates, dead: c.dead };
};

Deno.test("tracker.js in Chromium", async (t) => {
  const browser = await chromium();
  if (!browser) return;
  const s = await stack();
  const context = async () => {
    await s.db
      .sql`truncate core.events, core.event_ids, quality.batch_metrics, quality.dead_letter cascade`;
    return await browser.newContext({ userAgent: CHROME_UA });
  };
  try {
    await t.step("click-through: view, search, sign in, add to cart, purchase", async () => {
      const ctx = await context();
      const w = await open(ctx);
      const { page } = w;
      await page.goto(
        `${s.shop}/index.html?utm_source=newsletter&utm_medium=email&utm_campaign=w49`,
      );
      await page.click("#consent-yes");
      await page.click("#product-5001");
      await page.waitForSelector("#name:has-text('Pragmatic')");
      await page.fill("#q", "skillet");
      await page.click("#search-button");
      await page.waitForSelector("#title:has-text('skillet')");
      await page.click("#product-3001");
      await page.waitForSelector("#name:has-text('skillet')");
      await page.click("#signin-button");
      await page.waitForSelector("#customer-id");
      await page.fill("#quantity", "2");
      await page.click("#add");
      await page.click("#nav-cart");
      await page.click("#checkout");
      await page.selectOption("#payment", "paypal");
      const clicked = Date.now();
      await page.click("#place-order");
      await page.waitForSelector("#message:has-text('Thank you')");
      const rows = await rowsOf(s.db, 5);
      console.log(`  purchase click -> row in core.events: ${Date.now() - clicked} ms`);
      const { session_id, anonymous_id } = rows[0];
      assert(/^[0-9a-f]{8}-[0-9a-f]{4}-7/.test(session_id), `a UUIDv7 session: ${session_id}`);
      const common = {
        currency: "USD",
        device: "desktop",
        traffic_source: "email",
        session_id,
        anonymous_id,
        campaign: "w49",
      };
      assertEquals(rows, [
        {
          event_type: "view",
          user_id: null,
          product_id: 5001,
          category: "books",
          price: null,
          quantity: 1,
          payment_method: null,
          search_query: null,
          ...common,
        },
        {
          event_type: "search",
          user_id: null,
          product_id: null,
          category: null,
          price: null,
          quantity: 1,
          payment_method: null,
          search_query: "skillet",
          ...common,
        },
        {
          event_type: "view",
          user_id: null,
          product_id: 3001,
          category: "home_garden",
          price: null,
          quantity: 1,
          payment_method: null,
          search_query: null,
          ...common,
        },
        {
          event_type: "add_to_cart",
          user_id: "4242",
          product_id: 3001,
          category: "home_garden",
          price: "45.50",
          quantity: 2,
          payment_method: null,
          search_query: null,
          ...common,
        },
        {
          event_type: "purchase",
          user_id: "4242",
          product_id: 3001,
          category: "home_garden",
          price: "45.50",
          quantity: 2,
          payment_method: "paypal",
          search_query: null,
          ...common,
        },
      ]);
      assertEquals((await counts(s.db)).dead, 0);
      await until("an empty queue", async () => (await queued(page)) === 0 ? true : undefined);
      assertEquals(w.problems, []);
      await ctx.close();
    });

    await t.step("a cart line removed is a remove_from_cart row", async () => {
      const ctx = await context();
      const { page } = await open(ctx);
      await page.goto(`${s.shop}/index.html`);
      await page.click("#consent-yes");
      await page.click("#product-6001");
      await page.click("#signin-button");
      await page.fill("#quantity", "3");
      await page.click("#add");
      await page.click("#nav-cart");
      await page.click("#remove-6001");
      await page.waitForSelector("#lines:has-text('empty')");
      const rows = await rowsOf(s.db, 3);
      assertEquals(rows.map((r) => [r.event_type, r.user_id, r.product_id, r.price, r.quantity]), [
        ["view", null, 6001, null, 1],
        ["add_to_cart", "4242", 6001, "24.90", 3],
        ["remove_from_cart", "4242", 6001, "24.90", 3],
      ]);
      await until("an empty queue", async () => (await queued(page)) === 0 ? true : undefined);
      await ctx.close();
    });

    await t.step("a send whose answer is lost is retried and lands once", async () => {
      const ctx = await context();
      const w = await open(ctx);
      let first = 0;
      await ctx.route("**/v1/collect?*", async (route) => {
        if (route.request().method() === "POST" && first === 0) {
          // the collector stores the batch; the browser never hears back
          first = (await route.fetch()).status();
          await route.abort("connectionreset");
        } else await route.continue();
      });
      await w.page.goto(`${s.shop}/index.html`);
      await w.page.click("#consent-yes");
      await w.page.click("#product-1001");
      await until("the retry's answer", () => w.statuses.length >= 1 ? true : undefined);
      const rows = await rowsOf(s.db, 1);
      assertEquals([first, rows[0].event_type, rows[0].product_id], [200, "view", 1001]);
      await until("an empty queue", async () => (await queued(w.page)) === 0 ? true : undefined);
      // two sends of the one event: the second is a duplicate, not a second row nor a conflict
      assertEquals(w.sent, [1, 1]);
      assertEquals(await counts(s.db), { duplicates: 1, dead: 0 });
      await ctx.close();
    });

    await t.step("429 with Retry-After: nothing is sent before it, then one batch", async () => {
      const ctx = await context();
      const w = await open(ctx);
      const at: number[] = [];
      await ctx.route("**/v1/collect?*", async (route) => {
        if (route.request().method() !== "POST") return await route.continue();
        at.push(Date.now());
        if (at.length > 1) return await route.continue();
        await route.fulfill({
          status: 429,
          // as the collector answers (collect_test.ts checks its headers)
          headers: {
            "retry-after": "2",
            "access-control-allow-origin": s.shop,
            "access-control-expose-headers": "Retry-After",
          },
          contentType: "application/json",
          body: '{"error":"Too many requests"}',
        });
      });
      await w.page.goto(`${s.shop}/index.html`);
      await w.page.click("#consent-yes");
      await w.page.click("#product-1002");
      await until("the 429", () => at.length >= 1 ? true : undefined);
      // clicks while the tracker waits: they join the queue, they do not trigger sends
      await w.page.click("#signin-button");
      await w.page.click("#add");
      await w.page.click("#add");
      const rows = await rowsOf(s.db, 3);
      assertEquals(rows.map((r) => r.event_type), ["view", "add_to_cart", "add_to_cart"]);
      assertEquals(w.sent, [1, 3]);
      assert(at[1] - at[0] >= 2000, `the retry waited ${at[1] - at[0]} ms, Retry-After is 2 s`);
      await until("an empty queue", async () => (await queued(w.page)) === 0 ? true : undefined);
      await ctx.close();
    });

    await t.step("offline clicks are queued and drain exactly once back online", async () => {
      const ctx = await context();
      const w = await open(ctx);
      await w.page.goto(`${s.shop}/index.html`);
      await w.page.click("#consent-yes");
      await w.page.click("#product-2001");
      await w.page.waitForSelector("#name:has-text('Merino')");
      await rowsOf(s.db, 1);
      await until("the view sent", async () => (await queued(w.page)) === 0 ? true : undefined);
      await ctx.setOffline(true);
      const before = w.sent.length;
      await w.page.click("#signin-button");
      await w.page.click("#add");
      await w.page.click("#add");
      await w.page.click("#wish");
      await new Promise((r) => setTimeout(r, 1000));
      assertEquals([w.sent.length - before, await queued(w.page)], [0, 3]);
      await ctx.setOffline(false);
      const rows = await rowsOf(s.db, 4);
      assertEquals(rows.map((r) => [r.event_type, r.user_id, r.product_id]), [
        ["view", null, 2001],
        ["add_to_cart", "4242", 2001],
        ["add_to_cart", "4242", 2001],
        ["wishlist", "4242", 2001],
      ]);
      await until("an empty queue", async () => (await queued(w.page)) === 0 ? true : undefined);
      assertEquals(w.sent.slice(before), [3]);
      assertEquals(await counts(s.db), { duplicates: 0, dead: 0 });
      await ctx.close();
    });

    await t.step(
      "the offline queue keeps the newest maxQueue events, none past maxAgeHours",
      async () => {
        const ctx = await context();
        const { page } = await open(ctx);
        await page.goto(`${s.shop}/index.html`);
        // the tracker module, loaded while online
        await page.evaluate(async () => {
          const { default: config } = await import("./config.js");
          Object.assign(globalThis, { config, tracker: await import(config.trackerUrl) });
        });
        await ctx.setOffline(true);
        const kept = await page.evaluate(async () => {
          // deno-lint-ignore no-explicit-any
          const { config, tracker: t } = globalThis as any;
          t.init({ ...config, consent: true, maxQueue: 3, maxAgeHours: 0.0005 });
          for (const id of [1, 2, 3, 4, 5]) t.productView({ id, category: "toys" });
          t.page(); // reads the queue through its bounds
          const q = () => JSON.parse(localStorage.getItem("ept_queue") ?? "[]");
          const newest = q().map((e: { product_id: number }) => e.product_id);
          await new Promise((r) => setTimeout(r, 2000));
          t.productView({ id: 6, category: "toys" }); // the old ones are dropped as it is queued
          const after = q().map((e: { product_id: number }) => e.product_id);
          // nothing left for a beacon when the page closes (the next steps count batches)
          t.setConsent(false);
          return [newest, after];
        });
        assertEquals(kept, [[3, 4, 5], [6]]);
        await ctx.close();
      },
    );

    await t.step("a page on an origin the key does not allow is refused by CORS", async () => {
      const ctx = await context();
      const w = await open(ctx);
      const console_: string[] = [];
      w.page.on("console", (m) => console_.push(m.text()));
      await w.page.goto(`${s.foreign}/index.html`);
      await w.page.click("#consent-yes");
      await w.page.click("#product-1002");
      await until("the refusal", () => w.failed.length >= 1 ? true : undefined);
      // the browser blocks the answer (no Access-Control-Allow-Origin for this origin) ...
      assertEquals([w.failed[0], w.statuses], ["net::ERR_FAILED", []]);
      // ... which the collector gave as 403, storing nothing
      const metrics = await (await fetch(`${s.endpoint}/metrics`)).text();
      assert(
        /pipeline_http_requests_total\{route="\/v1\/collect",status="403"\} [1-9]/.test(metrics),
        "the collector answered 403",
      );
      assert(
        console_.some((m) => m.includes("CORS") || m.includes("Access-Control-Allow-Origin")),
        `the browser reports the CORS refusal: ${console_.join(" | ")}`,
      );
      // kept for a retry (the key may be fixed), stored nowhere
      assertEquals(await queued(w.page), 1);
      const [{ n }] = await s.db.sql`select count(*)::int as n from quality.batch_metrics`;
      assertEquals(n, 0);
      await ctx.close();
    });

    await t.step("without consent: no request and nothing stored", async () => {
      const ctx = await context();
      const w = await open(ctx);
      await w.page.goto(`${s.shop}/index.html?utm_source=x`);
      await w.page.click("#product-4001");
      await w.page.waitForSelector("#name:has-text('Trail')");
      await w.page.fill("#q", "shoes");
      await w.page.click("#search-button");
      await w.page.waitForSelector("#title:has-text('shoes')");
      await new Promise((r) => setTimeout(r, 1000));
      const storage = await w.page.evaluate(() => [localStorage.length, sessionStorage.length]);
      assertEquals([w.sent, storage, await ctx.cookies()], [[], [0, 0], []]);
      const [{ n }] = await s.db.sql`select count(*)::int as n from quality.batch_metrics`;
      assertEquals(n, 0);
      await ctx.close();
    });

    await t.step("consent withdrawn: everything the tracker stored is removed", async () => {
      const ctx = await context();
      const { page } = await open(ctx);
      await page.goto(`${s.shop}/index.html`);
      await page.click("#consent-yes");
      await page.click("#product-7001");
      await page.click("#signin-button");
      const keys = () =>
        page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("ept_")).sort());
      await until(
        "the tracker's storage",
        async () => (await keys()).length >= 3 ? true : undefined,
      );
      assertEquals(await keys(), ["ept_queue", "ept_session", "ept_user", "ept_visitor"]);
      await page.evaluate(() => import("./shop.js").then((m) => m.tracker.setConsent(false)));
      assertEquals(await keys(), []);
      // and nothing is tracked afterwards
      await page.click("#wish");
      await new Promise((r) => setTimeout(r, 500));
      assertEquals(await keys(), []);
      await ctx.close();
    });
  } finally {
    await browser.close();
    await s.close();
  }
});
