import { assert, assertEquals } from "./lib/testing/assert.ts";
import { applyDefinitions, dbmate, dbmateIn, migrationsDir } from "./lib/migrate/migrate.ts";
import { catalog } from "./lib/testing/catalog.ts";
import { loadFile, settings } from "./lib/batch/mod.ts";
import { config } from "./lib/common/config.ts";
import { dbmatePath, testDb } from "./lib/testing/testdb.ts";

Deno.test("migrations apply on PostgreSQL 18 with the four schemas and the pipeline roles", async () => {
  const db = await testDb("migrate_basic");
  try {
    const [{ version }] = await db
      .sql`select current_setting('server_version_num')::int as version`;
    assert(version >= 180000, `PostgreSQL 18 expected, got ${version}`);
    const schemas = await db.sql`
      select nspname from pg_namespace
      where nspname in ('ingest', 'core', 'quality', 'analytics') order by 1`;
    assertEquals(schemas.map((s) => s.nspname), ["analytics", "core", "ingest", "quality"]);
    const roles = await db.sql`
      select rolname from pg_roles where rolname like 'pipeline\\_%' order by 1`;
    assertEquals(roles.map((r) => r.rolname), [
      "pipeline_analyst",
      "pipeline_ingest",
      "pipeline_owner",
      "pipeline_quality_reader",
    ]);
    const owners = await db.sql`
      select distinct pg_get_userbyid(relowner) as owner from pg_class c
      join pg_namespace n on n.oid = c.relnamespace
      where nspname in ('ingest', 'core', 'quality', 'analytics') and relkind in ('r', 'p', 'v', 'm')`;
    assertEquals(owners.map((o) => o.owner), ["pipeline_owner"]);
  } finally {
    await db.drop();
  }
});

Deno.test("migrations re-apply with no error and views re-apply idempotently", async () => {
  const db = await testDb("migrate_idem");
  try {
    const out = await dbmate(await dbmatePath(), db.url, "up");
    assert(!/Applying/.test(out), `second up applied something: ${out}`);
    const before = await catalog(db.sql);
    await applyDefinitions(db.sql);
    await applyDefinitions(db.sql);
    assertEquals(await catalog(db.sql), before);
  } finally {
    await db.drop();
  }
});

Deno.test("every migration rolls back and re-applies (rollback/up round-trip)", async () => {
  const db = await testDb("migrate_roundtrip", { migrationsOnly: true });
  try {
    const bin = await dbmatePath();
    const files = [...Deno.readDirSync(migrationsDir)].filter((f) => f.name.endsWith(".sql"));
    const before = await objects(db.sql);
    for (let i = 0; i < files.length; i++) await dbmate(bin, db.url, "rollback");
    const [{ n }] = await db.sql`
      select count(*)::int as n from pg_namespace
      where nspname in ('ingest', 'core', 'quality', 'analytics')`;
    assertEquals(n, 0);
    await dbmate(bin, db.url, "up");
    assertEquals(await objects(db.sql), before);
  } finally {
    await db.drop();
  }
});

async function objects(sql: import("./lib/common/db.ts").Sql) {
  const rows = await sql`
    select n.nspname || '.' || c.relname || ':' || c.relkind::text as o
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname in ('ingest', 'core', 'quality', 'analytics')
    union all
    select n.nspname || '.' || p.proname || ':f'
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname in ('ingest', 'core', 'quality', 'analytics')
    order by 1`;
  return rows.map((r) => r.o as string);
}

// The last release whose functions lived inside the migrations (before db/functions/).
const previousLayout = "0633999";
const root = new URL("..", import.meta.url).pathname;

async function git(...args: string[]): Promise<string> {
  const out = await new Deno.Command("git", {
    args: ["-C", root, ...args],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    throw new Error(
      `git ${args.join(" ")} failed (${
        new TextDecoder().decode(out.stderr).trim()
      }): this test needs the repository's history; clone without --depth`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

Deno.test("a database upgraded from the previous layout has the catalog of a fresh one", async () => {
  const fresh = await testDb("migrate_fresh");
  const upgraded = await testDb("migrate_upgraded", { empty: true });
  const oldDir = await Deno.makeTempDir({ prefix: "old-migrations-" });
  try {
    // the previous release, as it was: its migrations (functions inside) and its views
    for (
      const path of (await git("ls-tree", "--name-only", previousLayout, "db/migrations/")).split(
        "\n",
      )
    ) {
      if (!path.endsWith(".sql")) continue;
      await Deno.writeTextFile(
        `${oldDir}/${path.split("/").pop()}`,
        await git("show", `${previousLayout}:${path}`),
      );
    }
    const bin = await dbmatePath();
    await dbmateIn(oldDir, bin, upgraded.url, "up");
    for (
      const path of (await git("ls-tree", "--name-only", previousLayout, "db/views/")).split("\n")
    ) {
      if (!path.endsWith(".sql")) continue;
      await upgraded.sql.begin(async (tx) => {
        await tx.unsafe("set local role pipeline_owner");
        await tx.unsafe(await git("show", `${previousLayout}:${path}`));
      });
    }
    // it holds data and the old layering (renamed functions under wrappers)
    const csv = `${oldDir}/batch.csv`;
    await Deno.writeTextFile(csv, fixtureCsv);
    await loadFile(upgraded.sql, csv, settings(config()));
    const [{ n: wrapped }] = await upgraded.sql`
      select count(*)::int as n from pg_proc where proname in ('apply_batch_now', 'rebuild_rollups_from_events')`;
    assertEquals(wrapped, 2);

    // upgrade: today's migrations, then the repeatable definitions
    await dbmate(bin, upgraded.url, "up");
    await applyDefinitions(upgraded.sql);

    await loadFile(fresh.sql, csv, settings(config())); // the same data: the same partitions
    const a = await catalog(fresh.sql);
    const b = await catalog(upgraded.sql);
    assertEquals(b.filter((l) => !a.includes(l)), [], "only in the upgraded database");
    assertEquals(a.filter((l) => !b.includes(l)), [], "only in the fresh database");
    assertEquals(b, a);
    const [{ n: events }] = await upgraded.sql`select count(*)::int as n from core.events`;
    assertEquals(events, 2);
    // and it still loads
    await Deno.writeTextFile(csv, fixtureCsv.replaceAll("0190f", "0191f"));
    await loadFile(upgraded.sql, csv, settings(config()));
    const [{ n: after }] = await upgraded
      .sql`select sum(events)::int as n from analytics.daily_sales`;
    assertEquals(after, 4);
  } finally {
    await Deno.remove(oldDir, { recursive: true });
    await fresh.drop();
    await upgraded.drop();
  }
});

const fixtureCsv =
  `event_id,event_time,event_type,user_id,session_id,product_id,category,price,quantity
0190f000-0000-7000-8000-000000000001,2026-11-29T10:00:00Z,view,1,s1,10,books,12.50,1
0190f000-0000-7000-8000-000000000002,2026-11-29T10:01:00Z,purchase,1,s1,10,books,12.50,2
`;

Deno.test("migrate refuses, changing nothing, when other objects depend on its definitions", async () => {
  const db = await testDb("migrate_dependents");
  try {
    await db.sql`create view public.my_sales as select day, revenue from analytics.daily_sales`;
    const before = await catalog(db.sql);
    const error = await applyDefinitions(db.sql).then(() => null, (e: Error) => e);
    assert(error, "applyDefinitions must refuse");
    assert(
      /view (public\.)?my_sales \(depends on view analytics\.daily_sales\)/.test(error.message),
      error.message,
    );
    assert(/Drop them first/.test(error.message), error.message);
    assertEquals(await catalog(db.sql), before);
    await db.sql`drop view public.my_sales`;
    await applyDefinitions(db.sql);
    assertEquals(await catalog(db.sql), before);
  } finally {
    await db.drop();
  }
});
