// The schema registry (docs/schema-registry.md) against the real database: registering v3 and
// loading v1, v2 and v3 files together, incompatible registrations, unknown columns kept in
// extra (events, dead letter, replay, analyst view, metrics), v1 replay upgraded by the
// registry's rules, source pins.
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "../scripts/lib/testing/assert.ts";
import { loadConfig } from "../scripts/lib/common/config.ts";
import { connect, type Sql } from "../scripts/lib/common/db.ts";
import { logger } from "../scripts/lib/common/log.ts";
import { dirsFor, ensureDirs } from "../scripts/lib/common/inbox.ts";
import { bytesSource, loadFile, loadSource, settings } from "../scripts/lib/batch/mod.ts";
import {
  httpClientId,
  pinSource,
  readDefinition,
  registerVersion,
  setStatus,
} from "../scripts/lib/ingest/registry.ts";
import { createApp } from "../scripts/lib/collector/app.ts";
import { testDb } from "../scripts/lib/testing/testdb.ts";
import { generate, type Manifest } from "../scripts/lib/generator/generate.ts";
import { Ingester } from "../scripts/lib/ingest/ingester.ts";

const root = new URL("..", import.meta.url).pathname;
const V3_FILE = `${root}db/schemas/v3-coupon-code.json`;
const cfg = settings(loadConfig({}));
const enc = new TextEncoder();
const minuteAgo = () => new Date(Date.now() - 60_000).toISOString();
const id = (n: number) => `0190a000-0000-7000-8000-${n.toString(16).padStart(12, "0")}`;

function owner(url: string): Sql {
  return connect({ url, role: "pipeline_owner", max: 1 });
}

async function ingestDir(url: string, sql: Sql, inbox: string, logs: string) {
  const dirs = dirsFor(inbox);
  await ensureDirs(dirs);
  const ing = new Ingester({
    dirs,
    sql,
    cfg: loadConfig({ DATABASE_URL: url }),
    log: logger("registry-test", { level: "error", dir: logs, quiet: true }),
  });
  const s = await ing.drain();
  assertEquals([s.failed], [0]);
  return s.handled;
}

/** Every figure of the event analytics views (not the ingestion-time ones). */
async function analytics(sql: Sql) {
  const out: Record<string, unknown> = {};
  for (
    const view of [
      "daily_sales",
      "hourly_events",
      "category_performance",
      "product_performance",
      "funnel",
      "customer_rfm",
    ]
  ) {
    out[view] = await sql.unsafe(`select * from analytics.${view} order by 1, 2`);
  }
  // the events themselves, but for where they came from and what extra they carried
  const [{ digest }] = await sql`
    select md5(string_agg(concat_ws('|', event_id, event_time, event_type, user_id, session_id,
      product_id, category, price, quantity, currency, device, traffic_source, payment_method,
      search_query, encode(email_hash, 'hex'), is_late), ',' order by event_id)) as digest
    from core.events`;
  out.events = digest;
  return out;
}

Deno.test("registering v3 and loading v1, v2 and v3 files together: exact counts, same analytics", async () => {
  const a = await testDb("registry_v123");
  const b = await testDb("registry_v12");
  const base = await Deno.makeTempDir({ prefix: "registry-" });
  try {
    const own = owner(a.url);
    const row = await registerVersion(own, await readDefinition(V3_FILE));
    await own.end();
    assertEquals([row.version, row.columns.at(-1), row.required.length], [3, "coupon_code", 9]);

    const start = new Date(Date.now() - 3 * 600_000 - 120_000);
    const common = {
      events: 2000,
      intervalSeconds: 600,
      startTime: start,
      anomalyRate: 0.05,
      duplicateRate: 0.04,
      lateRate: 0.02,
      // coupons ride on purchases: a shop that sells more than the realistic default
      cartRate: 0.4,
      checkoutRate: 0.8,
    };
    const run = (dir: string, seed: number, schemaVersion: 1 | 2 | 3, files: number) =>
      generate({ ...common, files, seed, schemaVersion, outDir: join(base, dir) });
    const manifests: Manifest[] = [
      await run("a", 31, 1, 1),
      await run("a", 32, 2, 2),
      await run("a", 33, 3, 2),
    ];
    // database b gets the same events, the v3 run written as v2 (same seed: same events)
    await run("b", 31, 1, 1);
    await run("b", 32, 2, 2);
    const asV2 = await run("b", 33, 2, 2);

    assertEquals(await ingestDir(a.url, a.sql, join(base, "a"), join(base, "logs")), 5);
    assertEquals(await ingestDir(b.url, b.sql, join(base, "b"), join(base, "logs")), 5);

    const metrics = await a.sql`
      select m.source_name, m.rows, m.valid, m.duplicates, m.invalid, m.reason_counts,
        m.schema_version, m.unknown_columns, f.schema_version as ledger_version,
        (select count(*)::int from core.events as e
         where e.batch_id = m.batch_id and e.extra ? 'coupon_code') as coupons
      from quality.batch_metrics as m join ingest.files as f on f.batch_id = m.batch_id`;
    const byName = new Map(metrics.map((m) => [m.source_name as string, m]));
    let coupons = 0;
    for (const man of manifests) {
      for (const f of man.files) {
        const m = byName.get(f.name);
        assertEquals(
          m && [m.rows, m.valid, m.duplicates, m.invalid, m.reason_counts],
          [f.rows, f.valid, f.duplicates, f.invalid, f.reasons],
          f.name,
        );
        assertEquals(
          [m!.schema_version, m!.ledger_version, m!.unknown_columns],
          [man.schema_version, man.schema_version, []],
          f.name,
        );
        assertEquals(m!.coupons, f.extra_values?.coupon_code ?? 0, f.name);
        coupons += m!.coupons;
      }
    }
    assert(coupons > 50, `only ${coupons} coupons`);
    // the coupon codes are the generator's, and only purchases carry one
    const kinds = await a.sql`
      select extra ->> 'coupon_code' as code, event_type, count(*)::int as n
      from core.events where extra is not null group by 1, 2 order by 1, 2`;
    assertEquals(kinds.map((k) => [k.code, k.event_type]), [
      ["SAVE5", "purchase"],
      ["WELCOME10", "purchase"],
    ]);
    assertEquals(asV2.files.map((f) => f.valid), manifests[2].files.map((f) => f.valid));
    assertEquals(await analytics(a.sql), await analytics(b.sql));

    // the worked example's view (docs/schema-registry.md, step 3) runs as written
    const doc = await Deno.readTextFile(`${root}docs/schema-registry.md`);
    const view = /```sql\n\s*(-- db\/views\/120_coupon_usage\.sql[\s\S]*?)```/.exec(doc)?.[1];
    assert(view, "the worked example's view is missing from docs/schema-registry.md");
    const own2 = owner(a.url);
    await own2.unsafe(view.replace(/^ {3}/gm, ""));
    await own2.end();
    const analyst = connect({ url: a.url, role: "pipeline_analyst", max: 1 });
    const [usage] = await analyst`
      select sum(orders) filter (where coupon_code <> '(none)')::int as with_coupon,
        sum(orders)::int as orders
      from analytics.coupon_usage`;
    await analyst.end();
    const [{ purchases }] = await a.sql`
      select count(*)::int as purchases from core.events where event_type = 'purchase'`;
    assertEquals(usage, { with_coupon: coupons, orders: purchases });
  } finally {
    await Deno.remove(base, { recursive: true });
    await a.drop();
    await b.drop();
  }
});

Deno.test("an incompatible or unsafe registration is refused with its reason, and changes nothing", async () => {
  const db = await testDb("registry_refused");
  const own = owner(db.url);
  try {
    const refused: [Record<string, unknown>, string][] = [
      [
        { version: 3, extends: 2, drop: ["quantity"], add: [{ name: "coupon_code" }] },
        "removes required column(s) quantity of version 2",
      ],
      [
        {
          version: 3,
          extends: 2,
          drop: ["price"],
          add: [{ name: "price", type: "integer", required: true }, { name: "coupon_code" }],
        },
        'column "price" is retyped from decimal to integer',
      ],
      [{ version: 3, extends: 2 }, "adds no column that earlier versions lack"],
      [{ version: 4, extends: 2, add: [{ name: "x" }] }, "the next version number is 3"],
      [{ version: 2, extends: 1, add: [{ name: "x" }] }, "version 2 is already registered"],
      [
        { version: 3, extends: 2, add: [{ name: "coupon_code", type: "money" }] },
        'column "coupon_code" has type "money"',
      ],
      [
        { version: 3, extends: 2, add: [{ name: "extra" }] },
        'column name "extra" is reserved',
      ],
      [
        {
          version: 3,
          extends: 2,
          drop: ["currency"],
          add: [{ name: "coupon_code" }],
          upgrade: { currency: { sql: "(select 'EUR')" } },
        },
        'upgrade rule for "currency" must be {"const": "..."} or {"template": "..."}',
      ],
      [
        {
          version: 3,
          extends: 2,
          drop: ["currency"],
          add: [{ name: "coupon_code" }],
          upgrade: { currency: { template: "{price); drop table core.events; --}" } },
        },
        "placeholder {price); drop table core.events; --} must be {column}",
      ],
      [
        {
          version: 3,
          extends: 2,
          drop: ["currency"],
          add: [{ name: "coupon_code" }],
          upgrade: { currency: { template: "{currency}" } },
        },
        "placeholder {currency} names no column this version sends",
      ],
      [{ version: 3, extends: 2, add: [{ name: "a" }], bogus: 1 }, "unknown key(s)"],
    ];
    for (const [definition, reason] of refused) {
      const error = await assertRejects(() => registerVersion(own, definition));
      assert(
        (error as Error).message.includes(reason),
        `${JSON.stringify(definition)}: "${(error as Error).message}" lacks "${reason}"`,
      );
    }
    const [{ n }] = await db.sql`select count(*)::int as n from ingest.schema_versions`;
    assertEquals(n, 2);
    // the ingest role may not register at all
    const ingest = connect({ url: db.url, role: "pipeline_ingest", max: 1 });
    const denied = await assertRejects(() =>
      registerVersion(ingest, { version: 3, extends: 2, add: [{ name: "a" }] })
    );
    await ingest.end();
    assert(/permission denied/.test((denied as Error).message), (denied as Error).message);

    // the command line says why and exits 1
    const bad = join(await Deno.makeTempDir(), "bad.json");
    await Deno.writeTextFile(bad, JSON.stringify({ version: 3, extends: 2, drop: ["event_id"] }));
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${root}scripts/schema.ts`, "add", bad],
      env: { DATABASE_URL: db.url },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const said = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 1, said);
    assert(said.includes("removes required column(s) event_id of version 2"), said);
    // a safe renaming version is accepted, and its files map the new name
    const ok = await registerVersion(own, {
      version: 3,
      extends: 2,
      drop: ["device", "currency"],
      add: [{ name: "device_type", type: "text" }, { name: "coupon_code" }],
      renames: { device_type: "device" },
      upgrade: { currency: { const: "EUR" } },
    });
    assertEquals(ok.version, 3);
    const v3 = "event_id,event_time,event_type,user_id,session_id,product_id,category,price," +
      `quantity,device_type,coupon_code\n${id(5)},${minuteAgo()},view,1,s,2,toys,,,Mobile,C1\n`;
    const r = await loadSource(db.sql, bytesSource(enc.encode(v3)), "v3.csv", cfg);
    assertEquals([r.schemaVersion, r.unknownColumns, r.result!.valid], [3, [], 1]);
    const [e] = await db.sql`select device, currency, extra from core.events`;
    assertEquals(e, { device: "mobile", currency: "EUR", extra: { coupon_code: "C1" } });
  } finally {
    await own.end();
    await db.drop();
  }
});

Deno.test("unknown columns round-trip into extra: events, dead letter, replay, analyst view, metrics", async () => {
  const db = await testDb("registry_extra");
  const dir = await Deno.makeTempDir({ prefix: "registry_extra_" });
  const KEY = "registry-key";
  const lcfg = loadConfig({
    DATABASE_URL: db.url,
    API_KEYS: KEY,
    DATA_DIR: dir,
    LOG_DIR: `${dir}/logs`,
  });
  const ingest = connect({ url: db.url, role: "pipeline_ingest", max: 2 });
  const analyst = connect({ url: db.url, role: "pipeline_analyst", max: 1 });
  try {
    const t = minuteAgo();
    const text = "event_id,event_time,event_type,user_id,session_id,product_id,category,price," +
      "quantity,Coupon_Code,customer_email,note\n" +
      `${id(1)},${t},purchase,7,s1,3,books,9.99,2, SAVE5 ,ann@example.com,bob@example.com\n` +
      `${id(2)},${t},purchase,7,s1,3,books,-1,1,WELCOME10,carl@example.com,gift wrap\n` +
      `${id(3)},${t},view,8,s2,4,toys,,,,,\n`;
    const r = await loadSource(ingest, bytesSource(enc.encode(text)), "drift.csv", cfg);
    assertEquals(r.unknownColumns, ["coupon_code", "customer_email", "note"]);
    assertEquals([r.result!.valid, r.result!.invalid, r.schemaVersion], [2, 1, 2]);

    const [{ h: annHash }] = await db.sql`
      select 'hmac:' || encode(public.hmac('ann@example.com', ${cfg.email_key}, 'sha256'), 'hex')
        as h`;
    const [{ h: bobHash }] = await db.sql`
      select 'hmac:' || encode(public.hmac('bob@example.com', ${cfg.email_key}, 'sha256'), 'hex')
        as h`;
    const events = await db.sql`select event_id, extra from core.events order by event_id`;
    assertEquals(events.map((e) => e.extra), [
      { coupon_code: "SAVE5", customer_email: annHash, note: bobHash },
      null,
    ]);
    // the dead letter keeps what was sent
    const [dead] = await db.sql`select extra, price from quality.dead_letter`;
    assertEquals(dead.extra, {
      coupon_code: "WELCOME10",
      customer_email: "carl@example.com",
      note: "gift wrap",
    });
    const [m] = await db.sql`
      select m.unknown_columns, m.schema_version, f.unknown_columns as ledger
      from quality.batch_metrics m, ingest.files f where f.batch_id = m.batch_id`;
    assertEquals(m, {
      unknown_columns: ["coupon_code", "customer_email", "note"],
      schema_version: 2,
      ledger: ["coupon_code", "customer_email", "note"],
    });

    // replay the fixed row: it moves to events with its extra, protected like any other
    await db.sql`update quality.dead_letter set price = '19.99'`;
    const [{ result }] = await db.sql`
      select quality.replay(null, null, ${db.sql.json(cfg)}::jsonb) as result`;
    assertEquals(result.moved, 1);
    const [moved] = await db.sql`select extra from core.events where event_id = ${id(2)}`;
    assertEquals(moved.extra.coupon_code, "WELCOME10");
    assertEquals(moved.extra.note, "gift wrap");
    assert(moved.extra.customer_email.startsWith("hmac:"), moved.extra.customer_email);

    // the analyst sees extra values, without deny-listed columns or e-mails
    const seen = await analyst`
      select event_id, extra from analytics.event_extra order by event_id`;
    assertEquals(seen.map((s) => s.extra), [
      { coupon_code: "SAVE5", note: "[masked]" },
      { coupon_code: "WELCOME10", note: "gift wrap" },
    ]);
    // the deny list is configuration: listing "coupon%" hides the coupons too
    await db.sql`insert into core.extra_pii_keys (pattern) values ('coupon%')`;
    const hidden = await analyst`select extra from analytics.event_extra order by event_id`;
    assertEquals(hidden.map((s) => s.extra), [{ note: "[masked]" }, { note: "gift wrap" }]);
    await db.sql`delete from core.extra_pii_keys where pattern = 'coupon%'`;

    // HTTP: the same drift is visible in the response and in /metrics, and a pinned client
    // sending another version raises an alert
    const own = owner(db.url);
    await pinSource(own, "http", httpClientId(KEY), 1, "legacy app");
    await own.end();
    const log = logger("serve", { level: "error", dir: `${dir}/logs`, quiet: true });
    const app = createApp({ cfg: lcfg, ingest, analyst, log });
    const res = await app.fetch(
      new Request("http://x/v1/events", {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}`, "content-type": "text/csv" },
        body: "event_id,event_time,event_type,user_id,session_id,product_id,category,price," +
          `quantity,coupon_code\n${id(9)},${t},view,8,s9,4,toys,,,X1\n`,
      }),
    );
    const body = await res.json();
    assertEquals([res.status, body.accepted, body.schema_version, body.unknown_columns], [
      200,
      1,
      2,
      ["coupon_code"],
    ]);
    // NDJSON objects keep their unknown keys too
    const nd = await app.fetch(
      new Request("http://x/v1/events", {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}`, "content-type": "application/x-ndjson" },
        body: JSON.stringify({
          event_id: id(10),
          event_time: t,
          event_type: "view",
          user_id: 8,
          session_id: "s9",
          product_id: 4,
          category: "toys",
          price: null,
          quantity: null,
          loyalty_tier: "gold",
        }) + "\n",
      }),
    );
    assertEquals((await nd.json()).unknown_columns, ["loyalty_tier"]);
    const [nde] = await db.sql`select extra from core.events where event_id = ${id(10)}`;
    assertEquals(nde.extra, { loyalty_tier: "gold" });
    await app.deferred?.flush();
    const metrics = await (await app.fetch(new Request("http://x/metrics"))).text();
    for (
      const line of [
        'pipeline_schema_unknown_column_batches{column="coupon_code"} 2',
        'pipeline_schema_unknown_column_batches{column="note"} 1',
        'pipeline_schema_version_batches{version="2"} 3',
        'pipeline_schema_version_batches{version="1"} 0',
        'pipeline_schema_alerts_open{kind="schema_mismatch"} 2',
      ]
    ) assert(metrics.includes(line), `/metrics lacks ${line}`);
    const [alert] = await db.sql`
      select kind, message from quality.alerts where kind <> 'low_validity' order by alert_id`;
    assertEquals(alert.kind, "schema_mismatch");
    assert(
      alert.message.includes("is pinned to schema version 1 but sent version 2"),
      alert.message,
    );
  } finally {
    await ingest.end();
    await analyst.end();
    await Deno.remove(dir, { recursive: true });
    await db.drop();
  }
});

Deno.test("replay of a dead-lettered v1 row upgrades it with the registry's rules", async () => {
  const db = await testDb("registry_v1_replay");
  try {
    const t = minuteAgo();
    const text = "event_id,event_time,event_type,user_id,product_id,category,price\n" +
      `${id(1)},${t},purchase,42,3,gadgets,9.99\n` +
      `${id(2)},${t},view,,4,toys,\n`;
    const r = await loadSource(db.sql, bytesSource(enc.encode(text)), "old.csv", cfg);
    assertEquals([r.schemaVersion, r.result!.valid, r.result!.invalid], [1, 1, 1]);
    const [view] = await db.sql`select session_id, quantity from core.events`;
    assertEquals(view, { session_id: `v1-guest-${t.slice(0, 10)}`, quantity: 1 });
    const [dead] = await db.sql`select schema_version, reasons from quality.dead_letter`;
    assertEquals(dead, { schema_version: 1, reasons: ["invalid_category"] });

    // the registry, not code, says how a v1 row is upgraded: change its rules, then replay
    await db.sql`
      update ingest.schema_versions
      set upgrade = '{"session_id": {"template": "legacy-{user_id|guest}"},
                      "quantity": {"const": "3"}}'
      where version = 1`;
    await db.sql`update quality.dead_letter set category = 'books'`;
    const [{ result }] = await db.sql`
      select quality.replay(null, null, ${db.sql.json(cfg)}::jsonb) as result`;
    assertEquals(result.moved, 1);
    const [e] = await db.sql`
      select session_id, quantity, total_amount::text from core.events where event_id = ${id(1)}`;
    assertEquals(e, { session_id: "legacy-42", quantity: 3, total_amount: "29.97" });
  } finally {
    await db.drop();
  }
});

Deno.test("pinned sources: another version loads and raises an alert; deprecated versions too", async () => {
  const db = await testDb("registry_pins");
  const own = owner(db.url);
  const dir = await Deno.makeTempDir({ prefix: "registry_pins_" });
  try {
    await pinSource(own, "file", "shop-a-", 2);
    const t = minuteAgo();
    const v1 = (n: number) =>
      `event_id,event_time,event_type,user_id,product_id,category,price\n${
        id(n)
      },${t},view,1,2,toys,\n`;
    const v2 = (n: number) =>
      `event_id,event_time,event_type,user_id,session_id,product_id,category,price,quantity\n${
        id(n)
      },${t},view,1,s,2,toys,,\n`;
    const files: [string, string][] = [
      ["shop-a-1.csv", v1(1)],
      ["shop-a-2.csv", v2(2)],
      ["other-1.csv", v1(3)],
    ];
    const results = [];
    for (const [name, text] of files) {
      await Deno.writeTextFile(join(dir, name), text);
      results.push(await loadFile(db.sql, join(dir, name), cfg));
    }
    assertEquals(results.map((r) => [r.outcome, r.schemaVersion, r.expectedSchemaVersion]), [
      ["loaded", 1, 2],
      ["loaded", 2, 2],
      ["loaded", 1, null],
    ]);
    // the command line pins an HTTP client by its API key (stored as the client id only)
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${root}scripts/schema.ts`,
        "pin",
        "--source",
        "http",
        "--key",
        "k-1",
        "--version",
        "2",
      ],
      env: { DATABASE_URL: db.url },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    const pins = await db.sql`select source_kind, source_match, version from ingest.source_schemas
      order by 1`;
    assertEquals(pins.map((p) => [p.source_kind, p.source_match, p.version]), [
      ["file", "shop-a-", 2],
      ["http", httpClientId("k-1"), 2],
    ]);
    await setStatus(own, 1, "deprecated");
    await Deno.writeTextFile(join(dir, "other-2.csv"), v1(4));
    await loadFile(db.sql, join(dir, "other-2.csv"), cfg);
    const alerts = await db.sql`
      select kind, message from quality.alerts order by alert_id`;
    assertEquals(alerts.map((a) => a.kind), ["schema_mismatch", "deprecated_schema"]);
    assert(alerts[0].message.includes('file "shop-a-" is pinned to schema version 2'));
    assert(alerts[1].message.includes("schema version 1 is deprecated"));
    const [{ n }] = await db.sql`select count(*)::int as n from core.events`;
    assertEquals(n, 4);
  } finally {
    await own.end();
    await Deno.remove(dir, { recursive: true });
    await db.drop();
  }
});
