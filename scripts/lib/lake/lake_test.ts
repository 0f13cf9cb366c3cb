// The lake against a real PostgreSQL, a real Iceberg catalog and warehouse, and Apache Spark
// as the independent reader: exactly once across kill -9 at each step, late rows and a replay
// overwriting their day, schema evolution, the retention guard. The S3 test is in s3_test.ts.
import { config, loadConfig } from "../common/config.ts";
import { connect, type Sql } from "../common/db.ts";
import { loadFile, settings } from "../batch/mod.ts";
import { readDefinition, registerVersion } from "../ingest/registry.ts";
import { assert, assertEquals, assertRejects } from "../testing/assert.ts";
import { HEADER } from "../testing/fixtures.ts";
import { catalogPointers, ledgerDays, postgresDays, sparkDays } from "../testing/lake.ts";
import { testDb } from "../testing/testdb.ts";
import { ExportError, runExport } from "./mod.ts";

const root = new URL("../../..", import.meta.url).pathname;
const DAY = 86_400_000;

async function generate(out: string, args: string[]) {
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}scripts/generate.ts`, "--out", out, "--quiet", ...args],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  assert(res.success, "generate failed");
}

async function ingestAll(sql: Sql, dir: string, cfg = settings(config())) {
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".csv"))
    .sort();
  for (const name of names) await loadFile(sql, `${dir}/${name}`, cfg);
}

/** `n` purchases on `day` at noon, with fresh ids from `tag`, price `price`. */
function purchases(day: string, n: number, tag: number, price = "19.90"): string {
  const lines = [HEADER];
  for (let i = 1; i <= n; i++) {
    const id = `0190b000-${tag.toString(16).padStart(4, "0")}-7000-8000-${
      i.toString(16).padStart(12, "0")
    }`;
    lines.push(
      `${id},${day}T12:00:${String(i % 60).padStart(2, "0")}Z,purchase,${i},s-${tag}-${i},${
        1 + i
      },books,${price},1`,
    );
  }
  return lines.join("\n") + "\n";
}

async function ingestText(
  sql: Sql,
  dir: string,
  name: string,
  text: string,
  cfg = settings(config()),
) {
  await Deno.writeTextFile(`${dir}/${name}`, text);
  await loadFile(sql, `${dir}/${name}`, cfg);
}

Deno.test("the lake: closed days exported once, read back by Spark; kill -9 at each step converges; late rows, a replay and a new column overwrite only their day; retention waits for the ledger", async () => {
  const db = await testDb("lake");
  const work = await Deno.makeTempDir({ prefix: "lake-" });
  const warehouse = `${work}/warehouse`;
  const cfg = { ...config(), DATABASE_URL: db.url, LAKE_WAREHOUSE: warehouse };
  // three days from now every day so far is closed (close_after is 1 day by default); the
  // dead letter's day is the day it was written, today
  const now = new Date(Date.now() + 3 * DAY);
  try {
    await generate(`${work}/in`, [
      "--files",
      "2",
      "--events",
      "1500",
      "--interval",
      "86400",
      "--seed",
      "31",
      "--start-time",
      "2026-11-01T00:00:00Z",
    ]);
    await ingestAll(db.sql, `${work}/in`);
    await Deno.mkdir(`${work}/more`);

    // nothing is closed at the first event's time: nothing to export
    const early = await runExport(cfg, { now: new Date("2026-11-01T12:00:00Z") });
    assertEquals([early.rows, early.days], [0, 0]);

    const first = await runExport(cfg, { now });
    const pg = await postgresDays(db.sql, now);
    assertEquals(await ledgerDays(db.sql), pg, "the ledger holds every closed day as it is");
    assertEquals(first.rows, Object.values(pg).flat().reduce((n, d) => n + d[1], 0));
    assertEquals(Object.keys(pg).sort(), [
      "bronze.dead_letter",
      "gold.channel_performance",
      "gold.customer_segment_history",
      "gold.daily_sales",
      "gold.funnel",
      "gold.traffic_source_performance",
      "silver.events",
    ]);
    assert(pg["bronze.dead_letter"].length === 1 && pg["silver.events"].length >= 2);
    const [{ clear }] = await db.sql`
      select count(*)::int as clear from lake.silver_events
      where extra::text ~ '@' or email_hash !~ '^[0-9a-f]{64}$'`;
    assertEquals(clear, 0, "no clear e-mail in silver");

    // the same run again writes nothing: no new commit anywhere
    const pointers = await catalogPointers(db.sql);
    const again = await runExport(cfg, { now });
    assertEquals([again.rows, again.days, again.tables], [0, 0, {}]);
    assertEquals(await catalogPointers(db.sql), pointers);

    // late rows for 2026-11-01, then kill -9 at each step of the export
    await ingestText(db.sql, `${work}/more`, "late.csv", purchases("2026-11-01", 40, 1));
    const before = await ledgerDays(db.sql);

    await assertRejects(
      () => runExport(cfg, { now, crashAt: "lake-after-data-files" }),
      ExportError,
      "killed (SIGKILL)",
    );
    assertEquals(await catalogPointers(db.sql), pointers, "no commit: the previous snapshot");
    assertEquals(await ledgerDays(db.sql), before);

    for (const stage of ["lake-after-commit", "lake-before-ledger-commit"]) {
      await assertRejects(() => runExport(cfg, { now, crashAt: stage }), ExportError, "SIGKILL");
      assertEquals(await ledgerDays(db.sql), before, `${stage}: the ledger is unchanged`);
    }
    const moved = await catalogPointers(db.sql);
    assert(moved["silver.events"] !== pointers["silver.events"], "the commit happened");

    const converged = await runExport(cfg, { now });
    assertEquals(converged.tables["silver.events"].days, 1, "only the late day is rewritten");
    const nov1 = before["silver.events"].find(([day]) => day === "2026-11-01")!;
    assertEquals(converged.tables["silver.events"].rows, 40 + nov1[1]);
    assertEquals(await ledgerDays(db.sql), await postgresDays(db.sql, now));

    // a replay: rows dead-lettered for their price, accepted after MAX_PRICE is raised
    await ingestText(db.sql, `${work}/more`, "dear.csv", purchases("2026-11-02", 7, 2, "25000.00"));
    const dear = await runExport(cfg, { now });
    assertEquals(dear.tables["silver.events"], undefined, "the dead-lettered rows are not events");
    const [{ result }] = await db.sql`
      select quality.replay(null, 'dear.csv',
        ${db.sql.json(settings(loadConfig({ MAX_PRICE: "50000" })))}::jsonb) as result`;
    assertEquals(result.moved, 7);
    const replayed = await runExport(cfg, { now });
    assertEquals(replayed.tables["silver.events"].days, 1);
    const [{ n }] = await db.sql`
      select count(*)::int as n from core.events
      where event_time >= '2026-11-02' and event_time < '2026-11-03'`;
    assertEquals(replayed.tables["silver.events"].rows, n);

    // schema evolution: v3 adds coupon_code; its day brings the column, old days stay as written
    const own = connect({ url: db.url, role: "pipeline_owner", max: 1 });
    await registerVersion(own, await readDefinition(`${root}db/schemas/v3-coupon-code.json`));
    await own.end();
    await generate(`${work}/v3`, [
      "--files",
      "1",
      "--events",
      "800",
      "--interval",
      "86400",
      "--seed",
      "32",
      "--start-time",
      "2026-11-03T00:00:00Z",
      "--schema-version",
      "3",
    ]);
    await ingestAll(db.sql, `${work}/v3`);
    const evolved = await runExport(cfg, { now });
    assertEquals(evolved.tables["silver.events"].columns_added, ["coupon_code"]);
    assertEquals(evolved.tables["silver.events"].days, 1, "only the v3 day: no rewrite");
    const [{ coupons }] = await db.sql`
      select count(*)::int as coupons from lake.silver_events
      where extra ? 'coupon_code' and day = '2026-11-03'`;
    assert(coupons > 0, "the v3 day has coupon codes");
    assertEquals(await ledgerDays(db.sql), await postgresDays(db.sql, now));

    // retention: with export on, November is kept while a day of it is not in the ledger
    await ingestText(db.sql, `${work}/more`, "later.csv", purchases("2026-11-02", 3, 3));
    const far = new Date("2029-06-01T00:00:00Z");
    const [{ kept }] = await db.sql`select core.apply_retention(${far}) as kept`;
    assertEquals(kept.partitions_kept_unexported, { events_2026_11: ["2026-11-02"] });
    assert(!kept.partitions_dropped.includes("events_2026_11"));
    await runExport(cfg, { now });
    const lake = await ledgerDays(db.sql);
    const [{ dropped }] = await db.sql`select core.apply_retention(${far}) as dropped`;
    assert(dropped.partitions_dropped.includes("events_2026_11"), "exported: dropped");
    // dropped from PostgreSQL, still in the lake; nothing to export for the vanished days
    const after = await runExport(cfg, { now });
    assertEquals(after.tables["silver.events"], undefined);

    assertEquals((await ledgerDays(db.sql))["silver.events"], lake["silver.events"]);

    // Spark reads every table: per day the rows and checksum of the ledger, one copy each
    assertEquals(await sparkDays(db.sql, db.url, warehouse), await ledgerDays(db.sql));
  } finally {
    await db.drop();
    await Deno.remove(work, { recursive: true });
  }
});
