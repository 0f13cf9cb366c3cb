import { assert, assertEquals } from "./lib/testing/assert.ts";
import { applyDefinitions, dbmate, migrationsDir } from "./migrate.ts";
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
    const before = await objects(db.sql);
    await applyDefinitions(db.sql);
    await applyDefinitions(db.sql);
    assertEquals(await objects(db.sql), before);
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
