// make load-test SCENARIO=browser: the public endpoint POST /v1/collect under k6 (load/browser.js)
// at 100-event batches, at the tracker's real shape (many clients, a few events a request) and
// from one abusive address; then the file path on generated rows, in the same run. For each:
// events stored against events acknowledged (nothing lost, nothing twice), 429s, and the CPU an
// event (a row) of the collector (the loader) and of PostgreSQL, from /proc. docs/tracking.md.
import { join } from "node:path";
import { parseArgs } from "node:util";
import { config } from "../scripts/lib/common/config.ts";
import { connect } from "../scripts/lib/common/db.ts";
import { cpuOf, localDataDir, postgresCpu as clusterCpu } from "../bench/cpu.ts";
import { filePathCost, healthy } from "../bench/yardstick.ts";

const postgresCpu = () => clusterCpu(localDataDir);

const { values } = parseArgs({
  args: Deno.args,
  options: {
    k6: { type: "string", default: "k6" },
    duration: { type: "string", default: Deno.env.get("DURATION") ?? "30s" },
    "tracker-vus": { type: "string", default: Deno.env.get("VUS") ?? "200" },
    "file-rows": { type: "string", default: "100000" },
    port: { type: "string", default: Deno.env.get("SERVE_PORT") ?? "8080" },
  },
});
const root = new URL("..", import.meta.url).pathname;
const cfg = config();
const base = `http://127.0.0.1:${values.port}`;
const run = `${Date.now()}`;
const say = (s: string) => console.log(`load-browser: ${s}`);

if (await healthy(base)) {
  console.error(
    `error: something already answers on ${base}: stop it (this run starts its own collector)`,
  );
  Deno.exit(2);
}

const owner = connect({ max: 1, role: Deno.env.get("OWNER_ROLE") ?? "pipeline_owner" });
const origin = "https://loadtest.example";
const [{ key }] = await owner`
  select ingest.add_site_key('loadtest', array[${origin}], 10000000, 'load/browser.ts') as key`;

const serve = new Deno.Command(Deno.execPath(), {
  args: ["run", "--allow-all", "scripts/serve.ts", "--port", values.port],
  cwd: root,
  env: { BROWSER_TRUST_PROXY: "1", LOG_LEVEL: "warn" },
  stdout: "null",
  stderr: "inherit",
}).spawn();
for (let i = 0; i < 150 && !await healthy(base); i++) await new Promise((r) => setTimeout(r, 200));
if (!await healthy(base)) {
  console.error("error: deno task serve did not come up");
  Deno.exit(1);
}
say(`collector pid ${serve.pid} on ${base}, key ${key}, ${navigator.hardwareConcurrency} cores`);
const outDir = join(root, "load/results");
await Deno.mkdir(outDir, { recursive: true });

interface Phase {
  shape: string;
  seconds: number;
  requests: number;
  events_sent: number;
  events_acknowledged: number;
  events_stored: number;
  events_dead_lettered: number;
  events_indeterminate: number;
  requests_429: number;
  requests_503: number;
  p95_ms: number;
  events_per_s: number;
  cpu_us_per_event: { collector: number; postgres: number; total: number };
  /** all CPU (collector + PostgreSQL) over all requests, answered 429 ones included */
  cpu_us_per_request: number;
  nothing_lost_nothing_twice: boolean;
}

async function phase(shape: string, vus: string, duration: string): Promise<Phase> {
  const runId = `${run}-${shape}`;
  const summaryFile = join(outDir, `browser-${shape}-${run}-k6.json`);
  const cpu0 = { collector: cpuOf(serve.pid), postgres: postgresCpu() };
  const t0 = performance.now();
  const k6 = await new Deno.Command(values.k6, {
    args: ["run", "--quiet", "--summary-export", summaryFile, join(root, "load/browser.js")],
    env: {
      BASE_URL: base,
      SITE_KEY: key,
      ORIGIN: origin,
      RUN_ID: runId,
      SHAPE: shape,
      VUS: vus,
      DURATION: duration,
    },
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  // the deferred analytics rounds (every 250 ms) finish the batches' rollups
  await new Promise((r) => setTimeout(r, 2000));
  const seconds = (performance.now() - t0) / 1000 - 2;
  const cpu1 = { collector: cpuOf(serve.pid), postgres: postgresCpu() };
  // deno-lint-ignore no-explicit-any
  const m: any = JSON.parse(await Deno.readTextFile(summaryFile)).metrics;
  const count = (n: string) => Number(m[n]?.count ?? 0);
  const [db] = await owner`
    select (select count(*)::int from core.events where session_id like ${`k6-${runId}-%`}) as stored,
           (select count(*)::int from quality.dead_letter where session_id like ${`k6-${runId}-%`})
             as dead`;
  const acknowledged = count("events_acknowledged");
  const per = (ms: number) => Math.round(ms * 1000 / Math.max(1, db.stored) * 10) / 10;
  const collector = per(cpu1.collector - cpu0.collector);
  const postgres = per(cpu1.postgres - cpu0.postgres);
  const p: Phase = {
    shape,
    seconds: Math.round(seconds * 10) / 10,
    requests: count("http_reqs"),
    events_sent: count("events_sent"),
    events_acknowledged: acknowledged,
    events_stored: db.stored,
    events_dead_lettered: db.dead,
    events_indeterminate: count("events_indeterminate"),
    requests_429: count("requests_429"),
    requests_503: count("requests_503"),
    p95_ms: Math.round(Number(m["http_req_duration"]?.["p(95)"] ?? 0) * 10) / 10,
    events_per_s: Math.round(db.stored / seconds),
    cpu_us_per_event: { collector, postgres, total: Math.round((collector + postgres) * 10) / 10 },
    cpu_us_per_request: Math.round(
      (cpu1.collector - cpu0.collector + cpu1.postgres - cpu0.postgres) * 1000 /
        Math.max(1, count("http_reqs")),
    ),
    nothing_lost_nothing_twice: db.stored === acknowledged && db.dead === 0 &&
      count("events_indeterminate") === 0 && k6.success,
  };
  say(
    `${shape}: ${p.requests} requests, ${p.events_stored} events stored of ${p.events_acknowledged} acknowledged` +
      ` (${p.events_per_s}/s), 429: ${p.requests_429}, 503: ${p.requests_503}, p95 ${p.p95_ms} ms; ` +
      `CPU an event: collector ${collector} µs + PostgreSQL ${postgres} µs = ${p.cpu_us_per_event.total} µs` +
      `, a request: ${p.cpu_us_per_request} µs` +
      (p.nothing_lost_nothing_twice ? "" : "  MISMATCH or k6 thresholds failed"),
  );
  return p;
}

const phases: Phase[] = [];
try {
  phases.push(await phase("batch100", "4", values.duration));
  phases.push(await phase("tracker", values["tracker-vus"], values.duration));
  phases.push(await phase("abuse", "4", "15s"));
} finally {
  serve.kill("SIGTERM");
  await serve.status;
}

// the file path on the same machine in the same run: generated rows, loaded in this process
const file = await filePathCost(
  cfg,
  Number(values["file-rows"]),
  3030,
  `load_browser_files_${run}`,
);
const fileRows = file.rows;
say(
  `file path: ${fileRows} rows in ${file.seconds} s (${file.rows_per_s}/s); CPU a row: loader ${file.cpu_us_per_row.loader} µs + PostgreSQL ${file.cpu_us_per_row.postgres} µs = ${file.cpu_us_per_row.total} µs`,
);
await owner`select ingest.revoke_site_key(${key})`;
await owner.end();

const out = join(outDir, `browser-${new Date().toISOString().replace(/[:.]/g, "")}.json`);
await Deno.writeTextFile(
  out,
  JSON.stringify({ run, finished_at: new Date().toISOString(), phases, file }, null, 2),
);
say(`results: ${out}`);
const ok = phases.every((p) => p.nothing_lost_nothing_twice) &&
  phases.find((p) => p.shape === "abuse")!.requests_429 > 0;
if (!ok) console.error("load-browser: FAILED (see above)");
Deno.exit(ok ? 0 : 1);
