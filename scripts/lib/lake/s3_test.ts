// The lake on S3-compatible object storage: a real SeaweedFS S3 gateway started here (not a
// mock), the writer's S3 client (pyarrow) and Spark's (Iceberg's S3FileIO) on the same bucket.
import { config } from "../common/config.ts";
import { loadFile, settings } from "../batch/mod.ts";
import { assertEquals } from "../testing/assert.ts";
import { HEADER } from "../testing/fixtures.ts";
import { ledgerDays, postgresDays, s3Server, sparkDays } from "../testing/lake.ts";
import { testDb } from "../testing/testdb.ts";
import { runExport } from "./mod.ts";

Deno.test("the lake on S3: closed days land in the bucket once and Spark reads them back from it", async () => {
  const work = await Deno.makeTempDir({ prefix: "lake-s3-" });
  const s3 = await s3Server(work, "lake");
  const db = await testDb("lake_s3");
  try {
    const lines = [HEADER];
    for (let i = 1; i <= 60; i++) {
      const id = `0190c000-0001-7000-8000-${i.toString(16).padStart(12, "0")}`;
      const day = i <= 25 ? "2026-11-05" : "2026-11-06";
      lines.push(
        `${id},${day}T08:00:${
          String(i % 60).padStart(2, "0")
        }Z,purchase,${i},s-${i},7,toys,12.50,2`,
      );
    }
    await Deno.writeTextFile(`${work}/events.csv`, lines.join("\n") + "\n");
    await loadFile(db.sql, `${work}/events.csv`, settings(config()));
    const warehouse = "s3://lake/warehouse";
    const cfg = {
      ...config(),
      DATABASE_URL: db.url,
      LAKE_WAREHOUSE: warehouse,
      LAKE_S3_ENDPOINT: s3.endpoint,
      LAKE_S3_ACCESS_KEY_ID: s3.accessKey,
      LAKE_S3_SECRET_ACCESS_KEY: s3.secretKey,
    };
    const now = new Date("2026-11-09T00:00:00Z");
    const first = await runExport(cfg, { now });
    assertEquals(first.tables["silver.events"].rows, 60);
    assertEquals(first.tables["silver.events"].days, 2);
    const again = await runExport(cfg, { now });
    assertEquals(again.rows, 0);
    const ledger = await ledgerDays(db.sql);
    assertEquals(ledger, await postgresDays(db.sql, now));
    assertEquals(ledger["silver.events"].map(([day, rows]) => [day, rows]), [
      ["2026-11-05", 25],
      ["2026-11-06", 35],
    ]);
    const [{ location }] = await db.sql`
      select metadata_location as location from lake_catalog.iceberg_tables
      where table_namespace = 'silver' and table_name = 'events'`;
    assertEquals(location.startsWith("s3://lake/warehouse/silver/events/metadata/"), true);
    assertEquals(await sparkDays(db.sql, db.url, warehouse, s3), ledger);
  } finally {
    await db.drop();
    await s3.stop();
    await Deno.remove(work, { recursive: true });
  }
});
