// Where a Kafka consumer's memory goes: N consumers in this process (as deno task consume runs
// them) load an existing topic into a fresh database; prints Deno.memoryUsage() every second
// (RSS, V8 heap, external: ArrayBuffers), the peaks, the process's peak RSS (VmHWM), rows/s, and
// with --heap-profile the JS allocations by function (V8's sampling heap profiler, collected
// objects included). Run the V8 flags under test on the command line, e.g.
//   deno run -A --v8-flags=--heap-growing-percent=25 bench/kafka_memory.ts --topic bench-1a2b3c4d
// (make bench-kafka leaves its 1M-event backlog topic, bench-<run>, on the broker).
import { parseArgs } from "node:util";
import { Session } from "node:inspector/promises";
import { config } from "../scripts/lib/common/config.ts";
import { connect } from "../scripts/lib/common/db.ts";
import { logger } from "../scripts/lib/common/log.ts";
import { settings } from "../scripts/lib/batch/mod.ts";
import { testDb } from "../scripts/lib/testing/testdb.ts";
import { kafkaBroker } from "../scripts/lib/testing/kafka.ts";
import { KafkaSource } from "../scripts/lib/kafka/consumer.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    topic: { type: "string" },
    events: { type: "string", default: "1000000" },
    consumers: { type: "string", default: "2" },
    "max-rows": { type: "string", default: "20000" },
    "heap-profile": { type: "boolean", default: false },
  },
});
if (!values.topic) {
  console.error("usage: bench/kafka_memory.ts --topic NAME [--events N] [--consumers N] ...");
  Deno.exit(2);
}
const total = Number(values.events), n = Number(values.consumers);
const cfg = config();
const brokers = await kafkaBroker();
const db = await testDb(`kafka_memory_${crypto.randomUUID().slice(0, 6)}`);
const sql = connect({ url: db.url, role: cfg.INGEST_ROLE, max: 2 * n + 1 });
const group = `kafka-memory-${crypto.randomUUID().slice(0, 8)}`;
// the process's budget as deno task consume shares it
const budget = cfg.KAFKA_FETCH_AHEAD_MB * 1024 * 1024 / n;
const sources = Array.from({ length: n }, () =>
  new KafkaSource({
    client: { brokers: [brokers] },
    group,
    topics: new Map([[values.topic!, { format: "json" }]]),
    maxRows: Number(values["max-rows"]),
    maxWaitMs: 200,
    maxBytesInHand: budget,
    sql,
    settings: settings(cfg),
    log: logger("kafka-memory", { level: "warn", dir: "data/logs" }),
    watermarkIntervalMs: 0,
  }));
const profiler = values["heap-profile"] ? new Session() : undefined;
if (profiler) {
  profiler.connect();
  await profiler.post("HeapProfiler.enable");
  await profiler.post("HeapProfiler.startSampling", {
    samplingInterval: 65536,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
}
// MiB, as the peak RSS (VmHWM kB / 1024) and make bench-kafka print them
const mb = (b: number) => (b / 1024 / 1024).toFixed(0);
const t0 = performance.now();
const peak = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, inHand: 0 };
let tick = 0;
const sampler = setInterval(() => {
  const m = Deno.memoryUsage();
  const inHand = sources.reduce((s, c) => s + c.bytesInHand.now, 0);
  for (const k of ["rss", "heapTotal", "heapUsed", "external"] as const) {
    peak[k] = Math.max(peak[k], m[k]);
  }
  peak.inHand = Math.max(peak.inHand, inHand);
  if (tick++ % 10 === 0) {
    console.log(
      `${((performance.now() - t0) / 1000).toFixed(1)} s: RSS ${mb(m.rss)} MiB, heap ${
        mb(m.heapUsed)
      }/${mb(m.heapTotal)} MiB, external ${mb(m.external)} MiB, in hand ${mb(inHand)} MiB`,
    );
  }
}, 100);
for (const c of sources) await c.start();
while (true) {
  const [r] = await db.sql`
    select coalesce(sum(rows), 0)::int as n from quality.batch_metrics where source_kind = 'kafka'`;
  if (r.n >= total) break;
  await new Promise((r) => setTimeout(r, 100));
}
const seconds = (performance.now() - t0) / 1000;
clearInterval(sampler);
for (const c of sources) await c.stop();
const hwm = Number(/VmHWM:\s+(\d+)/.exec(Deno.readTextFileSync("/proc/self/status"))?.[1] ?? 0);
console.log(
  `${total} rows in ${seconds.toFixed(1)} s = ${Math.round(total / seconds)} rows/s; peak RSS ${
    (hwm / 1024).toFixed(0)
  } MiB (VmHWM); peaks sampled every 100 ms: RSS ${mb(peak.rss)}, heap used ${
    mb(peak.heapUsed)
  } of ${mb(peak.heapTotal)}, external ${mb(peak.external)}, bytes in hand ${
    mb(peak.inHand)
  } MiB (budget ${mb(budget * n)} MiB)`,
);
if (profiler) {
  interface Node {
    callFrame: { functionName: string; url: string; lineNumber: number };
    selfSize: number;
    children: Node[];
  }
  const { profile } = await profiler.post("HeapProfiler.stopSampling") as {
    profile: { head: Node };
  };
  const by = new Map<string, number>();
  const walk = (node: Node) => {
    const f = node.callFrame;
    const key = `${f.functionName || "(anonymous)"} ${f.url.split("/").slice(-2).join("/")}`;
    by.set(key, (by.get(key) ?? 0) + node.selfSize);
    for (const c of node.children) walk(c);
  };
  walk(profile.head);
  const all = [...by.values()].reduce((a, b) => a + b, 0);
  console.log(`JS allocations (sampled, collected ones included): ${mb(all)} MiB, by function:`);
  for (const [k, v] of [...by].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
    console.log(`${mb(v).padStart(6)} MiB  ${k}`);
  }
}
await sql.end();
await db.drop();
Deno.exit(0);
