// make demo: one seeded shop's history and its last minutes (scripts/lib/generator/demo.ts plans
// the runs) -> the ingester -> live counts checked against the generator's manifest -> the
// analytics report. make demo-live (--live): the same shop keeps selling until Ctrl-C.
import { parseArgs } from "node:util";
import { config } from "./lib/common/config.ts";
import { connect } from "./lib/common/db.ts";
import { dirsFor, ensureDirs } from "./lib/common/inbox.ts";
import { logger } from "./lib/common/log.ts";
import { generate } from "./lib/generator/generate.ts";
import {
  DEMO_DEFAULTS,
  type DemoOptions,
  historyRuns,
  liveRun,
  paceAt,
  streamRun,
} from "./lib/generator/demo.ts";
import { Ingester } from "./lib/ingest/ingester.ts";

const D = DEMO_DEFAULTS;
const HELP = `Usage: deno run -A scripts/demo.ts [--days N] [--daily-events N] [--live-minutes N]
                                      [--seed N] [--late-rate R] [--no-report]
                                      [--live [--interval S]]

A shop's recent history and its last minutes, through the pipeline. History and live are one
shop: the same catalogue, prices and customers (--shop-seed of deno task generate), and the
same daily and weekly curve (--daily-events), so live minutes continue the history's pace.
1. history: one file per UTC day for the last --days days (default ${D.days}: the dashboard's 7
   days and the 7 before them), today from 00:00 to the live stretch, and three days 45, 100
   and 200 days ago that reach further into the customer base (so RFM statuses spread).
   Loaded as a backfill: LATE_AFTER_SECONDS is raised for this step only.
2. live: --live-minutes files of one minute each (default ${D.liveMinutes}), ending now, with
   anomalies, duplicates and --late-rate late rows: the ingester flags about that share as late.
3. what went where, next to what the generator's manifest predicted; 4. the analytics report.

--daily-events N   rows of a weekday-weight-1 day (default ${D.dailyEvents}: about 1.2 events/s on
                   average, 2 at the 20:00 UTC peak, 0.2 at 03:00)
--live             make demo-live: no history; a file every --interval seconds (default 10) on
                   the same curve and shop, ingested as it comes, until Ctrl-C or SIGTERM (the
                   file in hand is finished and loaded)

The demo adds to what the database holds (it says so). For a clean start: make reset && make demo.`;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    days: { type: "string", default: String(D.days) },
    "daily-events": { type: "string", default: String(D.dailyEvents) },
    "live-minutes": { type: "string", default: String(D.liveMinutes) },
    seed: { type: "string", default: String(D.seed) },
    "late-rate": { type: "string", default: String(D.lateRate) },
    "no-report": { type: "boolean", default: false },
    live: { type: "boolean", default: false },
    interval: { type: "string", default: "10" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(HELP);
  Deno.exit(0);
}
const whole = (flag: string, text: string, min: number, max: number) => {
  const n = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!(n >= min && n <= max)) {
    console.error(`error: --${flag} must be a whole number from ${min} to ${max} (got "${text}")`);
    Deno.exit(2);
  }
  return n;
};
const lateRate = Number(values["late-rate"]);
if (!(lateRate >= 0 && lateRate <= 1)) {
  console.error(`error: --late-rate must be a number from 0 to 1 (got "${values["late-rate"]}")`);
  Deno.exit(2);
}
const demo: DemoOptions = {
  days: whole("days", values.days, 1, 180),
  dailyEvents: whole("daily-events", values["daily-events"], 100, 10_000_000),
  liveMinutes: whole("live-minutes", values["live-minutes"], 1, 600),
  seed: whole("seed", values.seed, 0, 2 ** 31),
  lateRate,
};

const cfg = config();
const log = logger("demo");
const dirs = dirsFor(`${cfg.DATA_DIR}/incoming`);
await ensureDirs(dirs);
// the backfill loads a file per core at once, as deno task ingest does (measured in
// docs/shop-data.md); each worker a connection for its file and one to spare
const workers = Math.max(1, navigator.hardwareConcurrency);
const sql = connect({ max: workers * 2 + 1 });

if (values.live) Deno.exit(await streamLive());

const [{ existing }] = await sql`select count(*)::int as existing from core.events`;
if (existing > 0) {
  console.log(
    `\nNOTE: the database already holds ${existing} events (an earlier demo or real data). ` +
      "The demo ADDS to them: every figure below includes them (history files already\n" +
      "      ingested are skipped as duplicate files; today and the live minutes are new each run).\n" +
      "      For a clean demo: make reset && make demo",
  );
}

// 1. history: day files (backfill), then 2. live files around now
const now = Date.now();
const runs = historyRuns(demo, now, dirs.inbox);
console.log(
  `\n1. History: ${runs.length} files (${demo.days} UTC days, today so far and 3 days long ago), ` +
    `${demo.dailyEvents} events a day on the daily curve (seed ${demo.seed}), ` +
    "loaded as a backfill (not counted as late)",
);
for (const run of runs) await generate(run);
const backfill = new Ingester({
  dirs,
  sql,
  cfg: { ...cfg, LATE_AFTER_SECONDS: 400 * 86_400 },
  log,
  workers,
});
const history = await backfill.drain();
console.log(`   ${history.handled} files, ${history.rows} rows`);

console.log(
  `\n2. Live: ${demo.liveMinutes} files of one minute each, ending now, at the curve's pace ` +
    `(${paceAt(demo, now).toFixed(2)} events/s this hour; late rate ${lateRate})`,
);
const manifest = await generate(liveRun(demo, now, dirs.inbox));

const started = performance.now();
const ingester = new Ingester({ dirs, sql, cfg, log });
const summary = await ingester.drain();
const seconds = (performance.now() - started) / 1000;

console.log("\n3. Where every live row went (database vs the generator's manifest)\n");
const names = manifest.files.map((f) => f.name);
const metrics = await sql`
  select source_name, rows, valid, duplicates, invalid, late
  from quality.batch_metrics where source_name in ${sql(names)}`;
const byName = new Map(metrics.map((m) => [m.source_name as string, m]));
const table: string[][] = [["file", "rows", "valid", "duplicates", "invalid", "late", "manifest"]];
let allMatch = true;
for (const f of manifest.files) {
  const m = byName.get(f.name);
  const match = !!m && m.rows === f.rows && m.valid === f.valid &&
    m.duplicates === f.duplicates && m.invalid === f.invalid;
  allMatch &&= match;
  table.push([
    f.name,
    String(m?.rows ?? "-"),
    String(m?.valid ?? "-"),
    String(m?.duplicates ?? "-"),
    String(m?.invalid ?? "-"),
    String(m?.late ?? "-"),
    match ? "matches" : "DIFFERS",
  ]);
}
const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
for (const [i, row] of table.entries()) {
  console.log(
    row.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join("  "),
  );
  if (i === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "));
}
const [reasons] = await sql`
  select coalesce(json_object_agg(reason, n order by n desc), '{}') as top
  from (
    select reason, count(*) as n from quality.dead_letter, unnest(reasons) as reason
    group by reason order by n desc limit 8
  ) as r`;
console.log(`\nTop dead-letter reasons: ${JSON.stringify(reasons.top)}`);
const late = metrics.reduce((n, m) => n + Number(m.late), 0);
const valid = metrics.reduce((n, m) => n + Number(m.valid), 0);
console.log(
  `Late (older than LATE_AFTER_SECONDS=${cfg.LATE_AFTER_SECONDS} at ingestion): ${late} of ` +
    `${valid} valid live rows = ${(late / Math.max(valid, 1) * 100).toFixed(2)} % ` +
    `(late rate configured: ${(lateRate * 100).toFixed(2)} % of the regular rows)`,
);
console.log(
  `${summary.handled} files, ${summary.rows} rows in ${seconds.toFixed(1)} s; ` +
    (allMatch ? "every count matches the manifest." : "some counts differ from the manifest!"),
);
await sql.end();

if (!values["no-report"]) {
  console.log("\nKeep a live stream going (Ctrl-C stops it): make demo-live");
  console.log("\n4. The analytics report (deno task report)\n");
  const report = new URL("./report.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", report, "--limit", "5"],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!out.success) Deno.exit(out.code);
}
Deno.exit(allMatch && summary.failed === 0 ? 0 : 1);

/** make demo-live: the generator writes a file every 10 s, the ingester loads it; Ctrl-C stops. */
async function streamLive(): Promise<number> {
  const stop = new AbortController();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  const onSignal = () => {
    if (!stop.signal.aborted) console.log("\nstopping: finishing the file in hand and loading it");
    stop.abort();
  };
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  const run = streamRun(demo, dirs.inbox, whole("interval", values.interval, 1, 3600));
  console.log(
    `Live stream: a file every ${run.intervalSeconds} s on the demo's daily curve ` +
      `(${paceAt(demo, Date.now()).toFixed(2)} events/s this hour), the demo's shop; ` +
      "ingested as it comes. Ctrl-C stops.",
  );
  const ingester = new Ingester({ dirs, sql, cfg, log, signal: stop.signal });
  const watching = ingester.watch();
  const started = performance.now();
  const manifest = await generate({
    ...run,
    signal: stop.signal,
    onFile(file, totals) {
      const s = (performance.now() - started) / 1000;
      console.log(
        `${new Date().toISOString().slice(11, 19)} UTC  ${file.name}  ${file.rows} rows  ` +
          `(${totals.rows} in ${s.toFixed(0)} s = ${(totals.rows / s).toFixed(2)}/s)`,
      );
    },
  });
  await watching;
  // what the last file brought, loaded after the watcher stopped
  const last = await new Ingester({ dirs, sql, cfg, log }).drain();
  for (const s of signals) Deno.removeSignalListener(s, onSignal);
  await sql.end();
  console.log(
    `stopped: ${manifest.totals.files} files, ${manifest.totals.rows} rows written` +
      (last.handled ? `, the last ${last.handled} loaded after the stop` : ""),
  );
  return last.failed === 0 ? 0 : 1;
}
