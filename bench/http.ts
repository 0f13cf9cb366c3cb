// make bench-http: what an event costs the server over HTTP (POST /v1/events, API key, CSV) next
// to what a row costs the file path, in the same run. k6 (load/steady.js) sends batches of 100
// and of 1000 events at a fixed rate of POSTs; k6 runs on the same cores, so what is compared is
// the server's CPU (the collector process + every process of this PostgreSQL cluster, ended
// backends included: bench/cpu.ts), not wall time. Per phase: p95, requests shed (429/503), events
// stored against acknowledged (lost, duplicated), CPU an event. The file path (loadFile on a
// generated file, in this process) runs before and after the HTTP phases: its CPU a row drifts
// with the machine too, both are printed.
//
// --variant NAME:K=V,K=V (repeatable) starts the collector with those environment variables;
// --rounds N runs the variants alternately N times (an A/B on one machine in one session); a
// variant's DATABASE_URL (a database of this cluster) is where its phases' events are counted.
// --sweep finds the knee: for each variant and batch size, the rates of --sweep-100 and
// --sweep-1000 (POST/s) in order, stopping at the first one that misses the bar (p95 >= 100 ms,
// a request shed or not sent, an event lost or duplicated); the knee is the highest rate that
// met it.
import { join } from "node:path";
import { parseArgs } from "node:util";
import { config } from "../scripts/lib/common/config.ts";
import { connect } from "../scripts/lib/common/db.ts";
import { cpuOf, localDataDir, postgresCpu } from "./cpu.ts";
import { filePathCost, healthy } from "./yardstick.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    k6: { type: "string", default: "k6" },
    duration: { type: "string", default: Deno.env.get("DURATION") ?? "30s" },
    "rate-100": { type: "string", default: Deno.env.get("RATE_100") ?? "100" },
    "rate-1000": { type: "string", default: Deno.env.get("RATE_1000") ?? "15" },
    "file-rows": { type: "string", default: "100000" },
    port: { type: "string", default: Deno.env.get("SERVE_PORT") ?? "8080" },
    variant: { type: "string", multiple: true },
    rounds: { type: "string", default: "1" },
    sweep: { type: "boolean", default: false },
    "sweep-100": { type: "string", default: "5,10,20,30,40,60,80,100" },
    "sweep-1000": { type: "string", default: "1,2,3,4,6,8,10,15" },
  },
});
const root = new URL("..", import.meta.url).pathname;
const cfg = config();
const base = `http://127.0.0.1:${values.port}`;
const run = `${Date.now()}`;
const apiKey = `bench-http-${run}`;
const say = (s: string) => console.log(`bench-http: ${s}`);
const outDir = join(root, "load/results");
await Deno.mkdir(outDir, { recursive: true });
const us = (ms: number, n: number) => Math.round(ms * 1000 / Math.max(1, n) * 10) / 10;

interface Variant {
  name: string;
  env: Record<string, string>;
}
const variants: Variant[] = (values.variant ?? ["default:"]).map((v) => {
  const [name, rest = ""] = v.split(/:(.*)/s, 2);
  const env: Record<string, string> = {};
  for (const kv of rest.split(",").filter(Boolean)) {
    const i = kv.indexOf("=");
    if (i < 1) throw new Error(`--variant ${v}: expected NAME:KEY=VALUE,KEY=VALUE`);
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return { name, env };
});

if (await healthy(base)) {
  console.error(`error: something already answers on ${base}: stop it (this bench starts its own)`);
  Deno.exit(2);
}

/** The file path on a generated file in a database of its own on this cluster: CPU a row. */
async function filePath(seed: number) {
  const f = await filePathCost(
    cfg,
    Number(values["file-rows"]),
    seed,
    `bench_http_files_${run}_${seed}`,
  );
  say(
    `file path: ${f.rows} rows in ${f.seconds} s; CPU a row: loader ${f.cpu_us_per_row.loader} µs + PostgreSQL ${f.cpu_us_per_row.postgres} µs = ${f.cpu_us_per_row.total} µs`,
  );
  return f;
}

const ownerRole = Deno.env.get("OWNER_ROLE") ?? "pipeline_owner";
const owner = connect({ max: 1, role: ownerRole });
/** The events a phase stored are counted in the database its collector wrote to. */
const owners = new Map<string, ReturnType<typeof connect>>();
const ownerOf = (v: Variant) => {
  const url = v.env.DATABASE_URL;
  if (!url) return owner;
  if (!owners.has(url)) owners.set(url, connect({ url, max: 1, role: ownerRole }));
  return owners.get(url)!;
};

/** One k6 phase against a running collector: batches of `batch` events at `rate` POST/s. */
async function phase(variant: Variant, pid: number, batch: number, rate: string, round: number) {
  // the rate too: a sweep runs one batch size at several rates in one round
  const runId = `${run}-${variant.name}-${batch}-${round}-r${rate}`;
  const summaryFile = join(
    outDir,
    `http-${variant.name}-${batch}-${run}-${round}-r${rate}-k6.json`,
  );
  const cpu0 = { collector: cpuOf(pid), postgres: postgresCpu(localDataDir) };
  const t0 = performance.now();
  const k6 = await new Deno.Command(values.k6, {
    args: ["run", "--quiet", "--summary-export", summaryFile, join(root, "load/steady.js")],
    env: {
      BASE_URL: base,
      API_KEY: apiKey,
      RUN_ID: runId,
      BATCH: String(batch),
      RATE: rate,
      DURATION: values.duration,
      P95_MS: "100",
      VUS: "40",
      MAX_VUS: "200",
    },
    stdout: "null",
    stderr: "inherit",
  }).output();
  // the deferred analytics rounds finish the last batches' rollups
  await new Promise((r) => setTimeout(r, 2000));
  const seconds = (performance.now() - t0) / 1000 - 2;
  const cpu1 = { collector: cpuOf(pid), postgres: postgresCpu(localDataDir) };
  // deno-lint-ignore no-explicit-any
  const m: any = JSON.parse(await Deno.readTextFile(summaryFile)).metrics;
  const count = (n: string) => Number(m[n]?.count ?? 0);
  const [db] = await ownerOf(variant)`
    select count(*)::int as stored, count(distinct batch_id)::int as batches
    from core.events where session_id like ${`k6-${runId}-%`}`;
  const acknowledged = count("events_acknowledged");
  const indeterminate = count("events_indeterminate");
  const requests = count("http_reqs");
  const collector = us(cpu1.collector - cpu0.collector, db.stored);
  const postgres = us(cpu1.postgres - cpu0.postgres, db.stored);
  const p = {
    variant: variant.name,
    round,
    batch,
    rate_per_s: Number(rate),
    seconds: Math.round(seconds * 10) / 10,
    requests,
    requests_shed: Math.round(count("events_shed") / batch),
    dropped_iterations: count("dropped_iterations"),
    events_acknowledged: acknowledged,
    events_stored: db.stored,
    events_indeterminate: indeterminate,
    lost: Math.max(0, acknowledged - db.stored),
    duplicated: Math.max(0, db.stored - acknowledged - indeterminate),
    group_transactions: db.batches,
    p95_ms: Math.round(Number(m["http_req_duration{route:/v1/events}"]?.["p(95)"] ?? 0) * 10) / 10,
    cpu_us_per_event: { collector, postgres, total: Math.round((collector + postgres) * 10) / 10 },
    k6_thresholds_passed: k6.success,
  };
  say(
    `${variant.name} ${batch}-event batches at ${rate}/s (round ${round}): ${requests} requests, ` +
      `${p.requests_shed} shed, ${p.dropped_iterations} not sent (k6 short of VUs), p95 ${p.p95_ms} ms; ` +
      `${db.stored} events stored of ${acknowledged} acknowledged (lost ${p.lost}, duplicated ${p.duplicated}) ` +
      `in ${db.batches} transactions; CPU an event: collector ${collector} µs + PostgreSQL ${postgres} µs = ${p.cpu_us_per_event.total} µs`,
  );
  return p;
}

/** Whether a phase met the knee's bar: p95 < 100 ms, nothing shed or unsent, lost or duplicated. */
const atBar = (p: Awaited<ReturnType<typeof phase>>) =>
  p.requests_shed === 0 && p.dropped_iterations === 0 && p.lost === 0 && p.duplicated === 0 &&
  p.p95_ms < 100;

/** --sweep: the knee of each batch size, the highest rate of its list that met the bar. */
const knees: {
  variant: string;
  round: number;
  batch: number;
  knee: number | null;
  tried: number[];
}[] = [];

/** Starts the collector with the variant's environment, runs both batch sizes, stops it. */
async function http(variant: Variant, round: number) {
  const serve = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "scripts/serve.ts", "--port", values.port],
    cwd: root,
    env: { API_KEYS: apiKey, LOG_LEVEL: "warn", ...variant.env },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  try {
    for (let i = 0; i < 150 && !await healthy(base); i++) {
      await new Promise((r) => setTimeout(r, 200));
    }
    if (!await healthy(base)) throw new Error("deno task serve did not come up");
    if (values.sweep) {
      const out = [];
      for (
        const [batch, list] of [[100, values["sweep-100"]], [1000, values["sweep-1000"]]] as const
      ) {
        const k = {
          variant: variant.name,
          round,
          batch,
          knee: null as number | null,
          tried: [] as number[],
        };
        for (const rate of list.split(",").map((r) => r.trim()).filter(Boolean)) {
          const p = await phase(variant, serve.pid, batch, rate, round);
          out.push(p);
          k.tried.push(Number(rate));
          if (!atBar(p)) break;
          k.knee = Number(rate);
        }
        knees.push(k);
        say(
          `${variant.name} ${batch}-event batches (round ${round}): knee ${
            k.knee === null
              ? `below ${k.tried[0]} POST/s`
              : `${k.knee} POST/s (${k.knee * batch} events/s)`
          }`,
        );
      }
      return out;
    }
    return [
      await phase(variant, serve.pid, 100, values["rate-100"], round),
      await phase(variant, serve.pid, 1000, values["rate-1000"], round),
    ];
  } finally {
    serve.kill("SIGTERM");
    await serve.status;
  }
}

const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
say(
  `${new Date().toISOString()}, ${navigator.hardwareConcurrency} cores, load ${load()}; variants ${
    variants.map((v) => `${v.name} ${JSON.stringify(v.env)}`).join(", ")
  }`,
);
const files = [await filePath(3131)];
const phases: Awaited<ReturnType<typeof phase>>[] = [];
try {
  for (let round = 1; round <= Number(values.rounds); round++) {
    for (const v of variants) phases.push(...await http(v, round));
  }
} finally {
  await owner.end();
  for (const o of owners.values()) await o.end();
}
files.push(await filePath(3132));
say(`load at the end ${load()}`);

const fileCpu = (files[0].cpu_us_per_row.total + files[1].cpu_us_per_row.total) / 2;
say(
  `ratios, server CPU an event over the file path's CPU a row (${
    fileCpu.toFixed(1)
  } µs, mean of the two file runs); targets: <= 1.5x at 100-event batches, <= 1.2x at 1000:`,
);
for (const p of phases) {
  const ok = atBar(p);
  say(
    `  ${p.variant} round ${p.round}, ${p.batch}-event batches at ${p.rate_per_s}/s: ${
      (p.cpu_us_per_event.total / fileCpu).toFixed(2)
    }x; ${ok ? "nothing shed, lost or duplicated, p95 < 100 ms" : "NOT at the knee's bar"}`,
  );
}
for (const k of knees) {
  const p = phases.find((x) =>
    x.variant === k.variant && x.round === k.round && x.batch === k.batch && x.rate_per_s === k.knee
  );
  say(
    `  knee, ${k.variant} round ${k.round}, ${k.batch}-event batches: ${
      k.knee === null
        ? `none (the lowest rate tried, ${k.tried[0]}/s, missed the bar)`
        : `${k.knee} POST/s = ${k.knee * k.batch} events/s, p95 ${p!.p95_ms} ms, ${
          (p!.cpu_us_per_event.total / fileCpu).toFixed(2)
        }x the file path's CPU a row${k.tried.at(-1) === k.knee ? " (the highest rate tried)" : ""}`
    }`,
  );
}
const out = join(outDir, `http-${new Date().toISOString().replace(/[:.]/g, "")}.json`);
await Deno.writeTextFile(
  out,
  JSON.stringify({ run, finished_at: new Date().toISOString(), files, phases, knees }, null, 2),
);
say(`results: ${out}`);
Deno.exit(phases.every((p) => p.lost === 0 && p.duplicated === 0) ? 0 : 1);
