// Group commit in the HTTP collector (GROUP_COMMIT_MS): concurrent POSTs share one batch, one
// validation pass and one transaction, and each is answered with its own counts and lines.
import { assert, assertEquals } from "./lib/testing/assert.ts";
import { loadConfig } from "./lib/common/config.ts";
import { connect } from "./lib/common/db.ts";
import { type App, createApp } from "./lib/collector/app.ts";
import { loadAssets } from "./lib/collector/dashboard.ts";
import { logger } from "./lib/common/log.ts";
import { purchaseFields } from "./lib/testing/fixtures.ts";
import { type TestDb, testDb } from "./lib/testing/testdb.ts";

const KEY = "group-key";
const HEADER =
  "event_id,event_time,event_type,user_id,session_id,product_id,category,price,quantity\n";
const t = new Date(Date.now() - 60_000).toISOString();
const id = (n: number) => `0190d000-0000-7000-8000-${String(n).padStart(12, "0")}`;
const row = (n: number, extra: Record<string, string> = {}) =>
  Object.values(purchaseFields(id(n), t, extra)).join(",") + "\n";
const obj = (n: number, extra: Record<string, string> = {}) =>
  JSON.stringify(purchaseFields(id(n), t, extra)) + "\n";

function post(body: string, o: { type?: string; idem?: string } = {}): Request {
  const headers: Record<string, string> = {
    "content-type": o.type ?? "text/csv",
    authorization: `Bearer ${KEY}`,
  };
  if (o.idem) headers["idempotency-key"] = o.idem;
  return new Request("http://collector.test/v1/events", { method: "POST", body, headers });
}

async function setup(label: string, windowMs: string): Promise<{
  db: TestDb;
  app: App;
  close(): Promise<void>;
}> {
  const db = await testDb(label);
  const dir = await Deno.makeTempDir({ prefix: "group_test_" });
  const cfg = loadConfig({
    DATABASE_URL: db.url,
    API_KEYS: KEY,
    DATA_DIR: dir,
    LOG_DIR: `${dir}/logs`,
    MAX_CONCURRENT_BATCHES: "16",
    GROUP_COMMIT_MS: windowMs,
  });
  const ingest = connect({ url: db.url, role: "pipeline_ingest", max: 16, connectTimeout: 2 });
  const analyst = connect({ url: db.url, role: "pipeline_analyst", max: 2, connectTimeout: 2 });
  const log = logger("serve", { level: "error", dir: `${dir}/logs`, quiet: true });
  const app = createApp({ cfg, ingest, analyst, log, assets: await loadAssets() });
  return {
    db,
    app,
    async close() {
      await Promise.all([ingest.end({ timeout: 2 }), analyst.end({ timeout: 2 })]);
      await db.drop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("concurrent POSTs share one transaction; each gets its own counts and lines", async () => {
  // a wide window, so that every request below lands in one group whatever the machine's load
  const env = await setup("group_commit", "200");
  try {
    // stored before the group: D re-sends it
    const before = await env.app.fetch(post(HEADER + row(100)));
    assertEquals(before.status, 200);
    await before.body?.cancel();

    const bodies: [string, string, { type?: string; idem?: string }][] = [
      ["A", HEADER + row(1) + row(2) + row(3), {}],
      ["B", HEADER + row(4) + row(5) + row(6, { price: "-5" }) + "broken,line\n", {}],
      ["C", obj(7) + obj(8, { event_type: "click" }), { type: "application/x-ndjson" }],
      ["D", HEADER + row(100) + row(9) + row(9), {}],
      ["E", HEADER + row(10) + `${id(11)},"${t},view\n` + row(12), {}],
      ["F", "event_id,event_time\n" + `${id(13)},${t}\n`, {}],
      ["G", HEADER + row(14) + row(100, { quantity: "7" }), { idem: "g-1" }],
    ];
    const responses = await Promise.all(bodies.map(([, b, o]) => env.app.fetch(post(b, o))));
    const out = new Map<string, { status: number; body: Record<string, unknown> }>();
    for (const [i, r] of responses.entries()) {
      out.set(bodies[i][0], { status: r.status, body: await r.json() });
    }
    const counts = (k: string) => {
      const b = out.get(k)!.body;
      return [
        out.get(k)!.status,
        b.rows,
        b.accepted,
        b.duplicates,
        b.invalid,
        b.invalid_rows,
      ];
    };
    assertEquals(counts("A"), [200, 3, 3, 0, 0, []]);
    assertEquals(counts("B"), [200, 4, 2, 0, 2, [
      { line: 4, reasons: ["negative_price"] },
      { line: 5, reasons: ["malformed_row"] },
    ]]);
    assertEquals(counts("C"), [200, 2, 1, 0, 1, [{ line: 2, reasons: ["invalid_event_type"] }]]);
    assertEquals(counts("D"), [200, 3, 1, 2, 0, []]);
    // the unterminated quote on line 3 swallows the rest of E, and nothing of its neighbours
    assertEquals(counts("E"), [200, 2, 1, 0, 1, [{ line: 3, reasons: ["malformed_row"] }]]);
    assertEquals(out.get("F")!.status, 400);
    // G: line 3 is the event stored before, with another quantity
    assertEquals(counts("G"), [200, 2, 1, 0, 1, [
      { line: 3, reasons: ["conflicting_duplicate"] },
    ]]);

    // A to E and G (one header line: C's NDJSON becomes the same CSV header) were one batch,
    // one metrics row for all their rows
    const ids = ["A", "B", "C", "D", "E", "G"].map((k) => out.get(k)!.body.batch_id);
    assert(ids.every((x) => x === ids[0]), `batch ids ${ids}`);
    const [m] = await env.db.sql`
      select rows::int, valid::int, duplicates::int, invalid::int
      from quality.batch_metrics where batch_id = ${ids[0] as number}`;
    assertEquals(m, { rows: 16, valid: 9, duplicates: 2, invalid: 5 });
    const [c] = await env.db.sql`
      select (select count(*)::int from core.events) as events,
             (select count(distinct event_id)::int from core.events) as ids,
             (select count(*)::int from quality.dead_letter) as dead`;
    // 1 before + A 3 + B 2 + C 1 + D 1 + E 1 + G 1
    assertEquals(c, { events: 10, ids: 10, dead: 2 + 1 + 1 + 1 });

    // G's key replays G's own answer
    const again = await env.app.fetch(post(bodies[6][1], { idem: "g-1" }));
    assertEquals(again.headers.get("idempotent-replayed"), "true");
    assertEquals(await again.json(), out.get("G")!.body);
  } finally {
    await env.close();
  }
});

Deno.test("a request that breaks its group's transaction fails alone", async () => {
  const env = await setup("group_isolation", "200");
  try {
    // keyed requests cannot store their answer: the group transaction fails, then every
    // request runs on its own: the unkeyed ones load, the keyed one fails alone
    await env.db.sql`revoke execute on function ingest.http_store(text, text, int, text, bigint)
      from pipeline_ingest`;
    const [a, b, c] = await Promise.all([
      env.app.fetch(post(HEADER + row(1))),
      env.app.fetch(post(HEADER + row(2) + row(3), { idem: "k" })),
      env.app.fetch(post(HEADER + row(4, { price: "x" }))),
    ]);
    assertEquals([a.status, b.status, c.status], [200, 500, 200]);
    const [ra, rc] = [await a.json(), await c.json()];
    await b.body?.cancel();
    assertEquals([ra.accepted, ra.invalid, rc.accepted, rc.invalid], [1, 0, 0, 1]);
    assert(ra.batch_id !== rc.batch_id, "ran on their own: separate batches");
    const [n] = await env.db.sql`
      select (select count(*)::int from core.events) as events,
             (select count(*)::int from quality.dead_letter) as dead,
             (select count(*)::int from quality.batch_metrics) as batches,
             (select count(*)::int from ingest.http_idempotency) as keys`;
    assertEquals(n, { events: 1, dead: 1, batches: 2, keys: 0 });
  } finally {
    await env.close();
  }
});

Deno.test("GROUP_COMMIT_MS=0: every POST is its own batch", async () => {
  const env = await setup("group_off", "0");
  try {
    const rs = await Promise.all([1, 2, 3].map((n) => env.app.fetch(post(HEADER + row(n)))));
    const ids = new Set<number>();
    for (const r of rs) ids.add((await r.json()).batch_id);
    assertEquals(ids.size, 3);
  } finally {
    await env.close();
  }
});
