// The HTTP collector against a real PostgreSQL: the app function called directly, and
// scripts/serve.ts as a real process (listener on port 0, graceful shutdown, dashboard in
// headless Chromium when /usr/bin/chromium exists).
import { purchaseFields } from "./lib/testing/fixtures.ts";
import { assert, assertEquals } from "./lib/testing/assert.ts";
import { type Config, loadConfig } from "./lib/common/config.ts";
import { connect, type Sql } from "./lib/common/db.ts";
import { type App, createApp } from "./lib/collector/app.ts";
import { loadAssets } from "./lib/collector/dashboard.ts";
import { loadFile, settings } from "./lib/batch/mod.ts";
import { logger } from "./lib/common/log.ts";
import { type TestDb, testDb } from "./lib/testing/testdb.ts";

const KEY = "test-key-one";
const HEADER =
  "event_id,event_time,event_type,user_id,session_id,product_id,category,price,quantity\n";
const now = new Date();
const at = (minutesAgo: number) => new Date(now.getTime() - minutesAgo * 60_000).toISOString();
const id = (n: number) => `0190a000-0000-7000-8000-${String(n).padStart(12, "0")}`;
const enc = (s: string) => new TextEncoder().encode(s);
const VIEWS = [
  "daily_sales",
  "hourly_events",
  "category_performance",
  "product_performance",
  "funnel",
  "customer_rfm",
  "data_quality",
  "pipeline_health",
];

function fields(n: number, extra: Record<string, string> = {}): Record<string, string> {
  return purchaseFields(id(n), at(1), extra);
}

const row = (n: number, extra: Record<string, string> = {}) =>
  Object.values(fields(n, extra)).join(",") + "\n";

/** One NDJSON line; numeric fields as JSON numbers (their text must survive: 12.50). */
function obj(n: number, extra: Record<string, string> = {}): string {
  const f: Record<string, string> = fields(n, extra);
  const parts = Object.entries(f).map(([k, v]) =>
    `${JSON.stringify(k)}:${
      ["user_id", "product_id", "price", "quantity"].includes(k) && /^[\d.]+$/.test(v)
        ? v
        : JSON.stringify(v)
    }`
  );
  return `{${parts.join(",")}}\n`;
}

interface PostOptions {
  type?: string;
  key?: string | null;
  idem?: string;
  headers?: Record<string, string>;
}

function post(body: BodyInit, o: PostOptions = {}, base = "http://collector.test"): Request {
  const headers: Record<string, string> = { "content-type": o.type ?? "text/csv", ...o.headers };
  if (o.key !== null) headers.authorization = `Bearer ${o.key ?? KEY}`;
  if (o.idem) headers["idempotency-key"] = o.idem;
  return new Request(`${base}/v1/events`, { method: "POST", body, headers });
}

const get = (path: string) => new Request(`http://collector.test${path}`);

interface Env {
  db: TestDb;
  cfg: Config;
  app: App;
  dir: string;
  close(): Promise<void>;
}

async function setup(
  label: string,
  vars: Record<string, string> = {},
  opts: { url?: string } = {},
): Promise<Env> {
  const db = await testDb(label);
  const dir = await Deno.makeTempDir({ prefix: "serve_test_" });
  const cfg = loadConfig({
    DATABASE_URL: db.url,
    API_KEYS: `${KEY},test-key-two`,
    DATA_DIR: dir,
    LOG_DIR: `${dir}/logs`,
    ...vars,
  });
  const url = opts.url ?? db.url;
  const ingest = connect({
    url,
    role: "pipeline_ingest",
    max: cfg.MAX_CONCURRENT_BATCHES,
    connectTimeout: 2,
  });
  const analyst = connect({ url, role: "pipeline_analyst", max: 2, connectTimeout: 2 });
  const log = logger("serve", { level: "error", dir: `${dir}/logs`, quiet: true });
  const app = createApp({ cfg, ingest, analyst, log, assets: await loadAssets() });
  return {
    db,
    cfg,
    app,
    dir,
    async close() {
      await Promise.all([ingest.end({ timeout: 2 }), analyst.end({ timeout: 2 })]);
      await db.drop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function counts(sql: Sql) {
  const [c] = await sql`
    select (select count(*)::int from core.events) as events,
           (select count(*)::int from quality.dead_letter) as dead,
           (select count(*)::int from quality.batch_metrics) as batches`;
  return c;
}

/** `name{labels}` -> value of every sample in a Prometheus text exposition. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$/.exec(line);
    assert(m, `unparsable metrics line: ${line}`);
    out.set(m[1], m[2] === "+Inf" ? Infinity : Number(m[2]));
  }
  return out;
}

async function promtool(text: string): Promise<void> {
  let child;
  try {
    child = new Deno.Command("promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    console.log("note: promtool not installed (apt-get install prometheus): check skipped");
    return;
  }
  const writer = child.stdin.getWriter();
  await writer.write(enc(text));
  await writer.close();
  const out = await child.output();
  const said = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert(out.success && said.trim() === "", `promtool check metrics: ${said}`);
}

Deno.test("POST /v1/events: 401 without a valid key, 415 for other formats", async () => {
  const env = await setup("serve_auth");
  try {
    for (const key of [null, "wrong-key"]) {
      const res = await env.app.fetch(post(HEADER + row(1), { key }));
      assertEquals(res.status, 401);
      assert(res.headers.get("www-authenticate")?.startsWith('Bearer realm="events"'));
      assert((await res.json()).error.includes("API_KEYS"));
    }
    const basic = await env.app.fetch(post(HEADER + row(1), {
      key: null,
      headers: {
        authorization: "Basic dXNlcjpwYXNz",
      },
    }));
    assertEquals(basic.status, 401);
    await basic.body?.cancel();
    const xml = await env.app.fetch(post("<a/>", { type: "application/xml" }));
    assertEquals(xml.status, 415);
    assert((await xml.json()).error.includes("text/csv"));
    assertEquals(await counts(env.db.sql), { events: 0, dead: 0, batches: 0 });
    const ok = await env.app.fetch(post(HEADER + row(1), { key: "test-key-two" }));
    assertEquals(ok.status, 200);
    assertEquals((await ok.json()).accepted, 1);
  } finally {
    await env.close();
  }
});

Deno.test("POST /v1/events: 413 beyond MAX_BODY_BYTES, declared or streamed", async () => {
  const env = await setup("serve_413", { MAX_BODY_BYTES: "2000" });
  try {
    let body = HEADER;
    for (let n = 1; body.length <= 2000; n++) body += row(n);
    const declared = await env.app.fetch(post(body));
    assertEquals(declared.status, 413);
    assert((await declared.json()).error.includes("MAX_BODY_BYTES"));
    // no Content-Length: counted while streaming
    const chunks = [enc(HEADER), enc(body.slice(HEADER.length, 1500)), enc(body.slice(1500))];
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        const next = chunks.shift();
        if (next) c.enqueue(next);
        else c.close();
      },
    });
    const streamed = await env.app.fetch(post(stream));
    assertEquals(streamed.status, 413);
    await streamed.body?.cancel();
    assertEquals(await counts(env.db.sql), { events: 0, dead: 0, batches: 0 });
    const fits = await env.app.fetch(post(HEADER + row(1)));
    assertEquals(fits.status, 200);
    await fits.body?.cancel();
  } finally {
    await env.close();
  }
});

Deno.test("POST /v1/events: unusable bodies get 400 saying what is wrong", async () => {
  const env = await setup("serve_400");
  try {
    const noHeader = await env.app.fetch(post(row(1) + row(2)));
    assertEquals(noHeader.status, 400);
    const nh = await noHeader.json();
    assert(
      nh.error.startsWith("The header line is unusable (missing required column(s)"),
      nh.error,
    );
    assert(nh.reason.startsWith("missing required column(s)"));

    const badJson = await env.app.fetch(
      post(obj(1) + "\n" + '{"event_id": "x",\n', { type: "application/x-ndjson" }),
    );
    assertEquals(badJson.status, 400);
    const bj = await badJson.json();
    assertEquals(bj.line, 3);
    assert(bj.error.startsWith("Line 3 is not valid JSON"), bj.error);

    const array = await env.app.fetch(post("[1,2]\n", { type: "application/x-ndjson" }));
    assertEquals((await array.json()).error.split(":")[0], "Line 1 is an array, not a JSON object");

    const fewFields = await env.app.fetch(
      post('{"event_id":"x"}\n', { type: "application/x-ndjson; charset=utf-8" }),
    );
    assertEquals(fewFields.status, 400);
    assert((await fewFields.json()).error.startsWith("The objects lack required fields"));

    for (
      const [body, type] of [["", "text/csv"], ["\n\n", "text/csv"], ["\n", "application/x-ndjson"]]
    ) {
      const res = await env.app.fetch(post(body, { type }));
      assertEquals(res.status, 400, JSON.stringify(body));
      assert((await res.json()).error.includes("send"));
    }
    const badKey = await env.app.fetch(post(HEADER + row(1), { idem: "a b" }));
    assertEquals(badKey.status, 400);
    await badKey.body?.cancel();
    assertEquals(await counts(env.db.sql), { events: 0, dead: 0, batches: 0 });
  } finally {
    await env.close();
  }
});

Deno.test("POST /v1/events: a series of CSV and NDJSON batches gives exact counts", async () => {
  const env = await setup("serve_counts");
  try {
    const inbox = `${env.dir}/incoming`;
    await Deno.mkdir(inbox, { recursive: true });
    for (const name of ["waiting.csv", "half.csv.tmp", ".hidden.csv"]) {
      await Deno.writeTextFile(`${inbox}/${name}`, HEADER);
    }
    const a = await env.app.fetch(post(
      HEADER + row(1) + row(2) + row(1) + row(3, { price: "-1" }) + "1,2,3\n" +
        row(4, { event_time: at(60) }),
    ));
    assertEquals(a.status, 200);
    const ra = await a.json();
    assert(Number.isInteger(ra.batch_id));
    assertEquals({ ...ra, batch_id: 0 }, {
      batch_id: 0,
      rows: 6,
      accepted: 3,
      duplicates: 1,
      invalid: 2,
      late: 1,
      validity_rate: 0.6,
      schema_version: 2,
      unknown_columns: [],
      invalid_rows: [
        { line: 5, reasons: ["negative_price"] },
        { line: 6, reasons: ["malformed_row"] },
      ],
      invalid_rows_truncated: false,
    });

    const b = await env.app.fetch(post(
      obj(2) + obj(5) + "\n" + obj(2, { price: "99.00" }) + obj(6, { event_type: "teleport" }) +
        obj(7, { colour: "red" }),
      { type: "application/x-ndjson" },
    ));
    assertEquals(b.status, 200);
    const rb = await b.json();
    assertEquals(
      [rb.rows, rb.accepted, rb.duplicates, rb.invalid, rb.unknown_columns, rb.invalid_rows],
      [5, 2, 1, 2, ["colour"], [
        { line: 4, reasons: ["conflicting_duplicate"] },
        { line: 5, reasons: ["invalid_event_type"] },
      ]],
    );
    // a rejected header adds nothing
    const c = await env.app.fetch(post("event_id,price\n" + id(9) + ",1\n"));
    assertEquals(c.status, 400);
    await c.body?.cancel();

    assertEquals(await counts(env.db.sql), { events: 5, dead: 4, batches: 2 });
    const [sums] = await env.db.sql`
      select sum(rows)::int as rows, sum(valid)::int as valid, sum(invalid)::int as invalid,
             sum(duplicates)::int as duplicates, array_agg(distinct source_kind) as kinds,
             bool_and(source_name ~ '^http:[0-9a-f-]{36}$') as named
      from quality.batch_metrics`;
    assertEquals(sums, {
      rows: 11,
      valid: 5,
      invalid: 4,
      duplicates: 2,
      kinds: ["http"],
      named: true,
    });
    const [ev] = await env.db.sql`
      select sum(total_amount)::text as revenue, count(*) filter (where is_late)::int as late
      from core.events`;
    assertEquals(ev, { revenue: "125.00", late: 1 });

    // a file through the same database, for the ledger figures
    const file = `${env.dir}/one.csv`;
    await Deno.writeTextFile(file, HEADER + row(100));
    assertEquals((await loadFile(env.db.sql, file, settings(env.cfg))).outcome, "loaded");

    // HTTP_ANALYTICS=deferred (the default): the HTTP batches' events wait in a queue until a
    // round adds them to the rollups; so far only the file's revenue is counted
    const revenue = async () =>
      Number(
        (await env.db.sql`select coalesce(sum(revenue), 0) as r from analytics.rollup_daily`)[0].r,
      );
    assertEquals(await revenue(), 25);
    const applied = await env.app.deferred!.flush();
    assertEquals([applied.batches, applied.events], [2, 5]);
    assertEquals(await revenue(), 150);
    const again = await env.app.deferred!.flush(); // nothing is applied twice
    assertEquals([again.batches, again.events, again.oldestQueuedAt], [0, 0, null]);

    // /metrics: this process's counters, database totals, files, inbox; promtool agrees
    const m = await env.app.fetch(get("/metrics"));
    assertEquals(m.status, 200);
    assertEquals(m.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    const text = await m.text();
    const s = parseMetrics(text);
    const expect: Record<string, number> = {
      'pipeline_http_rows_total{outcome="valid"}': 5,
      'pipeline_http_rows_total{outcome="invalid"}': 4,
      'pipeline_http_rows_total{outcome="duplicate"}': 2,
      "pipeline_http_batches_total": 2,
      "pipeline_http_batch_duration_seconds_count": 2,
      'pipeline_http_batch_duration_seconds_bucket{le="+Inf"}': 2,
      "pipeline_http_last_validity_ratio": 0.5,
      'pipeline_database_rows{outcome="valid"}': 6,
      'pipeline_database_rows{outcome="invalid"}': 4,
      'pipeline_database_rows{outcome="duplicate"}': 2,
      "pipeline_database_batches": 3,
      "pipeline_database_up": 1,
      'pipeline_files{status="done"}': 1,
      'pipeline_files{status="rejected"}': 0,
      "pipeline_last_batch_validity_ratio": 1,
      "pipeline_inbox_files": 1,
      "pipeline_http_batches_in_flight": 0,
      'pipeline_http_requests_total{route="/v1/events",status="200"}': 2,
      'pipeline_http_requests_total{route="/v1/events",status="400"}': 1,
      'pipeline_http_request_duration_seconds_count{route="/v1/events"}': 3,
      "pipeline_analytics_deferred_events_total": 5,
    };
    for (const [k, v] of Object.entries(expect)) assertEquals(s.get(k), v, k);
    assert(s.get("pipeline_last_batch_age_seconds")! >= 0);
    for (const type of ["counter", "gauge", "histogram"]) {
      assert(text.includes(` ${type}\n`), type);
    }
    await promtool(text);

    const h = await env.app.fetch(get("/health"));
    assertEquals(h.status, 200);
    const health = await h.json();
    assertEquals([health.status, health.database], ["ok", "reachable"]);
    assertEquals([health.last_batch.source_kind, health.last_batch.rows], ["file", 1]);
    assert(health.last_batch.age_seconds >= 0 && health.last_batch.age_seconds < 60);

    const d = await env.app.fetch(get("/v1/dashboard"));
    assertEquals(d.status, 200);
    const dash = await d.json();
    assertEquals(
      dash.events_per_minute.reduce((n: number, r: { events: number }) => n + r.events, 0),
      5, // row(4) is an hour old, row(100) a minute: 5 of the 6 fall in the last hour
    );
    assertEquals(dash.validity.map((v: { validity_rate: number }) => v.validity_rate), [
      0.6,
      0.5,
      1,
    ]);
    assertEquals(dash.dead_letter_reasons, [
      { reason: "conflicting_duplicate", rows: 1 },
      { reason: "invalid_event_type", rows: 1 },
      { reason: "malformed_row", rows: 1 },
      { reason: "negative_price", rows: 1 },
    ]);
    assertEquals([dash.health.inbox_files, dash.health.files], [1, { done: 1 }]);
    // from the analytics views (db/views)
    assertEquals(dash.views_missing, []);
    assertEquals(
      dash.revenue_per_hour.reduce((n: number, r: { revenue: number }) => n + r.revenue, 0),
      150,
    );
    assertEquals(dash.top_categories, [{ category: "books", revenue: 150, orders: 6 }]);
    assertEquals(dash.reporting_currency, "USD");
    assertEquals(
      dash.funnel.steps.map((s: { step: string }) => s.step),
      ["view_sessions", "add_to_cart_sessions", "purchase_sessions"],
    );
    assertEquals(dash.funnel.steps[2].sessions, 1);
    assertEquals(dash.health.pipeline_health.last_batch_kind, "file");
  } finally {
    await env.close();
  }
});

Deno.test("POST /v1/events: Idempotency-Key replays the first response, once, even concurrently", async () => {
  const env = await setup("serve_idem");
  try {
    const body = HEADER + row(1) + row(2, { price: "-5" });
    const first = await env.app.fetch(post(body, { idem: "key-1" }));
    const firstText = await first.text();
    assertEquals(first.status, 200);
    assertEquals(first.headers.get("idempotent-replayed"), null);
    const again = await env.app.fetch(post(body, { idem: "key-1" }));
    assertEquals([again.status, await again.text()], [200, firstText]);
    assertEquals(again.headers.get("idempotent-replayed"), "true");
    assertEquals(await counts(env.db.sql), { events: 1, dead: 1, batches: 1 });

    // same key, other body: refused, nothing stored
    const other = await env.app.fetch(post(HEADER + row(3), { idem: "key-1" }));
    assertEquals(other.status, 422);
    await other.body?.cancel();
    // the other API key has its own key space
    const otherClient = await env.app.fetch(
      post(HEADER + row(3), { idem: "key-1", key: "test-key-two" }),
    );
    assertEquals(otherClient.status, 200);
    await otherClient.body?.cancel();
    assertEquals(await counts(env.db.sql), { events: 2, dead: 1, batches: 2 });

    // a rejected header is remembered too
    const bad = await env.app.fetch(post("event_id\n1\n", { idem: "key-2" }));
    const badAgain = await env.app.fetch(post("event_id\n1\n", { idem: "key-2" }));
    assertEquals([bad.status, badAgain.status], [400, 400]);
    assertEquals(await bad.text(), await badAgain.text());

    // two at once with a fresh key: one batch, both answers identical
    const body3 = HEADER + row(10) + row(11) + row(12);
    const [x, y] = await Promise.all([
      env.app.fetch(post(body3, { idem: "key-3" })),
      env.app.fetch(post(body3, { idem: "key-3" })),
    ]);
    assertEquals([x.status, y.status], [200, 200]);
    assertEquals(await x.text(), await y.text());
    assertEquals(
      [x.headers.get("idempotent-replayed"), y.headers.get("idempotent-replayed")].sort(),
      ["true", null].sort(),
    );
    assertEquals(await counts(env.db.sql), { events: 5, dead: 1, batches: 3 });
    const [{ n }] = await env.db.sql`select count(*)::int as n from ingest.http_idempotency`;
    assertEquals(n, 4);

    // the key's record and the batch commit together: a failure after the load leaves neither
    await env.db.sql`revoke execute on function ingest.http_store(text, text, int, text, bigint)
      from pipeline_ingest`;
    const body4 = HEADER + row(20);
    const failed = await env.app.fetch(post(body4, { idem: "key-4" }));
    assertEquals(failed.status, 500);
    await failed.body?.cancel();
    assertEquals(await counts(env.db.sql), { events: 5, dead: 1, batches: 3 });
    await env.db.sql`grant execute on function ingest.http_store(text, text, int, text, bigint)
      to pipeline_ingest`;
    const retried = await env.app.fetch(post(body4, { idem: "key-4" }));
    assertEquals([retried.status, retried.headers.get("idempotent-replayed")], [200, null]);
    assertEquals((await retried.json()).accepted, 1);
    assertEquals(await counts(env.db.sql), { events: 6, dead: 1, batches: 4 });
  } finally {
    await env.close();
  }
});

Deno.test("POST /v1/events: 503 with Retry-After beyond MAX_CONCURRENT_BATCHES, not a queue", async () => {
  const env = await setup("serve_busy", { MAX_CONCURRENT_BATCHES: "1" });
  try {
    let feed!: ReadableStreamDefaultController<Uint8Array>;
    const stream = new ReadableStream<Uint8Array>({ start: (c) => void (feed = c) });
    feed.enqueue(enc(HEADER + row(1)));
    const slow = env.app.fetch(post(stream));
    for (let i = 0; env.app.limiter.inFlight < 1; i++) {
      assert(i < 200, "the slow request never took its slot");
      await new Promise((r) => setTimeout(r, 10));
    }
    const started = performance.now();
    const busy = await env.app.fetch(post(HEADER + row(2)));
    assert(performance.now() - started < 1000, "the second request waited");
    assertEquals(busy.status, 503);
    assertEquals(busy.headers.get("retry-after"), "1");
    assert((await busy.json()).error.includes("MAX_CONCURRENT_BATCHES"));
    // reads are not limited by batch slots
    const health = await env.app.fetch(get("/health"));
    assertEquals([health.status, (await health.json()).batches_in_flight], [200, 1]);

    feed.enqueue(enc(row(3)));
    feed.close();
    const done = await slow;
    assertEquals([done.status, (await done.json()).accepted], [200, 2]);
    assertEquals(env.app.limiter.inFlight, 0);
    const after = await env.app.fetch(post(HEADER + row(2)));
    assertEquals(after.status, 200);
    await after.body?.cancel();
    assertEquals(await counts(env.db.sql), { events: 3, dead: 0, batches: 2 });
  } finally {
    await env.close();
  }
});

Deno.test("database down: POST and /health answer 503 with Retry-After, /metrics still 200", async () => {
  const env = await setup("serve_down", {}, {
    url: "postgres://postgres:postgres@127.0.0.1:1/nowhere",
  });
  try {
    const res = await env.app.fetch(post(HEADER + row(1), { idem: "k" }));
    assertEquals(res.status, 503);
    assertEquals(res.headers.get("retry-after"), "5");
    assert((await res.json()).error.includes("retry later"));
    const health = await env.app.fetch(get("/health"));
    assertEquals(health.status, 503);
    assertEquals((await health.json()).database, "unreachable");
    const dash = await env.app.fetch(get("/v1/dashboard"));
    assertEquals(dash.status, 503);
    await dash.body?.cancel();
    const m = await env.app.fetch(get("/metrics"));
    assertEquals(m.status, 200);
    const text = await m.text();
    assertEquals(parseMetrics(text).get("pipeline_database_up"), 0);
    assertEquals(parseMetrics(text).has('pipeline_database_rows{outcome="valid"}'), false);
    await promtool(text);
  } finally {
    await env.close();
  }
});

Deno.test("GET /v1/analytics/<view>: rows, limit, equality filters, 404 and 400", async () => {
  const env = await setup("serve_analytics");
  try {
    await env.db.sql.begin(async (tx) => {
      await tx`set local role pipeline_owner`;
      await tx`
        create view analytics.zz_test_view as
        select * from (values
          (1, 'books'::text, 12.50::numeric, '2026-11-21'::date),
          (2, 'toys', null, '2026-11-22'),
          (3, 'books', 3, '2026-11-22')
        ) as t (id, category, revenue, day)`;
      await tx`grant select on analytics.zz_test_view to pipeline_analyst`;
    });
    const list = await (await env.app.fetch(get("/v1/analytics"))).json();
    const names = list.views.map((v: { name: string }) => v.name);
    assert(names.includes("zz_test_view"));

    const all = await env.app.fetch(get("/v1/analytics/zz_test_view"));
    assertEquals(all.status, 200);
    const body = await all.json();
    assertEquals([body.view, body.limit, body.count], ["zz_test_view", 100, 3]);
    assertEquals(body.rows[0], { id: 1, category: "books", revenue: 12.5, day: "2026-11-21" });

    const rows = async (q: string) =>
      (await (await env.app.fetch(get(`/v1/analytics/zz_test_view?${q}`))).json()).rows
        .map((r: { id: number }) => r.id);
    assertEquals(await rows("category=books"), [1, 3]);
    assertEquals(await rows("category=books&day=2026-11-22"), [3]);
    assertEquals(await rows("revenue="), [2]);
    assertEquals(await rows("revenue=12.5"), [1]);
    assertEquals(await rows("limit=1"), [1]);
    assertEquals(await rows("category=books';drop table x;--"), []);

    for (
      const [q, status, text] of [
        ["nope=1", 400, 'Unknown column "nope"'],
        ["limit=0", 400, "limit must be"],
        ["limit=10001", 400, "limit must be"],
        ["id=abc", 400, "does not fit"],
        ["category=a&category=b", 400, "given twice"],
      ] as const
    ) {
      const res = await env.app.fetch(get(`/v1/analytics/zz_test_view?${q}`));
      assertEquals(res.status, status, q);
      assert((await res.json()).error.includes(text), q);
    }
    for (const view of ["missing", "pg_class", "zz_test_view%3Bdrop", "ZZ_TEST_VIEW", "%E0%A4%A"]) {
      const res = await env.app.fetch(get(`/v1/analytics/${view}`));
      assertEquals(res.status, 404, view);
      assert((await res.json()).views.includes("zz_test_view"));
    }
    // every contract view is listed and answers
    for (const view of VIEWS) {
      assert(names.includes(view), `analytics.${view} is missing`);
      const res = await env.app.fetch(get(`/v1/analytics/${view}?limit=5`));
      assertEquals(res.status, 200, view);
      assert(Array.isArray((await res.json()).rows), view);
    }
    const post405 = await env.app.fetch(
      new Request("http://collector.test/health", { method: "POST" }),
    );
    assertEquals([post405.status, post405.headers.get("allow")], [405, "GET"]);
    await post405.body?.cancel();
  } finally {
    await env.close();
  }
});

// ---- scripts/serve.ts as a process -------------------------------------------------------

interface Server {
  base: string;
  child: Deno.ChildProcess;
  log: string[];
}

async function startServer(env: Record<string, string>): Promise<Server> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      new URL("./serve.ts", import.meta.url).pathname,
      "--port",
      "0",
      "--hostname",
      "127.0.0.1",
    ],
    env,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const log: string[] = [];
  const lines = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const { done, value } = await lines.read();
    if (done) break;
    buffered += value;
    const m = /listening url=http:\/\/[^:]+:(\d+)\//.exec(buffered);
    if (m) {
      log.push(buffered);
      // keep draining stderr so the child never blocks on a full pipe
      (async () => {
        for (;;) {
          const { done, value } = await lines.read();
          if (done) return;
          log.push(value);
        }
      })();
      return { base: `http://127.0.0.1:${m[1]}`, child, log };
    }
  }
  child.kill("SIGKILL");
  await child.status;
  throw new Error(`serve.ts did not start: ${buffered}`);
}

Deno.test("serve.ts: real listener, streamed 413, graceful shutdown, dashboard in Chromium", async () => {
  const db = await testDb("serve_process");
  const dir = await Deno.makeTempDir({ prefix: "serve_test_" });
  const server = await startServer({
    ...Deno.env.toObject(),
    DATABASE_URL: db.url,
    API_KEYS: KEY,
    DATA_DIR: dir,
    LOG_DIR: `${dir}/logs`,
    MAX_BODY_BYTES: "100000",
  });
  let exited = false;
  try {
    const { base } = server;
    const ok = await fetch(post(
      HEADER + row(1) + row(2, { event_type: "view" }) + row(3, {
        price: "abc",
      }) + row(4, { event_type: "add_to_cart" }),
      {},
      base,
    ));
    assertEquals(ok.status, 200);
    assertEquals((await ok.json()).accepted, 3);
    // the background rounds (HTTP_ANALYTICS=deferred) add the queued events to the rollups
    const rolledUp = async () =>
      Number((await db.sql`select coalesce(sum(events), 0) as n from analytics.rollup_daily`)[0].n);
    await until(async () => await rolledUp() === 3);

    // a chunked body with no Content-Length is cut off at the limit, over the network too
    const big = enc(HEADER + row(5).repeat(3000));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent >= big.length) return c.close();
        c.enqueue(big.subarray(sent, sent + 16_384));
        sent += 16_384;
      },
    });
    const tooBig = await fetch(post(stream, {}, base));
    assertEquals(tooBig.status, 413);
    await tooBig.body?.cancel();

    const health = await fetch(`${base}/health`);
    assertEquals(health.status, 200);
    await health.body?.cancel();

    await browserCheck(base, db);

    // SIGTERM with a batch in flight: it completes, then the process exits 0
    let feed!: ReadableStreamDefaultController<Uint8Array>;
    const slowBody = new ReadableStream<Uint8Array>({ start: (c) => void (feed = c) });
    feed.enqueue(enc(HEADER + row(20)));
    const slow = fetch(post(slowBody, {}, base));
    await until(async () => (await (await fetch(`${base}/health`)).json()).batches_in_flight === 1);
    server.child.kill("SIGTERM");
    let draining!: Response;
    await until(async () => {
      draining = await fetch(`${base}/health`);
      await draining.body?.cancel();
      return draining.status === 503;
    });
    assertEquals(draining.headers.get("retry-after"), "2");
    feed.enqueue(enc(row(21)));
    feed.close();
    const res = await slow;
    const answer = await res.text();
    assertEquals(res.status, 200, answer + server.log.join(""));
    assertEquals(JSON.parse(answer).accepted, 2);
    const status = await server.child.status;
    exited = true;
    assertEquals(status.code, 0, server.log.join(""));
    assert(server.log.join("").includes("stopped"));
    // the last round ran before the exit: nothing stays queued
    assertEquals(await rolledUp(), 5);
    const [queued] = await db.sql`
      select (select count(*)::int from ingest.deferred_batches) as batches,
          (select count(*)::int from ingest.deferred_events) as events`;
    assertEquals({ ...queued }, { batches: 0, events: 0 });
    const logs = await Array.fromAsync(Deno.readDir(`${dir}/logs`));
    const text = await Deno.readTextFile(`${dir}/logs/${logs[0].name}`);
    assert(!text.includes(KEY), "the API key reached the log");
  } finally {
    if (!exited) {
      server.child.kill("SIGKILL");
      await server.child.status;
    }
    await db.drop();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Polls `check` every 50 ms until it holds (at most 10 s). */
async function until(check: () => Promise<boolean>): Promise<void> {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("Condition not reached within 10 s");
}

const CHROMIUM = "/usr/bin/chromium";

async function browserCheck(base: string, db: TestDb) {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    console.log(
      `note: ${CHROMIUM} not found (apt-get install chromium): dashboard browser check skipped`,
    );
    return;
  }
  const { chromium } = await import("playwright-core");
  const profile = await Deno.makeTempDir({ prefix: "serve_test_chromium_" });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  try {
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    const res = await page.goto(`${base}/?refresh=1000`);
    assertEquals(res?.status(), 200);
    await page.waitForFunction(
      // deno-lint-ignore no-explicit-any
      () => Number((globalThis as any).document.body.dataset.refreshes ?? 0) >= 1,
      null,
      { timeout: 20_000 },
    );
    // revenue, funnel and categories read the analytics views (db/views)
    const [{ n }] = await db.sql`
      select count(*)::int as n from pg_class c join pg_namespace s on s.oid = c.relnamespace
      where s.nspname = 'analytics' and c.relname in ('hourly_trend', 'funnel', 'category_performance')`;
    assertEquals(n, 3, "analytics views missing");
    const charts = ["events", "revenue", "validity", "funnel", "categories", "reasons", "health"];
    const empty = await page.evaluate((ids: string[]) => {
      // deno-lint-ignore no-explicit-any
      const { Chart, document } = globalThis as any;
      return ids.filter((id) => {
        const c = Chart.getChart(document.getElementById(`chart-${id}`));
        return !c ||
          !c.data.datasets.some((d: { data: unknown[] }) =>
            d.data.some((v) => typeof v === "number" && v > 0)
          );
      });
    }, charts);
    assertEquals(empty, [], `charts without data: ${empty.join(", ")}`);
    assert(!(await page.textContent("#status"))?.startsWith("cannot refresh"));
    // every revenue figure says its currency
    assertEquals(await page.textContent("#currency-revenue"), "USD");
    assertEquals(await page.textContent("#currency-categories"), "USD");
    assert((await page.textContent("#note-revenue"))?.includes(" USD"));
    assertEquals(problems, []);
  } finally {
    await context.close();
    await Deno.remove(profile, { recursive: true });
  }
}
