// make bench-lake: the lake export against the file path on the same seeded events, in the
// same run and database: rows/s loading the files (one at a time, as deno task ingest --workers
// 1), rows/s exporting the closed days to Iceberg (deno task export's writer, process start
// included), the cost of a run with nothing to do, and the lake's size on disk against
// PostgreSQL's for the same days.
import { join } from "node:path";
import { parseArgs } from "node:util";
import { config } from "../scripts/lib/common/config.ts";
import { loadFile, settings } from "../scripts/lib/batch/mod.ts";
import { runExport } from "../scripts/lib/lake/mod.ts";
import { testDb } from "../scripts/lib/testing/testdb.ts";
import { generate } from "../scripts/lib/generator/generate.ts";

const HELP = `Usage: make bench-lake [SIZE=1m]   (deno run -A bench/lake.ts --size 1m)

  --size S     events: 10k, 100k, 1m (default 1m), in files of 100,000 over 10 days of
               November 2026 (closed days)
  --keep       keep the database and the warehouse (their paths are printed)
  -h, --help   show this help`;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    size: { type: "string", default: "1m" },
    keep: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(HELP);
  Deno.exit(0);
}
const SIZES: Record<string, number> = { "10k": 10_000, "100k": 100_000, "1m": 1_000_000 };
const total = SIZES[values.size!];
if (!total) {
  console.error(`error: --size must be one of ${Object.keys(SIZES).join(", ")}`);
  Deno.exit(2);
}

const say = (s: string) => console.log(`bench-lake: ${s}`);
const dir = await Deno.makeTempDir({ prefix: "bench-lake-" });
const perFile = Math.min(total, 100_000);
const files = Math.ceil(total / perFile);
say(`${total} events (${files} files), ${new Date().toISOString()}`);
const manifest = await generate({
  files,
  events: perFile,
  seed: 3131,
  intervalSeconds: 864_000 / files, // ten days in all
  startTime: "2026-11-10T00:00:00Z",
  outDir: join(dir, "files"),
});
const paths = manifest.files.map((f) => join(dir, "files", f.name));

async function bytesBelow(path: string): Promise<number> {
  let n = 0;
  const exists = await Deno.stat(path).then(() => true, () => false);
  if (!exists) return 0;
  for await (const e of Deno.readDir(path)) {
    const p = join(path, e.name);
    if (e.isDirectory) n += await bytesBelow(p);
    else if (e.isFile) n += (await Deno.stat(p)).size;
  }
  return n;
}

const db = await testDb("bench_lake");
const warehouse = join(dir, "warehouse");
const cfg = { ...config(), DATABASE_URL: db.url, LAKE_WAREHOUSE: warehouse };
try {
  let t0 = performance.now();
  for (const f of paths) await loadFile(db.sql, f, settings(cfg));
  const loadSeconds = (performance.now() - t0) / 1000;
  const [{ events }] = await db.sql`select count(*)::int as events from core.events`;
  say(
    `file path: ${manifest.totals.rows} rows (${events} events stored) in ${
      loadSeconds.toFixed(1)
    } s = ${Math.round(manifest.totals.rows / loadSeconds)} rows/s`,
  );

  // two days on, today's dead letter is closed too: every layer is exported
  const now = new Date(Date.now() + 2 * 86_400_000);
  t0 = performance.now();
  const result = await runExport(cfg, { now });
  const exportSeconds = (performance.now() - t0) / 1000;
  const silver = result.tables["silver.events"];
  say(
    `export: ${result.rows} rows, ${result.days} table-days in ${exportSeconds.toFixed(1)} s = ${
      Math.round(result.rows / exportSeconds)
    } rows/s (silver.events: ${silver.rows} rows; the writer's own time ${result.seconds} s)`,
  );

  t0 = performance.now();
  const idle = await runExport(cfg, { now });
  const idleSeconds = (performance.now() - t0) / 1000;
  say(
    `export again (nothing new, every closed day checked): ${idle.rows} rows in ${
      idleSeconds.toFixed(1)
    } s`,
  );

  // the same days in PostgreSQL: the partitions of core.events (heap, TOAST, indexes) and the
  // dedupe guard's rows for them (core.event_ids holds only these events here)
  const [pg] = await db.sql`
    select
        sum(pg_total_relation_size(i.inhrelid))::bigint as events_bytes,
        sum(pg_relation_size(i.inhrelid))::bigint as events_heap_bytes,
        pg_total_relation_size('core.event_ids')::bigint as event_ids_bytes
    from pg_inherits as i
    where i.inhparent = 'core.events'::regclass`;
  const lake = {
    silver: await bytesBelow(join(warehouse, "silver")),
    bronze: await bytesBelow(join(warehouse, "bronze")),
    gold: await bytesBelow(join(warehouse, "gold")),
  };
  const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
  say(
    `size: silver.events ${mb(lake.silver)} against core.events ${
      mb(Number(pg.events_bytes))
    } (heap ${mb(Number(pg.events_heap_bytes))}; + core.event_ids ${
      mb(Number(pg.event_ids_bytes))
    }) = ${(100 * lake.silver / Number(pg.events_bytes)).toFixed(1)} %; bronze ${
      mb(lake.bronze)
    }, gold ${mb(lake.gold)}`,
  );
  const out = {
    at: new Date().toISOString(),
    events: total,
    load: { rows: manifest.totals.rows, seconds: loadSeconds },
    export: { rows: result.rows, silver_rows: silver.rows, seconds: exportSeconds, result },
    idle_export_seconds: idleSeconds,
    bytes: { lake, postgres: pg },
  };
  await Deno.mkdir("bench/results", { recursive: true });
  const file = `bench/results/lake-${out.at.replace(/[:.]/g, "-")}.json`;
  await Deno.writeTextFile(file, JSON.stringify(out, null, 2));
  say(`written ${file}`);
} finally {
  if (values.keep) say(`kept database ${db.name} and ${dir}`);
  else {
    await db.drop();
    await Deno.remove(dir, { recursive: true });
  }
}
