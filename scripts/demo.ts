// make demo: seeded files with anomalies -> the ingester -> counts checked against the
// generator's manifest -> the analytics report.
import { parseArgs } from "node:util";
import { config } from "./lib/common/config.ts";
import { connect } from "./lib/common/db.ts";
import { dirsFor, ensureDirs } from "./lib/ingest/inbox.ts";
import { logger } from "./lib/common/log.ts";
import { generate } from "./generate.ts";
import { Ingester } from "./ingest.ts";

const HELP = `Usage: deno run -A scripts/demo.ts [--files N] [--events N] [--seed N] [--no-report]

Generates seeded event files with anomalies, duplicates and late events into the inbox,
ingests them once, prints what went where next to what the generator's manifest predicted,
then prints the analytics report.`;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    files: { type: "string", default: "6" },
    events: { type: "string", default: "20000" },
    seed: { type: "string", default: "2026" },
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

console.log(
  `\n1. Generating ${values.files} files x ${values.events} events (seed ${values.seed})`,
);
const manifest = await generate({
  files: Number(values.files),
  events: Number(values.events),
  intervalSeconds: 3600,
  seed: Number(values.seed),
  anomalyRate: 0.03,
  duplicateRate: 0.02,
  lateRate: 0.02,
  outDir: dirs.inbox,
});

console.log(`\n2. Ingesting ${dirs.inbox} (one transaction per file)`);
const sql = connect({ max: 2 });
const started = performance.now();
const ingester = new Ingester({ dirs, sql, cfg, log });
const summary = await ingester.drain();
const seconds = (performance.now() - started) / 1000;

console.log("\n3. Where every row went (database vs the generator's manifest)\n");
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
