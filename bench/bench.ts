// make bench: one run, side by side, on the same seeded file: raw COPY (the physical limit),
// COPY into a typed table with a primary key, the simplest honest SQL loader (bench/baseline.ts,
// the yardstick ours is reported against), our ingest end to end (UUIDv7 and v4 ids), and
// pgloader as the peer; then freshness in watch mode and scaling. Medians of --reps runs.
import { join } from "node:path";
import { parseArgs } from "node:util";
import { config } from "../scripts/lib/common/config.ts";
import { connect, type Sql, withDatabase } from "../scripts/lib/common/db.ts";
import { copyStream, fileSource } from "../scripts/lib/batch/mod.ts";
import { applyDefinitions, createDatabase, dbmate } from "../scripts/lib/migrate/migrate.ts";
import { dbmatePath } from "../scripts/lib/testing/testdb.ts";
import { generate, type Manifest } from "../scripts/lib/generator/generate.ts";
import { BASELINE_DDL, baselineLoad } from "./baseline.ts";

const HELP = `Usage: make bench [SIZE=100k|1m|5m]   (deno run -A bench/bench.ts --size 1m)

Options:
  --size S         rows in the main file: 100k, 1m or 5m (default 1m)
  --reps N         repetitions per measurement, median reported (default 3)
  --skip-pgloader  do not run the pgloader peer (never installed unless INSTALL_PEERS=1)
  --skip-scaling   do not run the scaling and freshness parts
  --quick          only the simplest honest SQL loader and our ingest (UUIDv7), alternating
                   run by run (an A/B of two checkouts: run each in turn; no scaling)
  -h, --help       show this help`;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    size: { type: "string", default: "1m" },
    reps: { type: "string", default: "3" },
    "skip-pgloader": { type: "boolean", default: false },
    "skip-scaling": { type: "boolean", default: false },
    quick: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(HELP);
  Deno.exit(0);
}
const SIZES: Record<string, number> = {
  "10k": 10_000,
  "100k": 100_000,
  "1m": 1_000_000,
  "5m": 5_000_000,
};
const rows = SIZES[values.size!];
const reps = Number(values.reps);
if (!rows || !(reps >= 1)) {
  console.error(`error: --size must be one of ${Object.keys(SIZES).join(", ")} and --reps >= 1`);
  Deno.exit(2);
}

const root = new URL("..", import.meta.url).pathname;
const dataDir = join(root, "bench", "data");
const resultsDir = join(root, "bench", "results");
const baseUrl = config().DATABASE_URL;
const benchUrl = withDatabase(baseUrl, "bench");
const COLUMNS =
  "event_id,event_time,event_type,user_id,session_id,product_id,category,price,quantity,currency,device,traffic_source,payment_method,search_query,user_email";

interface Measure {
  name: string;
  rows: number;
  bytes: number;
  runs: number[]; // seconds
  rssMb?: number[];
  note?: string;
}
const results: Measure[] = [];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

/** Records a measurement and prints it at once (a later failure must not lose it). */
function record(m: Measure) {
  results.push(m);
  const med = m.runs.length ? median(m.runs) : NaN;
  console.error(
    `bench: ${m.name}: ${
      m.runs.length
        ? `${Math.round(m.rows / med)} rows/s (median ${med.toFixed(2)} s of ${
          m.runs.map((r) => r.toFixed(2)).join(", ")
        })`
        : m.note
    }`,
  );
}

/** A seeded clean file (no anomalies, no duplicates: every loader can take it). */
async function dataset(n: number, ids: 4 | 7): Promise<{ path: string; bytes: number }> {
  const dir = join(dataDir, `${n}-v${ids}`);
  const manifestPath = join(dir, "manifest.json");
  try {
    const m = JSON.parse(await Deno.readTextFile(manifestPath)) as Manifest;
    const path = join(dir, m.files[0].name);
    return { path, bytes: (await Deno.stat(path)).size };
  } catch {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  console.error(`bench: generating ${n} rows with UUIDv${ids} ids`);
  const m = await generate({
    files: 1,
    events: n,
    seed: 1234,
    idVersion: ids,
    anomalyRate: 0,
    duplicateRate: 0,
    lateRate: 0.01,
    intervalSeconds: 3600,
    outDir: dir,
    manifestPath,
  });
  const path = join(dir, m.files[0].name);
  return { path, bytes: (await Deno.stat(path)).size };
}

/** A fresh migrated bench database (so every run starts from empty tables). */
async function freshDb(): Promise<Sql> {
  const admin = connect({ url: withDatabase(baseUrl, "postgres"), max: 1 });
  await admin.unsafe("drop database if exists bench with (force)");
  await admin.end();
  await createDatabase(benchUrl);
  await dbmate(await dbmatePath(), benchUrl, "up");
  const sql = connect({ url: benchUrl, max: 2 });
  await applyDefinitions(sql);
  return sql;
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

async function rawCopy(path: string, bytes: number, label: string) {
  const m: Measure = { name: `raw COPY, unlogged all-text (${label})`, rows, bytes, runs: [] };
  for (let r = 0; r < reps; r++) {
    const sql = await freshDb();
    await sql.unsafe(
      `create unlogged table public.raw (${COLUMNS.split(",").map((c) => `${c} text`).join(", ")})`,
    );
    m.runs.push(
      await timed(() =>
        sql.begin(async (tx) => {
          await copyStream(
            tx,
            "copy public.raw from stdin (format csv, header true)",
            (await fileSource(path)).open(),
          );
        })
      ),
    );
    await sql.end();
  }
  record(m);
}

const TYPED = `create table public.typed (
  event_id uuid primary key, event_time timestamptz not null, event_type text not null,
  user_id bigint, session_id text not null, product_id bigint, category text,
  price numeric(17, 2), quantity int, currency text, device text, traffic_source text,
  payment_method text, search_query text, user_email text)`;

async function typedCopy(path: string, bytes: number, label: string) {
  const m: Measure = {
    name: `COPY into typed table + primary key (${label})`,
    rows,
    bytes,
    runs: [],
  };
  for (let r = 0; r < reps; r++) {
    const sql = await freshDb();
    await sql.unsafe(TYPED);
    m.runs.push(
      await timed(() =>
        sql.begin(async (tx) => {
          await copyStream(
            tx,
            "copy public.typed from stdin (format csv, header true)",
            (await fileSource(path)).open(),
          );
        })
      ),
    );
    await sql.end();
  }
  record(m);
}

/** The simplest honest SQL loader (bench/baseline.ts): casts, checks, hash, dedupe; one session. */
async function baseline(path: string, bytes: number, label: string) {
  const m: Measure = {
    name: `simplest honest SQL loader (${label})`,
    rows,
    bytes,
    runs: [],
  };
  for (let r = 0; r < reps; r++) {
    const sql = await freshDb();
    await sql.unsafe(BASELINE_DDL);
    let n = 0;
    m.runs.push(
      await timed(async () => {
        n = await baselineLoad(sql, path);
      }),
    );
    await sql.end();
    if (n !== rows) throw new Error(`The baseline loader stored ${n} events, expected ${rows}`);
  }
  record(m);
}

/** Our ingest as users run it (deno task ingest --once), with its peak RSS. */
async function ingestOnce(
  files: string[],
  parallel = 1,
  workers = 1,
  chunks?: number,
): Promise<{ seconds: number; rssMb: number }> {
  const inbox = await Deno.makeTempDir({ prefix: "bench-inbox-" });
  const dir = join(inbox, "incoming");
  await Deno.mkdir(dir);
  for (const f of files) await Deno.link(f, join(dir, f.slice(f.lastIndexOf("/") + 1)));
  let peak = 0;
  const t = performance.now();
  const children = Array.from({ length: parallel }, () =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        join(root, "scripts/ingest.ts"),
        "--once",
        "--dir",
        dir,
        "--workers",
        String(workers),
        ...(chunks === undefined ? [] : ["--chunks", String(chunks)]),
      ],
      env: {
        DATABASE_URL: benchUrl,
        LOG_LEVEL: "warn",
        LOG_DIR: join(inbox, "logs"),
        // --chunks given: whatever the file's size
        ...(chunks === undefined ? {} : { PARALLEL_FILE_MIN_MB: "0" }),
      },
      stdout: "null",
      stderr: "inherit",
    }).spawn());
  const poll = setInterval(async () => {
    for (const c of children) {
      try {
        const status = await Deno.readTextFile(`/proc/${c.pid}/status`);
        const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
        peak = Math.max(peak, kb / 1024);
      } catch { /* exited */ }
    }
  }, 50);
  const codes = await Promise.all(children.map((c) => c.status));
  clearInterval(poll);
  const seconds = (performance.now() - t) / 1000;
  await Deno.remove(inbox, { recursive: true });
  if (codes.some((c) => !c.success)) throw new Error("Ingest failed during the benchmark");
  return { seconds, rssMb: peak };
}

async function ingest(path: string, bytes: number, label: string) {
  const m: Measure = { name: `our ingest end to end (${label})`, rows, bytes, runs: [], rssMb: [] };
  for (let r = 0; r < reps; r++) {
    const sql = await freshDb();
    const { seconds, rssMb } = await ingestOnce([path]);
    const [{ n }] = await sql`select count(*)::int as n from core.events`;
    await sql.end();
    if (n !== rows) throw new Error(`Ingest stored ${n} events, expected ${rows}`);
    m.runs.push(seconds);
    m.rssMb!.push(rssMb);
  }
  record(m);
}

async function pgloader(path: string, bytes: number, label: string) {
  const m: Measure = {
    name: `pgloader into typed table + primary key (${label})`,
    rows,
    bytes,
    runs: [],
  };
  if (!(await has("pgloader")) && Deno.env.get("INSTALL_PEERS") !== "1") {
    m.note =
      "pgloader is not installed: install it (Debian: apt-get install pgloader) or run INSTALL_PEERS=1 make bench";
    console.error(`bench: ${m.note}; skipped`);
    record(m);
    return;
  }
  if (!(await has("pgloader"))) {
    console.error("bench: INSTALL_PEERS=1: installing pgloader (Debian package)");
    const ok = await new Deno.Command("bash", {
      args: [
        "-c",
        "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgloader >/dev/null",
      ],
    }).output();
    if (!ok.success || !(await has("pgloader"))) {
      m.note = "pgloader could not be installed";
      record(m);
      return;
    }
  }
  for (let r = 0; r < reps; r++) {
    const sql = await freshDb();
    await sql.unsafe(TYPED);
    await sql.end();
    const u = new URL(benchUrl);
    const cmd = `LOAD CSV FROM '${path}' (${COLUMNS})
  INTO postgresql://${u.username}:${u.password}@${u.hostname}:${u.port}/bench?tablename=typed (${COLUMNS})
  WITH skip header = 1, fields optionally enclosed by '"', fields escaped by double-quote,
       fields terminated by ',', workers = 2, concurrency = 1, batch rows = 25000
  SET work_mem to '64MB';`;
    const file = await Deno.makeTempFile({ suffix: ".load" });
    await Deno.writeTextFile(file, cmd);
    let out: Deno.CommandOutput | undefined;
    const seconds = await timed(async () => {
      out = await new Deno.Command("pgloader", {
        args: ["--quiet", file],
        stdout: "piped",
        stderr: "piped",
      }).output();
    });
    await Deno.remove(file);
    const check = connect({ url: benchUrl, max: 1 });
    const [{ n }] = await check`select count(*)::int as n from public.typed`;
    await check.end();
    if (!out!.success || n !== rows) {
      m.note = `pgloader failed or loaded ${n} of ${rows} rows: ${
        new TextDecoder().decode(out!.stderr).slice(0, 300)
      }`;
      break;
    }
    m.runs.push(seconds);
  }
  record(m);
}

async function has(cmd: string) {
  const out = await new Deno.Command("bash", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
    .output();
  return out.success;
}

/** Watch mode: small files at a steady rate; latency from rename to visible in analytics. */
async function freshness(n = 30, rowsPerFile = 500, everyMs = 500) {
  const sql = await freshDb();
  const staging = await Deno.makeTempDir({ prefix: "bench-fresh-src-" });
  const m = await generate({
    files: n,
    events: rowsPerFile,
    seed: 99,
    anomalyRate: 0,
    duplicateRate: 0,
    lateRate: 0,
    intervalSeconds: 60,
    outDir: staging,
  });
  const inbox = await Deno.makeTempDir({ prefix: "bench-fresh-" });
  const dir = join(inbox, "incoming");
  await Deno.mkdir(dir);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", join(root, "scripts/ingest.ts"), "--dir", dir],
    env: { DATABASE_URL: benchUrl, LOG_LEVEL: "warn", LOG_DIR: join(inbox, "logs") },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  await new Promise((r) => setTimeout(r, 1500));
  const latencies: number[] = [];
  const probe = connect({ url: benchUrl, max: 1, role: "pipeline_analyst" });
  let want = 0;
  for (const f of m.files) {
    want += f.valid;
    const t = performance.now();
    await Deno.rename(join(staging, f.name), join(dir, f.name));
    while (true) {
      const [{ total }] = await probe`
        select coalesce(sum(events), 0)::int as total from analytics.hourly_events`;
      if (total >= want) break;
      if (performance.now() - t > 30_000) {
        throw new Error(`File ${f.name} not visible in analytics after 30 s`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    latencies.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, Math.max(0, everyMs - (performance.now() - t))));
  }
  child.kill("SIGTERM");
  await child.status;
  await probe.end();
  await sql.end();
  await Deno.remove(inbox, { recursive: true });
  await Deno.remove(staging, { recursive: true });
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.ceil(p * latencies.length) - 1)];
  return {
    files: n,
    rows_per_file: rowsPerFile,
    every_ms: everyMs,
    p50_ms: Math.round(pct(0.5)),
    p95_ms: Math.round(pct(0.95)),
    max_ms: Math.round(latencies.at(-1)!),
  };
}

async function scaling() {
  const out: Record<string, unknown>[] = [];
  // SIZE bounds every generated file: single files up to SIZE rows, then 8 files of SIZE/10
  for (const n of [10_000, 100_000, 1_000_000].filter((n) => n <= rows)) {
    const d = await dataset(n, 7);
    const sql = await freshDb();
    const { seconds } = await ingestOnce([d.path]);
    await sql.end();
    out.push({
      case: `one file of ${n} rows`,
      rows: n,
      seconds,
      rows_per_s: Math.round(n / seconds),
    });
  }
  // the largest file again, staged and checked by one session (--chunks 1), then by one per
  // core (the default for a file of PARALLEL_FILE_MIN_MB or more)
  const largest = [10_000, 100_000, 1_000_000].filter((n) => n <= rows).at(-1)!;
  for (const chunks of [1, navigator.hardwareConcurrency]) {
    const d = await dataset(largest, 7);
    const sql = await freshDb();
    const { seconds } = await ingestOnce([d.path], 1, 1, chunks);
    await sql.end();
    out.push({
      case: `one file of ${largest} rows, --chunks ${chunks}`,
      rows: largest,
      seconds,
      rows_per_s: Math.round(largest / seconds),
    });
  }
  // 8 files of SIZE/10 rows: one ingester with --workers 1, then one worker per core
  const per = Math.max(1, Math.floor(rows / 10));
  const splitDir = join(dataDir, `8x${per}`);
  let files: string[];
  try {
    files = [...Deno.readDirSync(splitDir)].filter((e) => e.name.endsWith(".csv"))
      .map((e) => join(splitDir, e.name));
    if (files.length !== 8) throw new Error("incomplete");
  } catch {
    await Deno.remove(splitDir, { recursive: true }).catch(() => {});
    const m = await generate({
      files: 8,
      events: per,
      seed: 4321,
      anomalyRate: 0,
      duplicateRate: 0,
      intervalSeconds: 3600,
      outDir: splitDir,
    });
    files = m.files.map((f) => join(splitDir, f.name));
  }
  // one ingester with 1 worker, then with one worker per core (deno task ingest --workers N)
  for (const workers of [1, navigator.hardwareConcurrency]) {
    const sql = await freshDb();
    const { seconds } = await ingestOnce(files, 1, workers);
    await sql.end();
    out.push({
      case: `8 files x ${per} rows, --workers ${workers}`,
      rows: 8 * per,
      seconds,
      rows_per_s: Math.round((8 * per) / seconds),
    });
  }
  return out;
}

// --- the run ---------------------------------------------------------------------------------
const v7 = await dataset(rows, 7);
if (values.quick) {
  // the yardstick and ours, alternating (the machine's speed drifts within a run)
  const b: Measure = {
    name: "simplest honest SQL loader (UUIDv7 ids)",
    rows,
    bytes: v7.bytes,
    runs: [],
  };
  const o: Measure = {
    name: "our ingest end to end (UUIDv7 ids)",
    rows,
    bytes: v7.bytes,
    runs: [],
    rssMb: [],
  };
  for (let r = 0; r < reps; r++) {
    const sql = await freshDb();
    await sql.unsafe(BASELINE_DDL);
    b.runs.push(await timed(async () => void await baselineLoad(sql, v7.path)));
    await sql.end();
    const sql2 = await freshDb();
    const { seconds, rssMb } = await ingestOnce([v7.path]);
    const [{ n }] = await sql2`select count(*)::int as n from core.events`;
    await sql2.end();
    if (n !== rows) throw new Error(`Ingest stored ${n} events, expected ${rows}`);
    o.runs.push(seconds);
    o.rssMb!.push(rssMb);
    console.error(
      `bench: run ${r + 1}: baseline ${b.runs[r].toFixed(2)} s, ours ${seconds.toFixed(2)} s (${
        (b.runs[r] / seconds).toFixed(2)
      }x)`,
    );
  }
  record(b);
  record(o);
  values["skip-pgloader"] = true;
  values["skip-scaling"] = true;
}
const v4 = values.quick ? v7 : await dataset(rows, 4);
if (!values.quick) await rawCopy(v7.path, v7.bytes, "v7 file");
if (!values.quick) {
  await typedCopy(v7.path, v7.bytes, "UUIDv7 ids");
  await typedCopy(v4.path, v4.bytes, "UUIDv4 ids");
  await baseline(v7.path, v7.bytes, "UUIDv7 ids");
  await ingest(v7.path, v7.bytes, "UUIDv7 ids");
  await ingest(v4.path, v4.bytes, "UUIDv4 ids");
}
if (!values["skip-pgloader"]) await pgloader(v7.path, v7.bytes, "UUIDv7 ids");
const extra: Record<string, unknown> = {};
if (!values["skip-scaling"]) {
  try {
    extra.freshness = await freshness();
    console.error("bench: freshness", extra.freshness);
  } catch (error) {
    extra.freshness = { error: (error as Error).message };
  }
  extra.scaling = await scaling();
}

const limit = results[0];
const limitRate = rows / median(limit.runs);
const table = [[
  "measurement",
  "rows/s",
  "MB/s",
  "vs limit",
  "median s",
  "min s",
  "max s",
  "peak RSS MB",
]];
for (const m of results) {
  if (!m.runs.length) {
    table.push([m.name, "-", "-", "-", "-", "-", "-", m.note ?? ""]);
    continue;
  }
  const med = median(m.runs);
  table.push([
    m.name,
    Math.round(m.rows / med).toLocaleString("en-US"),
    (m.bytes / 1e6 / med).toFixed(1),
    `${((m.rows / med / limitRate) * 100).toFixed(0)} %`,
    med.toFixed(2),
    Math.min(...m.runs).toFixed(2),
    Math.max(...m.runs).toFixed(2),
    m.rssMb ? Math.max(...m.rssMb).toFixed(0) : "",
  ]);
}
const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
console.log(
  `\nmake bench SIZE=${values.size}: ${rows.toLocaleString("en-US")} rows, ${
    (v7.bytes / 1e6).toFixed(0)
  } MB, ${reps} runs each, ${navigator.hardwareConcurrency} cores\n`,
);
for (const [i, row] of table.entries()) {
  console.log(
    row.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join("  "),
  );
  if (i === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "));
}
// the yardstick: ours against the simplest honest SQL loader on the same file, same run
const rateOf = (prefix: string) => {
  const m = results.find((r) => r.name.startsWith(prefix) && r.runs.length);
  return m ? m.rows / median(m.runs) : undefined;
};
const base = rateOf("simplest honest SQL loader");
const ratios: Record<string, number> = {};
if (base) {
  const ours = rateOf("our ingest end to end (UUIDv7");
  const peer = rateOf("pgloader");
  if (ours) ratios["ours (one file, default flags) / simplest SQL loader"] = ours / base;
  if (ours && peer) ratios["ours / pgloader"] = ours / peer;
  for (const s of (extra.scaling ?? []) as { case: string; rows_per_s: number }[]) {
    ratios[`${s.case} / simplest SQL loader`] = s.rows_per_s / base;
  }
  extra.ratios = ratios;
  console.log("\nratios (same run):");
  for (const [k, v] of Object.entries(ratios)) console.log(`  ${k}: ${v.toFixed(2)}x`);
}
if (extra.freshness) {
  console.log("\nfreshness (watch mode, rename -> visible in analytics):", extra.freshness);
}
if (extra.scaling) {
  console.log("\nscaling:");
  for (const s of extra.scaling as Record<string, unknown>[]) {
    console.log(`  ${s.case}: ${s.rows_per_s} rows/s (${Number(s.seconds).toFixed(2)} s)`);
  }
}
await Deno.mkdir(resultsDir, { recursive: true });
const file = join(resultsDir, `${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
await Deno.writeTextFile(
  file,
  JSON.stringify(
    { size: values.size, rows, reps, cores: navigator.hardwareConcurrency, results, ...extra },
    null,
    2,
  ),
);
console.log(`\nresults: ${file}`);
const admin = connect({ url: withDatabase(baseUrl, "postgres"), max: 1 });
await admin.unsafe("drop database if exists bench with (force)");
await admin.end();
