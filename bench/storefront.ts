// deno run -A bench/storefront.ts [--clicks N]: how long a click in the demo storefront takes to
// reach the dashboard's data (GET /v1/dashboard, events per minute), with the settings
// `make storefront` gives the collector (HTTP_ANALYTICS=inline, DASHBOARD_CACHE_MS=250) and the
// demo's tracker (flushMs 200). Headless Chromium, a test database, everything in this process
// but the browser. Results: docs/tracking.md#the-demo-storefront.
import { parseArgs } from "node:util";
import { loadConfig } from "../scripts/lib/common/config.ts";
import { connect } from "../scripts/lib/common/db.ts";
import { logger } from "../scripts/lib/common/log.ts";
import { createApp } from "../scripts/lib/collector/app.ts";
import { testDb } from "../scripts/lib/testing/testdb.ts";
import { serveStorefront, type StorefrontOptions } from "../scripts/storefront.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { clicks: { type: "string", default: "10" } },
});
const CHROME_UA =
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

const db = await testDb("bench_storefront");
const dir = await Deno.makeTempDir({ prefix: "bench_storefront_" });
const cfg = loadConfig({
  DATABASE_URL: db.url,
  DATA_DIR: dir,
  LOG_DIR: `${dir}/logs`,
  HTTP_ANALYTICS: "inline",
  DASHBOARD_CACHE_MS: "250",
});
const ingest = connect({ url: db.url, role: cfg.INGEST_ROLE, max: 2 });
const analyst = connect({ url: db.url, role: cfg.ANALYST_ROLE, max: 2 });
const app = createApp({
  cfg,
  ingest,
  analyst,
  log: logger("bench", { level: "error", dir: `${dir}/logs`, quiet: true }),
});
const collector = Deno.serve(
  { port: 0, hostname: "127.0.0.1", onListen() {} },
  (req, info) => app.fetch(req, info),
);
const endpoint = `http://127.0.0.1:${collector.addr.port}`;
const opts: StorefrontOptions = { port: 0, endpoint, key: "", flushMs: 200 };
const shop = serveStorefront(opts);
const origin = `http://127.0.0.1:${shop.addr.port}`;
[{ key: opts.key }] = await db.sql`select ingest.add_site_key('bench', array[${origin}]) as key`;

const { chromium } = await import("playwright-core");
const browser = await chromium.launch({
  executablePath: Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", `--user-agent=${CHROME_UA}`],
});
const page = await (await browser.newContext()).newPage();
await page.goto(`${origin}/product.html?id=1001`);
await page.click("#consent-yes");
await page.click("#signin-button");

async function carts(): Promise<number> {
  const d = await (await fetch(`${endpoint}/v1/dashboard`)).json();
  return (d.events_per_minute as { event_type: string; events: number }[])
    .filter((r) => r.event_type === "add_to_cart").reduce((a, r) => a + r.events, 0);
}

const ms: number[] = [];
for (let i = 0; i < Number(values.clicks); i++) {
  const before = await carts();
  const t0 = performance.now();
  await page.click("#add");
  while (await carts() === before) await new Promise((r) => setTimeout(r, 20));
  ms.push(Math.round(performance.now() - t0));
  await new Promise((r) => setTimeout(r, 700));
}
await browser.close();
await shop.shutdown();
await app.drain(2000);
await collector.shutdown();
await Promise.all([ingest.end(), analyst.end()]);
await db.drop();
await Deno.remove(dir, { recursive: true });

const sorted = [...ms].sort((a, b) => a - b);
console.log(`click -> /v1/dashboard, ${ms.length} clicks (ms): ${ms.join(", ")}`);
console.log(
  `median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted.at(-1)} ms ` +
    `(the page make storefront links polls every 250 ms on top: /?refresh=250)`,
);
