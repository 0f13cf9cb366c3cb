// POST /v1/collect against a real database through the collector's app: public keys and
// origins, enrichment, the contract's checks, retries as duplicates, limits, bots; and the
// deno task sites CLI.
import { assert, assertEquals } from "../testing/assert.ts";
import { loadConfig } from "../common/config.ts";
import { connect } from "../common/db.ts";
import { logger } from "../common/log.ts";
import { type TestDb, testDb } from "../testing/testdb.ts";
import { createApp } from "../collector/app.ts";
import { correctedTime } from "./mod.ts";

const SHOP = "https://shop.example";
const IPHONE =
  "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
const HEADLESS =
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36";

Deno.test("correctedTime: trusts a clock within 30 s, moves a skewed one by whole minutes", () => {
  const t = "2026-12-01T10:00:00.000Z";
  const sent = Date.parse("2026-12-01T10:00:05.000Z");
  // 20 s of transit and skew: as sent
  assertEquals(correctedTime(t, sent, sent + 20_000), t);
  // the browser's clock is 2 h 10 s fast: moved back 2 h, as it is for a retry 300 ms slower
  assertEquals(correctedTime(t, sent, sent - 7_210_000), "2026-12-01T08:00:00.000Z");
  assertEquals(correctedTime(t, sent, sent - 7_209_700), "2026-12-01T08:00:00.000Z");
  // unusable times are left to the contract's checks
  assertEquals(correctedTime("yesterday", sent, sent - 7_210_000), "yesterday");
  assertEquals(correctedTime(t, NaN, sent), t);
});

interface Setup {
  db: TestDb;
  key: string;
  fetch(req: Request, ip?: string): Promise<Response>;
  metrics(): Promise<string>;
  close(): Promise<void>;
}

async function setup(label: string, vars: Record<string, string> = {}): Promise<Setup> {
  const db = await testDb(label);
  const [{ key }] = await db.sql`
    select ingest.add_site_key('shop', array[${SHOP}, 'http://127.0.0.1:9'], 6000) as key`;
  const dir = await Deno.makeTempDir({ prefix: "collect_test_" });
  const cfg = loadConfig({
    DATABASE_URL: db.url,
    API_KEYS: "secret-key",
    READ_KEYS: "read-key",
    DEAD_LETTER_KEYS: "dead-letter-key",
    DATA_DIR: dir,
    LOG_DIR: `${dir}/logs`,
    HTTP_ANALYTICS: "inline",
    ...vars,
  });
  const ingest = connect({ url: db.url, role: "pipeline_ingest", max: 2 });
  const analyst = connect({ url: db.url, role: "pipeline_analyst", max: 1 });
  const log = logger("collect", { level: "error", dir: `${dir}/logs`, quiet: true });
  const app = createApp({ cfg, ingest, analyst, log });
  return {
    db,
    key,
    fetch: (req, ip = "203.0.113.7") =>
      app.fetch(req, {
        remoteAddr: { transport: "tcp", hostname: ip, port: 5555 },
        completed: Promise.resolve(),
      }),
    metrics: async () => await (await app.fetch(new Request("http://c/metrics"))).text(),
    async close() {
      await app.drain(2000);
      await Promise.all([ingest.end({ timeout: 2 }), analyst.end({ timeout: 2 })]);
      await db.drop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function collect(
  key: string,
  body: unknown,
  headers: Record<string, string> = {},
): Request {
  return new Request(`http://collector/v1/collect?key=${key}`, {
    method: "POST",
    headers: { origin: SHOP, "user-agent": IPHONE, "content-type": "text/plain", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

const id = (n: number) => `0190d000-0000-7000-8000-${String(n).padStart(12, "0")}`;
const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();

Deno.test("POST /v1/collect: enriched rows in core.events, invalid ones dead-lettered with their reasons", async () => {
  const s = await setup("collect_enrich");
  try {
    const landing = `${SHOP}/?utm_source=newsletter&utm_medium=email&utm_campaign=week49`;
    const sentAt = minutesAgo(0);
    const r = await s.fetch(collect(s.key, {
      sent_at: sentAt,
      events: [
        {
          event_id: id(1),
          event_time: minutesAgo(2),
          event_type: "view",
          session_id: "s-1",
          anonymous_id: "a-1",
          product_id: 42,
          category: "books",
          landing_url: landing,
          // the browser's device and source claims are not read: the server decides them
          device: "tablet",
          traffic_source: "ads",
        },
        {
          event_id: id(2),
          event_time: minutesAgo(1),
          event_type: "purchase",
          session_id: "s-1",
          anonymous_id: "a-1",
          user_id: "4242",
          product_id: 42,
          category: "books",
          price: "12.50",
          quantity: 2,
          currency: "EUR",
          payment_method: "paypal",
          landing_url: landing,
        },
        // a guest cannot buy, and a price with three decimals is not one
        {
          event_id: id(3),
          event_time: minutesAgo(1),
          event_type: "purchase",
          session_id: "s-1",
          product_id: 42,
          category: "books",
          price: "1.005",
          quantity: 1,
          landing_url: landing,
        },
        {
          event_id: id(4),
          event_time: minutesAgo(1),
          event_type: "search",
          session_id: "s-2",
          anonymous_id: "a-2",
          search_query: 'cast "iron",\nskillet',
          referrer: "https://www.google.de/",
          landing_url: `${SHOP}/`,
        },
      ],
    }));
    assertEquals(r.status, 200);
    assertEquals(r.headers.get("access-control-allow-origin"), SHOP);
    const body = await r.json();
    assertEquals(body.accepted, 3);
    assertEquals(body.invalid_events, [{
      index: 2,
      reasons: ["missing_user_id", "invalid_price"],
    }]);
    const rows = await s.db.sql`
      select event_id::text, event_type, user_id::text, session_id, device, traffic_source,
             currency, payment_method, search_query, price::text, quantity, extra
      from core.events order by event_id`;
    assertEquals(rows.map((r) => ({ ...r })), [
      {
        event_id: id(1),
        event_type: "view",
        user_id: null,
        session_id: "s-1",
        device: "mobile",
        traffic_source: "email",
        currency: "USD",
        payment_method: null,
        search_query: null,
        price: null,
        quantity: 1,
        extra: { anonymous_id: "a-1", utm_campaign: "week49" },
      },
      {
        event_id: id(2),
        event_type: "purchase",
        user_id: "4242",
        session_id: "s-1",
        device: "mobile",
        traffic_source: "email",
        currency: "EUR",
        payment_method: "paypal",
        search_query: null,
        price: "12.50",
        quantity: 2,
        extra: { anonymous_id: "a-1", utm_campaign: "week49" },
      },
      {
        event_id: id(4),
        event_type: "search",
        user_id: null,
        session_id: "s-2",
        device: "mobile",
        traffic_source: "search",
        currency: "USD",
        payment_method: null,
        search_query: 'cast "iron",\nskillet',
        price: null,
        quantity: 1,
        extra: { anonymous_id: "a-2" },
      },
    ]);
    const [dl] = await s.db.sql`select reasons from quality.dead_letter`;
    assertEquals(dl.reasons, ["missing_user_id", "invalid_price"]);
    // the shopper's IP and the landing URL are stored nowhere
    const [{ n }] = await s.db.sql`
      select count(*)::int as n from core.events
      where extra::text like '%203.0.113%' or extra::text like '%utm_source%'`;
    assertEquals(n, 0);
  } finally {
    await s.close();
  }
});

Deno.test("POST /v1/collect: a batch sent again, from a skewed clock, is duplicates only", async () => {
  const s = await setup("collect_retry");
  try {
    // the browser's clock is 3 hours fast: its times are moved back by the offset of sent_at
    const skew = 3 * 3600_000;
    const fast = (ms: number) => new Date(ms + skew).toISOString();
    const now = Date.now();
    const events = [1, 2, 3].map((n) => ({
      event_id: id(n),
      event_time: fast(now - 60_000 * n),
      event_type: "view",
      session_id: "s",
      product_id: n,
      category: "toys",
    }));
    const first = await (await s.fetch(collect(s.key, { sent_at: fast(now), events }))).json();
    assertEquals([first.accepted, first.duplicates, first.invalid], [3, 0, 0]);
    // the retry leaves 1.4 s later, arrives with another transit time
    const again = await (await s.fetch(collect(s.key, { sent_at: fast(now + 1400), events })))
      .json();
    assertEquals([again.accepted, again.duplicates, again.invalid], [0, 3, 0]);
    const rows = await s.db.sql`select event_time from core.events order by event_id`;
    for (const [i, r] of rows.entries()) {
      const offBy = Math.abs((r.event_time as Date).getTime() - (now - 60_000 * (i + 1)));
      assert(offBy < 30_000, `event ${i} corrected to within 30 s (off by ${offBy} ms)`);
    }
    const [{ dead }] = await s.db.sql`select count(*)::int as dead from quality.dead_letter`;
    assertEquals(dead, 0);
  } finally {
    await s.close();
  }
});

Deno.test("POST /v1/collect: keys, origins, CORS preflight; a public key reads nothing", async () => {
  const s = await setup("collect_cors");
  try {
    const pre = (key: string, origin: string) =>
      s.fetch(
        new Request(`http://collector/v1/collect?key=${key}`, {
          method: "OPTIONS",
          headers: { origin, "access-control-request-method": "POST" },
        }),
      );
    const ok = await pre(s.key, SHOP);
    assertEquals(ok.status, 204);
    assertEquals(ok.headers.get("access-control-allow-origin"), SHOP);
    assertEquals(ok.headers.get("access-control-allow-methods"), "POST");
    const other = await pre(s.key, "https://evil.example");
    assertEquals(other.status, 403);
    assertEquals(other.headers.get("access-control-allow-origin"), null);
    await other.body?.cancel();

    const batch = { sent_at: minutesAgo(0), events: [] };
    const refused = async (req: Request) => {
      const r = await s.fetch(req);
      return [r.status, r.headers.get("access-control-allow-origin"), (await r.json()).error];
    };
    assertEquals(await refused(collect(s.key, batch, { origin: "https://evil.example" })), [
      403,
      null,
      'Origin "https://evil.example" is not allowed for site "shop": add it with deno task sites add, or use the key of its own site',
    ]);
    const noOrigin = collect(s.key, batch);
    noOrigin.headers.delete("origin");
    assertEquals((await refused(noOrigin))[0], 403);
    assertEquals((await refused(collect("pk_" + "0".repeat(32), batch)))[0], 401);
    assertEquals((await refused(collect("secret-key", batch)))[0], 401);

    // the public key on the secret-key and read endpoints
    const events = await s.fetch(
      new Request("http://collector/v1/events", {
        method: "POST",
        headers: { authorization: `Bearer ${s.key}`, "content-type": "text/csv" },
        body: "event_id\n",
      }),
    );
    assertEquals(events.status, 401);
    await events.body?.cancel();
    for (const path of ["/v1/analytics", "/v1/dashboard", "/v1/dead-letter"]) {
      const r = await s.fetch(
        new Request(`http://collector${path}`, { headers: { authorization: `Bearer ${s.key}` } }),
      );
      assertEquals([path, r.status], [path, 401]);
      await r.body?.cancel();
    }

    // revoked: gone from the keys the collector reads
    const [{ revoked }] = await s.db.sql`select ingest.revoke_site_key(${s.key}) as revoked`;
    assertEquals(revoked, true);
    await s.db.sql`set role pipeline_ingest`;
    const active = await s.db.sql`select site_key from ingest.active_site_keys()`;
    await s.db.sql`reset role`;
    assertEquals(active.length, 0);
  } finally {
    await s.close();
  }
});

Deno.test("POST /v1/collect: 413 and 429 with CORS headers, bots dropped and counted", async () => {
  const s = await setup("collect_limits", {
    BROWSER_MAX_BODY_BYTES: "2000",
    BROWSER_MAX_EVENTS: "5",
    BROWSER_IP_REQUESTS_PER_MINUTE: "4",
  });
  try {
    const ev = (n: number) => ({
      event_id: id(n),
      event_time: minutesAgo(0),
      event_type: "view",
      session_id: "s",
      product_id: 1,
      category: "toys",
    });
    const status = async (req: Request, ip?: string) => {
      const r = await s.fetch(req, ip);
      return [
        r.status,
        r.headers.get("access-control-allow-origin"),
        r.headers.get("retry-after"),
        (await r.json()).error ?? "",
        r.headers.get("access-control-expose-headers"),
      ];
    };
    const big = await status(collect(s.key, { sent_at: "", events: [], pad: "x".repeat(3000) }));
    assertEquals(big.slice(0, 2), [413, SHOP]);
    assertEquals(
      (await status(collect(s.key, { events: [1, 2, 3, 4, 5, 6].map(ev) })))[3],
      "6 events in one request, at most 5 (BROWSER_MAX_EVENTS): split the batch",
    );
    // that was the second request from 203.0.113.7; two more pass, the fifth is refused
    assertEquals((await status(collect(s.key, { events: [ev(1)] })))[0], 200);
    assertEquals((await status(collect(s.key, { events: [ev(2)] })))[0], 200);
    const limited = await status(collect(s.key, { events: [ev(3)] }));
    assertEquals(limited.slice(0, 2), [429, SHOP]);
    assert(Number(limited[2]) >= 1, "Retry-After in seconds");
    // and the tracker may read it across origins
    assertEquals(limited[4], "Retry-After");
    // another address is not limited by it
    assertEquals((await status(collect(s.key, { events: [ev(3)] }), "198.51.100.1"))[0], 200);

    // the key's own limit: 5 events a minute
    const [{ small }] = await s.db.sql`
      select ingest.add_site_key('tiny', array[${SHOP}], 5) as small`;
    // an unknown key reloads the keys at most once a second
    await new Promise((r) => setTimeout(r, 1100));
    assertEquals(
      (await status(collect(small, { events: [4, 5, 6].map(ev) }), "198.51.100.2"))[0],
      200,
    );
    const over = await status(collect(small, { events: [7, 8, 9].map(ev) }), "198.51.100.3");
    assertEquals(over.slice(0, 2), [429, SHOP]);
    assertEquals(
      over[3],
      `Site "tiny" is over its limit of 5 events a minute: retry after ${over[2]} s`,
    );

    // a crawler's batch: dropped, counted, nothing stored
    const bot = await s.fetch(
      collect(s.key, { events: [10, 11].map(ev) }, { "user-agent": HEADLESS }),
      "198.51.100.4",
    );
    assertEquals([bot.status, await bot.json()], [202, { accepted: 0, dropped_bot: 2 }]);
    const [{ n }] = await s.db.sql`select count(*)::int as n from core.events`;
    assertEquals(n, 6);
    const m = await s.metrics();
    assert(m.includes('pipeline_browser_events_total{outcome="bot"} 2'), "bots counted");
    assert(
      m.includes('pipeline_browser_events_total{outcome="rate_limited"} 3'),
      "limited counted",
    );
    assert(m.includes('pipeline_browser_events_total{outcome="received"} 6'), "received counted");
  } finally {
    await s.close();
  }
});

Deno.test("POST /v1/collect: X-Forwarded-For is the client only with BROWSER_TRUST_PROXY=1", async () => {
  for (const trust of ["0", "1"]) {
    const s = await setup(`collect_proxy_${trust}`, {
      BROWSER_IP_REQUESTS_PER_MINUTE: "1",
      BROWSER_TRUST_PROXY: trust,
    });
    try {
      const codes = [];
      for (const client of ["192.0.2.1", "192.0.2.2"]) {
        const r = await s.fetch(
          collect(s.key, { events: [] }, { "x-forwarded-for": `10.9.9.9, ${client}` }),
          "127.0.0.1",
        );
        codes.push(r.status);
        await r.body?.cancel();
      }
      // without trust both come from the proxy's address, which the limit stops at one
      assertEquals([trust, codes], [trust, trust === "1" ? [200, 200] : [200, 429]]);
    } finally {
      await s.close();
    }
  }
});

Deno.test("deno task sites: add, list, revoke; a bad origin is refused with the form expected", async () => {
  const db = await testDb("sites_cli");
  const run = async (...args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", new URL("../../sites.ts", import.meta.url).pathname, ...args],
      env: { DATABASE_URL: db.url },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = (b: Uint8Array) => new TextDecoder().decode(b).trim();
    return { code: out.code, out: text(out.stdout), err: text(out.stderr) };
  };
  try {
    const added = await run("add", "--site", "shop", "--origin", "HTTPS://Shop.Example/");
    assertEquals(added.code, 0);
    assert(/^pk_[0-9a-f]{32}$/.test(added.out), added.out);
    const list = await run("list", "--json");
    const [row] = JSON.parse(list.out);
    assertEquals([row.site_key, row.site, row.allowed_origins, row.events_per_minute], [
      added.out,
      "shop",
      ["https://shop.example"],
      6000,
    ]);
    const bad = await run("add", "--site", "shop", "--origin", "https://shop.example/checkout");
    assertEquals([bad.code, bad.err], [
      2,
      'error: origin "https://shop.example/checkout" is not scheme://host[:port] (e.g. https://shop.example or http://127.0.0.1:8081, no path)',
    ]);
    assertEquals((await run("revoke", added.out)).code, 0);
    assertEquals(
      (await run("revoke", added.out)).err,
      `error: no active key "${added.out}" (see deno task sites list)`,
    );
  } finally {
    await db.drop();
  }
});
