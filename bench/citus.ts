// make bench CLUSTER=citus: the file path on a single node and on the Citus cluster, in the same
// run, on the same seeded file; then the per-shard cost of a pushed-down INSERT ... SELECT over
// the loaded events (what a worker does per shard), to project what more cores would give.
// On a 2-core machine the three Citus servers share the cores: no real scaling can show here.
import { join } from "node:path";
import { parseArgs } from "node:util";
import { config, loadConfig } from "../scripts/lib/common/config.ts";
import { connect, type Sql, withDatabase } from "../scripts/lib/common/db.ts";
import { loadFile, settings } from "../scripts/lib/batch/mod.ts";
import {
  applyDefinitions,
  citusWorkers,
  createDatabase,
  dbmate,
  distribute,
  withHost,
} from "../scripts/lib/migrate/migrate.ts";
import { dbmatePath } from "../scripts/lib/testing/testdb.ts";
import { generate } from "../scripts/lib/generator/generate.ts";

const HELP = `Usage: make bench CLUSTER=citus [SIZE=10k|100k|1m]
       deno run -A bench/citus.ts --single URL [--size 100k] [--reps 1]

DATABASE_URL and CITUS_WORKERS name the Citus coordinator and workers (make sets them);
--single is the single-node server. Each run loads the same seeded file into a fresh database
"bench_citus" on both and prints rows/s, then the pushed-down per-shard cost.`;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    single: { type: "string" },
    size: { type: "string", default: "100k" },
    reps: { type: "string", default: "1" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(HELP);
  Deno.exit(0);
}
const SIZES: Record<string, number> = { "10k": 10_000, "100k": 100_000, "1m": 1_000_000 };
const rows = SIZES[values.size!];
const reps = Number(values.reps);
const workers = citusWorkers();
if (!rows || !(reps >= 1) || !values.single || workers.length === 0) {
  console.error(
    "error: needs --single URL, CITUS_WORKERS, --size 10k|100k|1m and --reps >= 1 (see --help)",
  );
  Deno.exit(2);
}
const citusUrl = withDatabase(config().DATABASE_URL, "bench_citus");
const singleUrl = withDatabase(values.single!, "bench_citus");
const root = new URL("..", import.meta.url).pathname;
const cfg = settings(loadConfig());

async function fresh(url: string, nodes: string[]): Promise<Sql> {
  for (const u of [url, ...nodes.map((w) => withHost(url, w))]) {
    const admin = connect({ url: withDatabase(u, "postgres"), max: 1 });
    await admin.unsafe("drop database if exists bench_citus with (force)");
    await admin.end();
  }
  await createDatabase(url, nodes);
  await dbmate(await dbmatePath(), url, "up");
  const sql = connect({ url, max: 2 });
  await applyDefinitions(sql);
  await distribute(sql);
  return sql;
}

const dir = join(root, "bench", "data", `citus-${rows}`);
await Deno.remove(dir, { recursive: true }).catch(() => {});
console.error(`bench: generating ${rows} rows`);
const m = await generate({
  files: 1,
  events: rows,
  seed: 1234,
  anomalyRate: 0.02,
  duplicateRate: 0.01,
  lateRate: 0.01,
  intervalSeconds: 3600,
  outDir: dir,
});
const path = join(dir, m.files[0].name);

interface Run {
  seconds: number;
  copyMs: number;
  processMs: number;
  pushdownMs: number;
  shardMs: number[];
}

type Target = "single" | "citus" | "citus, 2 chunks";

async function once(target: Target): Promise<Run> {
  const cluster = target !== "single";
  const sql = await fresh(cluster ? citusUrl : singleUrl, cluster ? workers : []);
  try {
    const t = performance.now();
    // "citus, 2 chunks": the file is staged by 2 sessions and checked on the workers, one
    // task per shard (db/functions/ingest/chunks.sql)
    const r = await loadFile(sql, path, cfg, { chunks: target === "citus, 2 chunks" ? 2 : 1 });
    if (target === "citus, 2 chunks" && r.chunksCheckedOn !== "workers") {
      throw new Error(
        `${target}: the chunks were checked on ${r.chunksCheckedOn}, not the workers`,
      );
    }
    const seconds = (performance.now() - t) / 1000;
    if (r.result?.rows !== rows) throw new Error(`${target}: loaded ${r.result?.rows} rows`);
    // a validating-style INSERT ... SELECT over the stored events into a co-located table: on
    // Citus it runs on every shard in parallel (pushdown); the per-task times are its cost
    await sql.unsafe("create table public.bench_ids (like core.event_ids)");
    if (cluster) {
      await sql.unsafe(
        "select create_distributed_table('public.bench_ids', 'event_id', colocate_with => 'core.event_ids')",
      );
    }
    const q = `insert into public.bench_ids
      select event_id, hashtextextended(concat_ws('|', event_time, event_type, user_id,
        session_id, product_id, category, price, quantity, currency), 0), batch_id, line_no
      from core.events where pg_input_is_valid(event_id::text, 'uuid')`;
    const plan = await sql.begin(async (tx) => {
      await tx.unsafe("set local citus.explain_all_tasks = on").catch(() => {});
      return await tx.unsafe(`explain (analyze, costs off, timing off, summary on) ${q}`);
    });
    const text = plan.map((p) => p["QUERY PLAN"] as string);
    const times = text.map((l) => /Execution Time: ([\d.]+) ms/.exec(l)?.[1]).filter(Boolean)
      .map(Number);
    return {
      seconds,
      copyMs: Math.round(Number(r.copyMs ?? 0)),
      processMs: Number(r.result?.process_ms ?? 0),
      pushdownMs: Math.round(times[times.length - 1] ?? 0),
      // per task on Citus (the last line is the whole statement's)
      shardMs: cluster ? times.slice(0, -1) : [],
    };
  } finally {
    await sql.end({ timeout: 5 });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results: Record<Target, Run[]> = { single: [], citus: [], "citus, 2 chunks": [] };
for (let i = 0; i < reps; i++) {
  for (const target of ["single", "citus", "citus, 2 chunks"] as const) {
    const r = await once(target);
    results[target].push(r);
    console.error(
      `bench: ${target} run ${i + 1}: ${Math.round(rows / r.seconds)} rows/s (${
        r.seconds.toFixed(2)
      } s; copy ${r.copyMs} ms, process ${r.processMs} ms)`,
    );
  }
}
const line = (t: Target) => {
  const runs = results[t];
  const s = median(runs.map((r) => r.seconds));
  return `| ${t} | ${Math.round(rows / s).toLocaleString("en-US")} | ${s.toFixed(2)} | ${
    median(runs.map((r) => r.copyMs))
  } | ${median(runs.map((r) => r.processMs))} | ${median(runs.map((r) => r.pushdownMs))} |`;
};
const shards = results.citus[0].shardMs;
const cpus = navigator.hardwareConcurrency;
console.log(`
make bench CLUSTER=citus SIZE=${values.size}: ${
  rows.toLocaleString("en-US")
} rows, ${reps} run(s), ${
  new Date().toISOString().slice(0, 16)
}Z, ${cpus} cores (coordinator + 2 workers share them)

| target | rows/s (file path) | seconds | copy ms | process ms | pushed-down insert-select ms |
|---|---|---|---|---|---|
${line("single")}
${line("citus")}
${line("citus, 2 chunks")}

Pushed-down insert-select on Citus: ${shards.length} shard tasks, ${
  shards.reduce((a, b) => a + b, 0).toFixed(0)
} ms of shard work summed (${
  (shards.reduce((a, b) => a + b, 0) / (rows / 1_000_000)).toFixed(0)
} ms per 1M rows), ${Math.max(0, ...shards).toFixed(0)} ms the slowest task.
Projection: with one core per shard task the shard part takes about the slowest task; with C
cores per worker and W workers, about (summed / min(tasks, W x C)).`);
