// End to end: generated files (anomalies, duplicates across files, late events, a v1 file)
// through the ingester; per file, the database's counts equal the generator's manifest.
import { join } from "node:path";
import { assertEquals } from "./lib/testing/assert.ts";
import { loadConfig } from "./lib/common/config.ts";
import { dirsFor, ensureDirs } from "./lib/common/inbox.ts";
import { logger } from "./lib/common/log.ts";
import { testDb } from "./lib/testing/testdb.ts";
import { type FileManifest, generate } from "./lib/generator/generate.ts";
import { Ingester } from "./lib/ingest/ingester.ts";

Deno.test("a seeded multi-file run loads exactly as its manifest says, file by file", async () => {
  const db = await testDb("pipeline_manifest");
  const base = await Deno.makeTempDir({ prefix: "pipeline-" });
  try {
    const dirs = dirsFor(join(base, "incoming"));
    await ensureDirs(dirs);
    // four v2 files with duplicates across files, then a v1 file, both ending about now
    const start = new Date(Date.now() - 4 * 600_000 - 120_000);
    const v2 = await generate({
      files: 4,
      events: 3000,
      intervalSeconds: 600,
      seed: 7,
      startTime: start,
      anomalyRate: 0.05,
      duplicateRate: 0.04,
      lateRate: 0.02,
      outDir: dirs.inbox,
    });
    const v1 = await generate({
      files: 1,
      events: 1500,
      intervalSeconds: 60,
      seed: 8,
      schemaVersion: 1,
      startTime: new Date(Date.now() - 120_000),
      anomalyRate: 0.05,
      outDir: dirs.inbox,
    });
    const ing = new Ingester({
      dirs,
      sql: db.sql,
      cfg: loadConfig({ DATABASE_URL: db.url }),
      log: logger("pipeline-test", { level: "error", dir: join(base, "logs"), quiet: true }),
    });
    const s = await ing.drain();
    assertEquals([s.handled, s.failed], [5, 0]);

    const files: FileManifest[] = [...v2.files, ...v1.files];
    const metrics = await db.sql`
      select source_name, rows, valid, duplicates, invalid, reason_counts
      from quality.batch_metrics`;
    const byName = new Map(metrics.map((m) => [m.source_name as string, m]));
    for (const f of files) {
      const m = byName.get(f.name);
      assertEquals(
        m && {
          rows: m.rows,
          valid: m.valid,
          duplicates: m.duplicates,
          invalid: m.invalid,
          reasons: m.reason_counts,
        },
        {
          rows: f.rows,
          valid: f.valid,
          duplicates: f.duplicates,
          invalid: f.invalid,
          reasons: f.reasons,
        },
        f.name,
      );
      assertEquals(m!.rows, m!.valid + m!.duplicates + m!.invalid);
    }
    const [c] = await db.sql`
      select (select count(*)::int from core.events) as events,
             (select count(*)::int from quality.dead_letter) as dead`;
    const sum = (k: "valid" | "invalid") => files.reduce((a, f) => a + f[k], 0);
    assertEquals(c, { events: sum("valid"), dead: sum("invalid") });
    // malformed rows sit at the lines the generator wrote them
    for (const f of files) {
      const lines = await db.sql`
        select d.line_no from quality.dead_letter d join quality.batch_metrics m using (batch_id)
        where m.source_name = ${f.name} and d.reasons = '{malformed_row}' order by 1`;
      assertEquals(lines.map((l) => Number(l.line_no)), f.malformed_lines, f.name);
    }
  } finally {
    await Deno.remove(base, { recursive: true });
    await db.drop();
  }
});
