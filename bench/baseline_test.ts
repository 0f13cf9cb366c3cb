// The bench's baseline loader is honest: on a file with every kind of anomaly it stores exactly
// the rows the contract calls valid (the generator's manifest), each id once, as the pipeline
// does. (Malformed rows are cut from its copy first: this loader's COPY cannot take them.)
import { join } from "node:path";
import { assertEquals } from "../scripts/lib/testing/assert.ts";
import { generate } from "../scripts/lib/generator/generate.ts";
import { testDb } from "../scripts/lib/testing/testdb.ts";
import { BASELINE_DDL, baselineLoad } from "./baseline.ts";

Deno.test("the baseline loader stores exactly the manifest's valid rows", async () => {
  const db = await testDb("bench_baseline");
  const dir = await Deno.makeTempDir({ prefix: "baseline-" });
  try {
    const m = await generate({
      files: 1,
      events: 6_000,
      seed: 29,
      intervalSeconds: 600,
      startTime: new Date(Date.now() - 20 * 60_000),
      anomalyRate: 0.15,
      duplicateRate: 0.05,
      lateRate: 0.02,
      outDir: dir,
    });
    const f = m.files[0];
    const lines = (await Deno.readTextFile(join(dir, f.name))).split("\n");
    const cut = new Set(f.malformed_lines);
    const clean = join(dir, "clean.csv");
    await Deno.writeTextFile(clean, lines.filter((_, i) => !cut.has(i + 1)).join("\n"));
    await db.sql.unsafe(BASELINE_DDL);
    const inserted = await baselineLoad(db.sql, clean);
    assertEquals(inserted, f.valid);
    const [{ n, ids }] = await db.sql`
      select count(*)::int as n, count(distinct event_id)::int as ids from public.baseline_events`;
    assertEquals([n, ids], [f.valid, f.valid]);
  } finally {
    await db.drop();
    await Deno.remove(dir, { recursive: true });
  }
});
