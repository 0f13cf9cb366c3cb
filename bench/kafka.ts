// make bench-kafka: the Kafka source against the file path on the same seeded events, in the
// same run, each into a fresh database: committed rows/s end to end (a backlog of N events on
// a 4-partition topic, consumed from the start), and freshness (produce acknowledged -> rows
// visible in PostgreSQL, analytics included) while events stream at a steady pace. The file
// path two at a time runs again after the Kafka runs (the machine's speed drifts), and each
// timed run says what PostgreSQL, this process and the broker cost in CPU a row.
import { join } from "node:path";
import { parseArgs } from "node:util";
import { config } from "../scripts/lib/common/config.ts";
import { connect, type Sql } from "../scripts/lib/common/db.ts";
import { logger } from "../scripts/lib/common/log.ts";
import { loadFile, settings } from "../scripts/lib/batch/mod.ts";
import { testDb } from "../scripts/lib/testing/testdb.ts";
import { kafkaBroker } from "../scripts/lib/testing/kafka.ts";
import { generate } from "../scripts/lib/generator/generate.ts";
import { KafkaSource } from "../scripts/lib/kafka/consumer.ts";
import { EventProducer } from "../scripts/lib/kafka/producer.ts";
import { localDataDir, postgresCpu } from "./cpu.ts";

const HELP = `Usage: make bench-kafka [SIZE=1m]   (deno run -A bench/kafka.ts --size 1m)

  --size S        events: 10k, 100k, 1m (default 1m)
  --max-rows N    consumer micro-batch size (default 20000, as deno task consume)
  --consumers N   consumers of the backlog run, in one process (default: 1, then 2)
  --pace N        events/s of the freshness stream (default 2000, for 20 s)
  -h, --help      show this help

Starts the project's broker (scripts/kafka.sh up) when it is not running.`;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    size: { type: "string", default: "1m" },
    "max-rows": { type: "string", default: "20000" },
    consumers: { type: "string" },
    pace: { type: "string", default: "2000" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(HELP);
  Deno.exit(0);
}
const SIZES: Record<string, number> = { "10k": 10_000, "100k": 100_000, "1m": 1_000_000 };
const total = SIZES[values.size!];
const maxRows = Number(values["max-rows"]);
const pace = Number(values.pace);
if (!total || !(maxRows >= 1) || !(pace >= 1)) {
  console.error(
    `error: --size must be one of ${Object.keys(SIZES).join(", ")}; --max-rows, --pace >= 1`,
  );
  Deno.exit(2);
}

const cfg = config();
const log = logger("bench-kafka", { level: "warn", dir: "data/logs" });
const brokers = await kafkaBroker();
const dir = await Deno.makeTempDir({ prefix: "bench-kafka-" });
const run = crypto.randomUUID().slice(0, 8);
const perFile = Math.min(total, 100_000);
const say = (s: string) => console.log(`bench-kafka: ${s}`);
say(`${total} events (${total / perFile} files), broker ${brokers}, ${new Date().toISOString()}`);

const manifest = await generate({
  files: Math.ceil(total / perFile),
  events: perFile,
  seed: 1818,
  outDir: join(dir, "files"),
});
const files = manifest.files.map((f) => join(dir, "files", f.name));

/** the consumer process while a backlog run has one (its CPU is "self" then) */
let consumerPid: number | undefined;

/**
 * CPU time (ms) used so far by the PostgreSQL server's processes, this process (the loader) or
 * the consumer process and the Kafka broker, read from /proc (Linux; zeros elsewhere): on a machine
 * where they share the cores, what each costs a row tells where the time goes.
 */
function cpu(): { postgres: number; self: number; broker: number } {
  const out = { postgres: 0, self: 0, broker: 0 };
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync("/proc")];
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`);
      // PostgreSQL: this clone's cluster only (bench/cpu.ts), not others on the machine
      const who = Number(e.name) === (consumerPid ?? Deno.pid)
        ? "self"
        : cmd.includes("kafka.Kafka")
        ? "broker"
        : undefined;
      if (!who) continue;
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // utime + stime, and cutime + cstime: what its ended children used (the postmaster's
      // are the backends and workers that have exited), in clock ticks (100 a second)
      out[who] += (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 10;
    } catch {
      // the process ended meanwhile
    }
  }
  out.postgres = postgresCpu(localDataDir);
  return out;
}

/** CPU a row since `from`, e.g. "PostgreSQL 45.0 µs, this process 2.3 µs, broker 0.9 µs". */
function cpuPerRow(from: ReturnType<typeof cpu>, rows: number): string {
  const now = cpu();
  const per = (k: keyof typeof now) => ((now[k] - from[k]) * 1000 / rows).toFixed(1);
  const self = consumerPid === undefined ? "this process" : "the consumer process";
  return `CPU a row: PostgreSQL ${per("postgres")} µs, ${self} ${per("self")} µs, broker ${
    per("broker")
  } µs`;
}

async function committed(sql: Sql): Promise<number> {
  const [r] = await sql`
    select coalesce(sum(rows), 0)::int as n from quality.batch_metrics where source_kind = 'kafka'`;
  return r.n;
}

// 1. the file path
const fileDb = await testDb(`bench_kafka_files_${run}`);
let t0 = performance.now();
for (const f of files) await loadFile(fileDb.sql, f, settings(cfg));
const fileSeconds = (performance.now() - t0) / 1000;
await fileDb.drop();
say(
  `file path, one file at a time: ${manifest.totals.rows} rows in ${fileSeconds.toFixed(2)} s = ${
    Math.round(manifest.totals.rows / fileSeconds)
  } rows/s`,
);

// 1b. the file path as `deno task ingest` runs it by default: one file per core at a time.
//     Run again after the Kafka runs: the machine's speed drifts, and the two runs bound it.
const workers = navigator.hardwareConcurrency;
async function parallelFiles(label: string): Promise<number> {
  const db = await testDb(`bench_kafka_files_par_${label}_${run}`);
  const sql = connect({ url: db.url, role: cfg.INGEST_ROLE, max: workers + 1 });
  const t0 = performance.now();
  const before = cpu();
  let nextFile = 0;
  await Promise.all(Array.from({ length: workers }, async () => {
    while (nextFile < files.length) await loadFile(sql, files[nextFile++], settings(cfg));
  }));
  const seconds = (performance.now() - t0) / 1000;
  const perRow = cpuPerRow(before, manifest.totals.rows);
  await sql.end();
  await db.drop();
  say(
    `file path, ${workers} files at a time (deno task ingest's default --workers)${label}: ${manifest.totals.rows} rows in ${
      seconds.toFixed(2)
    } s = ${Math.round(manifest.totals.rows / seconds)} rows/s; ${perRow}`,
  );
  return seconds;
}
const parallelSeconds = await parallelFiles("");
let lastKafkaSeconds = NaN;

// 2. the Kafka path: the same events as a backlog on a 4-partition topic, consumed from the start
const topic = `bench-${run}`;
const producer = new EventProducer({
  client: { brokers: [brokers] },
  topic,
  routeByType: false,
  format: "json",
});
await producer.connect(4);
t0 = performance.now();
for (const f of files) await producer.sendFile(f);
say(
  `produced ${producer.sent} messages in ${
    ((performance.now() - t0) / 1000).toFixed(2)
  } s (not timed below)`,
);
// the backlog with 1 consumer, then 2 in the same group, each into a fresh database: `deno task
// consume --consumers N` in a process of its own, as users run it (default flags and settings
// but --consumers, --max-rows), so that its peak RSS is the consumer's alone; stopped with
// SIGTERM once every row is committed
const root = new URL("..", import.meta.url).pathname;
// deno.json's consume task as it stands ("deno run <flags> scripts/consume.ts"), its V8 flags
// included, run from the project's root
const consumeTask = (JSON.parse(Deno.readTextFileSync(join(root, "deno.json"))).tasks
  .consume as string).split(/\s+/).slice(1);
const counts = values.consumers ? [Number(values.consumers)] : [1, 2];
let kafkaDb = await testDb(`bench_kafka_topic_${run}`);
let sql = connect({ url: kafkaDb.url, role: cfg.INGEST_ROLE, max: 2 });
for (const [i, n] of counts.entries()) {
  if (i > 0) {
    await sql.end();
    await kafkaDb.drop();
    kafkaDb = await testDb(`bench_kafka_topic_${run}_${n}`);
    sql = connect({ url: kafkaDb.url, role: cfg.INGEST_ROLE, max: n + 1 });
  }
  t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...consumeTask,
      "--brokers",
      brokers,
      "--topic",
      topic,
      "--group",
      `bench-${run}-${n}`,
      "--consumers",
      String(n),
      "--max-rows",
      String(maxRows),
      "--metrics-port",
      "0",
    ],
    env: { DATABASE_URL: kafkaDb.url, LOG_LEVEL: "warn", LOG_DIR: join(dir, "logs") },
    cwd: root,
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  consumerPid = child.pid;
  // the consumer process's CPU from its start (a moment ago: its first milliseconds count)
  const kafkaCpu = { ...cpu(), self: 0 };
  let peakMb = 0;
  const rss = () => {
    try {
      const status = Deno.readTextFileSync(`/proc/${child.pid}/status`);
      peakMb = Math.max(peakMb, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
    } catch { /* exited */ }
  };
  let first: { at: number; rows: number } | undefined;
  for (let n = 0; n < manifest.totals.rows; n = await committed(kafkaDb.sql)) {
    if (n > 0) first ??= { at: performance.now(), rows: n };
    rss();
    await new Promise((r) => setTimeout(r, 50));
  }
  const end = performance.now();
  const kafkaSeconds = lastKafkaSeconds = (end - t0) / 1000;
  const kafkaCpuPerRow = cpuPerRow(kafkaCpu, manifest.totals.rows);
  rss();
  child.kill("SIGTERM");
  const status = await child.status;
  consumerPid = undefined;
  if (!status.success) throw new Error(`deno task consume exited with ${status.code}`);
  const joined = first ? (first.at - t0) / 1000 : 0;
  const steady = first ? (manifest.totals.rows - first.rows) / ((end - first.at) / 1000) : NaN;
  say(
    `kafka path, ${n} consumer(s): ${manifest.totals.rows} rows in ${kafkaSeconds.toFixed(2)} s = ${
      Math.round(manifest.totals.rows / kafkaSeconds)
    } rows/s (${
      (fileSeconds / kafkaSeconds * 100).toFixed(0)
    }% of the file path one file at a time, ${
      (parallelSeconds / kafkaSeconds * 100).toFixed(0)
    }% of ${workers} at a time; includes the process start and group join: first rows committed after ${
      joined.toFixed(2)
    } s, ${Math.round(steady)} rows/s from there); ${kafkaCpuPerRow}; consumer peak RSS ${
      peakMb.toFixed(0)
    } MB`,
  );
}

// 1b again, after the Kafka runs
const parallelAfter = await parallelFiles(", again");
say(
  `kafka path, ${
    counts.at(-1)
  } consumer(s), against the file path ${workers} at a time before and after it: ${
    (parallelSeconds / lastKafkaSeconds * 100).toFixed(0)
  }% and ${(parallelAfter / lastKafkaSeconds * 100).toFixed(0)}%`,
);

// 3. freshness: a steady stream of `pace` events/s for 20 s, produced in 100 ms slices; each
//    slice is visible once the committed row count reaches its cumulative count
const live = `live-${run}`;
const liveProducer = new EventProducer({
  client: { brokers: [brokers] },
  topic: live,
  routeByType: false,
  format: "json",
});
await liveProducer.connect(4);
const c = new KafkaSource({
  client: { brokers: [brokers] },
  group: `live-${run}`,
  topics: new Map([[live, { format: "json" }]]),
  maxRows,
  maxWaitMs: 100,
  sql,
  settings: settings(cfg),
  log,
  watermarkIntervalMs: 0,
});
await c.start();
await new Promise((r) => setTimeout(r, 3000)); // group join
const start = await committed(kafkaDb.sql);
const streamDir = join(dir, "stream");
const slice = Math.max(1, Math.round(pace / 10));
const stream = await generate({
  files: 200,
  events: slice,
  seed: 1819,
  outDir: streamDir,
  intervalSeconds: 0.1,
});
const acked: { at: number; cum: number }[] = [];
let cum = 0;
const polls: { at: number; n: number }[] = [];
let polling = true;
const poller = (async () => {
  while (polling) {
    polls.push({ at: performance.now(), n: (await committed(kafkaDb.sql)) - start });
    await new Promise((r) => setTimeout(r, 20));
  }
})();
const began = performance.now();
for (let k = 0; k < stream.files.length; k++) {
  const due = began + k * 100;
  const wait = due - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  await liveProducer.sendFile(join(streamDir, stream.files[k].name));
  cum += stream.files[k].rows;
  acked.push({ at: performance.now(), cum });
}
while ((await committed(kafkaDb.sql)) - start < cum) await new Promise((r) => setTimeout(r, 20));
await new Promise((r) => setTimeout(r, 100));
polling = false;
await poller;
const lat = acked.map((a) => {
  const seen = polls.find((p) => p.at >= a.at && p.n >= a.cum);
  return seen ? seen.at - a.at : NaN;
}).filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
say(
  `freshness at ${pace} events/s for 20 s: p50 ${pct(0.5).toFixed(0)} ms, p95 ${
    pct(0.95).toFixed(0)
  } ms, max ${
    lat[lat.length - 1].toFixed(0)
  } ms (${lat.length} slices; produce acknowledged -> committed, polled every 20 ms)`,
);
await c.stop();
await producer.disconnect();
await liveProducer.disconnect();
await sql.end({ timeout: 5 });
await kafkaDb.drop();
await Deno.remove(dir, { recursive: true });
Deno.exit(0);
