// make demo: seeded files with anomalies -> the ingester -> counts checked against the
// generator's manifest -> the analytics report.
import { parseArgs } from "node:util";
import { config } from "./lib/common/config.ts";
import { connect } from "./lib/common/db.ts";
import { dirsFor, ensureDirs } from "./lib/ingest/inbox.ts";
import { logger } from "./lib/common/log.ts";
import { generate } from "./generate.ts";
import { WEEKDAY_WEIGHTS } from "./lib/generator/file.ts";
import { Ingester } from "./ingest.ts";

const HELP = `Usage: deno run -A scripts/demo.ts [--files N] [--events N] [--days N] [--seed N]
                                      [--late-rate R] [--no-report]

A shop's recent history and its last minutes, through the pipeline:
1. history: one file per UTC day for the last --days days (rows per day follow the weekly
   cycle, times within a day the daily one) plus three busier days 45, 100 and 200 days ago,
   so customers return and RFM statuses spread. Loaded as a backfill: LATE_AFTER_SECONDS is
   raised for this step only, so history rows are not counted as late.
2. live: --files files of one minute each, ending now, with anomalies, duplicates and
   --late-rate late rows: the ingester flags about that share as late.
3. what went where, next to what the generator's manifest predicted; 4. the analytics report.

The demo adds to what the database holds (it says so). For a clean start: make reset && make demo.`;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    files: { type: "string", default: "6" },
    events: { type: "string", default: "5000" },
    days: { type: "string", default: "7" },
    seed: { type: "string", default: "2026" },
    "late-rate": { type: "string", default: "0.02" },
    "no-report": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(HELP);
  Deno.exit(0);
}

const cfg = config();
const log = logger("demo");
const dirs = dirsFor(`${cfg.DATA_DIR}/incoming`);
await ensureDirs(dirs);
const sql = connect({ max: 2 });
const seed = Number(values.seed);
const DAY = 86_400_000;

const [{ existing }] = await sql`select count(*)::int as existing from core.events`;
if (existing > 0) {
  console.log(
    `\nNOTE: the database already holds ${existing} events (an earlier demo or real data). ` +
      "The demo ADDS to them: every figure below includes them (history files already\n" +
      "      ingested are skipped as duplicate files; the live minutes are new each run).\n" +
      "      For a clean demo: make reset && make demo",
  );
}

// 1. history: day files (backfill), then 2. live files around now
const today = Math.floor(Date.now() / DAY) * DAY;
const days = Number(values.days);
const perDay = Number(values.events) * 4;
// older days hold more customers (the shop was busier; a run's user ids grow with its size):
// those who never came back are at_risk, dormant or churned in the RFM view
const historyDays: [number, number][] = ([[200, 2.5], [100, 2], [45, 1.5]] as [number, number][])
  .filter(([d]) => d > days);
for (let d = days; d >= 1; d--) {
  historyDays.push([d, WEEKDAY_WEIGHTS[new Date(today - d * DAY).getUTCDay()]]);
}
console.log(
  `\n1. History: ${historyDays.length} UTC days of about ${perDay} events (seed ${seed}), ` +
    "loaded as a backfill (not counted as late)",
);
const historyFiles: string[] = [];
for (const [ago, weight] of historyDays) {
  const m = await generate({
    files: 1,
    events: Math.round(perDay * weight),
    intervalSeconds: 86_400,
    startTime: new Date(today - ago * DAY),
    seed,
    anomalyRate: 0.01,
    duplicateRate: 0.005,
    lateRate: 0,
    outDir: dirs.inbox,
  });
  historyFiles.push(...m.files.map((f) => f.name));
}
const backfill = new Ingester({
  dirs,
  sql,
  cfg: { ...cfg, LATE_AFTER_SECONDS: 400 * 86_400 },
  log,
});
const history = await backfill.drain();
console.log(`   ${history.handled} files, ${history.rows} rows`);

const lateRate = Number(values["late-rate"]);
console.log(
  `\n2. Live: ${values.files} files x ${values.events} events, one minute each, ending now ` +
    `(late rate ${lateRate})`,
);
const manifest = await generate({
  files: Number(values.files),
  events: Number(values.events),
  intervalSeconds: 60,
  seed: seed + 1,
  anomalyRate: 0.03,
  duplicateRate: 0.02,
  lateRate,
  outDir: dirs.inbox,
});

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
