// Where a file load's time goes, per SQL function (own time and total, µs a row), from
// PostgreSQL's own function statistics (track_functions = all), for a file loaded as the
// ingester loads it:
//   deno run -A bench/final_profile.ts [--rows 200000] [--chunks 2] [--anomaly-rate 0.02]
//   deno run -A bench/final_profile.ts --rows 20000 --batch-rows 100
// (--batch-rows N: the file's rows as many batches of N, one transaction each through
// stageBatch as an HTTP request or a Kafka batch is loaded; costs are then also given a batch,
// which shows a small batch's fixed cost)
// Generates one seeded file (cached in bench/data/), loads it into a fresh database of its own
// (final_profile, dropped at the end) with loadFile, then prints every function of the
// pipeline's schemas that ran, with its calls, total and own (self) time, per row of the file.
import { join } from "node:path";
import { parseFlags } from "../scripts/lib/common/cli.ts";
import { loadConfig } from "../scripts/lib/common/config.ts";
import { connect, withDatabase } from "../scripts/lib/common/db.ts";
import { CsvScanner, loadFile, settings, stageBatch } from "../scripts/lib/batch/mod.ts";
import { applyDefinitions, createDatabase, dbmate } from "../scripts/lib/migrate/migrate.ts";
import { dbmatePath } from "../scripts/lib/testing/testdb.ts";
import { generate, type Manifest } from "../scripts/lib/generator/generate.ts";

const HELP =
  `Usage: deno run -A bench/final_profile.ts [--rows N] [--chunks N] [--anomaly-rate R] [--explain-ms MS] [--batch-rows N]`;
const values = parseFlags(Deno.args, {
  rows: { type: "string", default: "200000" },
  chunks: { type: "string", default: "2" },
  "anomaly-rate": { type: "string", default: "0.02" },
  // statements inside the functions that take longer than this many ms go to the server's
  // log with their plans and timings (auto_explain); 0: off
  "explain-ms": { type: "string", default: "0" },
  "batch-rows": { type: "string", default: "0" },
}, HELP);
const batchRows = Number(values["batch-rows"]);
const rows = Number(values.rows);
const chunks = Number(values.chunks);
const anomalyRate = Number(values["anomaly-rate"]);

const dir = new URL(`./data/final-${rows}-${anomalyRate}`, import.meta.url).pathname;
let file: string;
try {
  const m = JSON.parse(await Deno.readTextFile(join(dir, "manifest.json"))) as Manifest;
  file = join(dir, m.files[0].name);
} catch {
  const m = await generate({
    files: 1,
    events: rows,
    seed: 77,
    anomalyRate,
    intervalSeconds: 3600,
    outDir: dir,
    manifestPath: join(dir, "manifest.json"),
  });
  file = join(dir, m.files[0].name);
}

const cfg = loadConfig();
const admin = connect({ url: withDatabase(cfg.DATABASE_URL, "postgres"), max: 1 });
await admin.unsafe("drop database if exists final_profile with (force)");
await admin.end();
const url = withDatabase(cfg.DATABASE_URL, "final_profile");
await createDatabase(url);
await dbmate(await dbmatePath(), url, "up");
const setup = connect({ url, max: 1 });
await applyDefinitions(setup);
await setup.unsafe("alter database final_profile set track_functions = 'all'");
const explainMs = Number(values["explain-ms"]);
if (explainMs > 0) {
  await setup.unsafe("alter database final_profile set session_preload_libraries = 'auto_explain'");
  for (
    const [k, v] of Object.entries({
      log_min_duration: `${explainMs}ms`,
      log_analyze: "on",
      log_nested_statements: "on",
      log_timing: "off",
    })
  ) await setup.unsafe(`alter database final_profile set auto_explain.${k} = '${v}'`);
}
await setup.end();

/**
 * CPU time (ms) used so far by this server (its postmaster, its live children, and through the
 * postmaster's cutime/cstime every child that has exited) and by this process, from /proc: on a
 * machine shared with other servers, only this one's processes are counted.
 */
function cpuMs(postmaster: number): { postgres: number; loader: number } {
  const ticks = (pid: number | string, children: boolean) => {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return (Number(f[11]) + Number(f[12]) +
        (children ? Number(f[13]) + Number(f[14]) : 0)) * 10;
    } catch {
      return 0; // ended meanwhile
    }
  };
  let postgres = ticks(postmaster, true);
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === postmaster) postgres += ticks(e.name, false);
    } catch {
      // ended meanwhile
    }
  }
  return { postgres, loader: ticks(Deno.pid, false) };
}

const sql = connect({ url, max: chunks + 2 });
const [{ dir: dataDir }] = await sql`select current_setting('data_directory') as dir`;
const postmaster = Number(
  (await Deno.readTextFile(`${dataDir}/postmaster.pid`)).split("\n")[0],
);
/** The file's rows as batches of --batch-rows, each staged and processed in its own transaction. */
async function loadBatches() {
  const lines = (await Deno.readTextFile(file)).split("\n").filter((l) => l !== "");
  const enc = new TextEncoder();
  let batches = 0;
  let loaded = 0;
  let processMs = 0;
  for (let i = 1; i < lines.length; i += batchRows) {
    const body = enc.encode([lines[0], ...lines.slice(i, i + batchRows)].join("\n") + "\n");
    const scanner = new CsvScanner();
    const head = scanner.push(body);
    const tail = scanner.end();
    await sql.begin(async (tx) => {
      const staged = await stageBatch(tx, {
        kind: "http",
        name: `profile:${batches}`,
        bytes: body.length,
        header: scanner.header!,
        records: (async function* () {
          yield head;
          yield tail;
        })(),
        counted: () => ({ rows: scanner.rows, malformed: scanner.malformed }),
        settings: settings(cfg),
      });
      loaded += staged.result?.rows ?? 0;
      processMs += Number(staged.result?.process_ms ?? 0);
    });
    batches++;
  }
  return { result: { rows: loaded, process_ms: processMs }, copyMs: 0, batches };
}

const cpu0 = cpuMs(postmaster);
const t = performance.now();
const r = batchRows > 0
  ? await loadBatches()
  : await loadFile(sql, file, settings(cfg), { chunks });
const wall = (performance.now() - t) / 1000;
await sql.end();
// statistics are flushed when sessions idle; ended backends are reaped (their CPU counted once)
await new Promise((res) => setTimeout(res, 700));
const cpu1 = cpuMs(postmaster);
const read = connect({ url, max: 1 });
await read`select pg_stat_force_next_flush()`;
const stats = await read`
  select schemaname || '.' || funcname as fn, calls::int, total_time, self_time
  from pg_stat_user_functions
  where schemaname in ('ingest', 'core', 'quality', 'analytics')
  order by self_time desc`;
await read.end();
const a = connect({ url: withDatabase(cfg.DATABASE_URL, "postgres"), max: 1 });
await a.unsafe("drop database if exists final_profile with (force)");
await a.end();

const n = r.result?.rows ?? rows;
console.log(
  `${n} rows, --chunks ${chunks}: ${wall.toFixed(2)} s wall (${
    Math.round(n / wall)
  } rows/s), copy+check ${((r.copyMs ?? 0) / 1000).toFixed(2)} s, final ${
    ((r.result?.process_ms ?? 0) / 1000).toFixed(2)
  } s\n`,
);
console.log(
  `CPU a row: PostgreSQL ${((cpu1.postgres - cpu0.postgres) * 1000 / n).toFixed(1)} µs, loader ${
    ((cpu1.loader - cpu0.loader) * 1000 / n).toFixed(1)
  } µs (load average ${Deno.loadavg().map((x) => x.toFixed(1)).join(" ")})\n`,
);
const nb = (r as { batches?: number }).batches;
if (nb) {
  console.log(
    `${nb} batches of ${batchRows} rows: PostgreSQL CPU ${
      ((cpu1.postgres - cpu0.postgres) / nb).toFixed(2)
    } ms a batch, loader ${
      ((cpu1.loader - cpu0.loader) / nb).toFixed(2)
    } ms; µs a row below × ${batchRows} = µs a batch\n`,
  );
}
console.log("function                                   calls   total µs/row   own µs/row");
for (const s of stats) {
  if (s.total_time / n * 1000 < 0.01) continue;
  console.log(
    `${String(s.fn).padEnd(42)} ${String(s.calls).padStart(5)}  ${
      (s.total_time / n * 1000).toFixed(2).padStart(12)
    }  ${(s.self_time / n * 1000).toFixed(2).padStart(11)}`,
  );
}
