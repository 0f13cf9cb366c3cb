// Security boundaries: definer functions pin search_path and ignore decoys, no PII leaks into
// analytics, secrets stay out of git.
import { stringify } from "csv-stringify/sync";
import { assert, assertEquals } from "../scripts/lib/testing/assert.ts";
import { loadConfig } from "../scripts/lib/common/config.ts";
import { connect } from "../scripts/lib/common/db.ts";
import { bytesSource, loadSource, settings } from "../scripts/lib/batch/mod.ts";
import { testDb } from "../scripts/lib/testing/testdb.ts";

const t = new Date(Date.now() - 60_000).toISOString();
const csv = (rows: string[][]) =>
  new TextEncoder().encode(stringify([
    [
      "event_id",
      "event_time",
      "event_type",
      "user_id",
      "session_id",
      "product_id",
      "category",
      "price",
      "quantity",
      "user_email",
    ],
    ...rows,
  ]));
const row = (n: number, price = "5.00") => [
  `0190d000-0000-7000-8000-${String(n).padStart(12, "0")}`,
  t,
  "purchase",
  "3",
  "s",
  "4",
  "toys",
  price,
  "1",
  "Someone@Example.com",
];

Deno.test("every SECURITY DEFINER function pins search_path to pg_catalog, pg_temp", async () => {
  const db = await testDb("security_definer");
  try {
    const rows = await db.sql`
      select n.nspname || '.' || p.proname as name, p.proconfig
      from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where p.prosecdef and n.nspname in ('ingest', 'core', 'quality', 'analytics')`;
    assert(rows.length >= 5, `found ${rows.length} definer functions`);
    for (const r of rows) {
      assert(
        (r.proconfig ?? []).includes("search_path=pg_catalog, pg_temp"),
        `${r.name} does not pin search_path: ${r.proconfig}`,
      );
    }
  } finally {
    await db.drop();
  }
});

Deno.test("decoy objects in public and pg_temp do not change what a batch does", async () => {
  const db = await testDb("security_decoys");
  const ingest = connect({ url: db.url, role: "pipeline_ingest", max: 1 });
  try {
    // decoys a careless definer function would pick up through search_path
    await db.sql.unsafe(`
      create function public.lower(text) returns text language sql as $$ select 'decoy' $$;
      create function public.btrim(text, text) returns text language sql as $$ select 'decoy' $$;
      create function public.pg_input_is_valid(text, text) returns boolean
        language sql as $$ select true $$;
      create table public.events (x int);
      grant execute on all functions in schema public to public;`);
    // a session may put its own objects in pg_temp before calling the procedures (the pool
    // has one connection, so they live in the session that then loads)
    const session = connect({ url: db.url, role: "pipeline_ingest", max: 1 });
    await session`create temp table checked (x int)`;
    await session`create temp table rejected (x int)`;
    await session`create temp table event_ids (event_id uuid)`;
    const r = await loadSource(
      session,
      bytesSource(csv([row(1), row(2, "-1")])),
      "decoy.csv",
      settings(loadConfig({})),
    ).catch((e) => e as Error);
    await session.end();
    // either the batch refused the tampered session, or it ran with the real functions
    if (r instanceof Error) {
      assert(
        /must be owner|already exists|is not a view|was not made by the pipeline/.test(r.message),
        r.message,
      );
      const [{ n }] = await db.sql`select count(*)::int as n from core.events`;
      assertEquals(n, 0);
    } else {
      assertEquals([r.result!.valid, r.result!.invalid], [1, 1]);
    }
    // and with a clean session, the decoys in public are ignored
    const clean = await loadSource(
      ingest,
      bytesSource(csv([row(3), row(4, "-1")])),
      "clean.csv",
      settings(loadConfig({})),
    );
    assertEquals([clean.result!.valid, clean.result!.invalid], [1, 1]);
    const [{ category }] = await db.sql`
      select category from core.events where event_id = ${row(3)[0]}`;
    assertEquals(category, "toys");
    const [{ n }] = await db.sql`select count(*)::int as n from public.events`;
    assertEquals(n, 0);
  } finally {
    await ingest.end();
    await db.drop();
  }
});

Deno.test("no analytics object exposes an email, its hash, or dead-letter values", async () => {
  const db = await testDb("security_analytics");
  try {
    await loadSource(db.sql, bytesSource(csv([row(1)])), "pii.csv", settings(loadConfig({})));
    const cols = await db.sql`
      select c.relname, a.attname from pg_attribute a
      join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'analytics' and a.attnum > 0 and not a.attisdropped`;
    for (const c of cols) {
      assert(!/email|raw_|reasons_raw/.test(c.attname), `${c.relname}.${c.attname}`);
    }
    const analyst = connect({ url: db.url, role: "pipeline_analyst", max: 1 });
    try {
      const objects = await analyst`
        select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'analytics' and c.relkind in ('r', 'v', 'm', 'p')`;
      for (const o of objects) {
        const rows = await analyst.unsafe(`select * from analytics.${o.relname} limit 1000`);
        const text = JSON.stringify(rows);
        assert(!/example\.com/i.test(text), `analytics.${o.relname} exposes an email`);
      }
    } finally {
      await analyst.end();
    }
  } finally {
    await db.drop();
  }
});

Deno.test(".env is ignored by git and secrets come only from the environment", async () => {
  const out = await new Deno.Command("git", {
    args: ["check-ignore", "-q", ".env"],
    cwd: new URL("..", import.meta.url).pathname,
  }).output();
  assertEquals(out.code, 0, ".env must be git-ignored");
  const cfg = loadConfig({ EMAIL_HASH_KEY: "from-the-environment" });
  assertEquals(cfg.EMAIL_HASH_KEY, "from-the-environment");
});
