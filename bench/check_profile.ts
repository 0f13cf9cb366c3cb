// Per-row cost of the validation and dedupe steps, without the rest of the pipeline:
//   deno run -A bench/check_profile.ts [--rows 200000] [--anomaly-rate 0.02] [--reps 3]
// Generates one seeded file (cached in bench/data/), COPYs it into a batch's staging table in
// one transaction, then times ingest.check_stage, ingest.accept_checked and the whole
// ingest.process_batch (each --reps times, median, in a savepoint rolled back after each), and
// rolls back: nothing is stored. Uses a database of its own (check_profile, dropped at the end),
// with db/functions applied, so the current files are what is measured.
import { join } from "node:path";
import { parseFlags } from "../scripts/lib/common/cli.ts";
import { loadConfig } from "../scripts/lib/common/config.ts";
import { connect, withDatabase } from "../scripts/lib/common/db.ts";
import { CsvScanner } from "../scripts/lib/batch/mod.ts";
import { copyStream, malformedJson, settings } from "../scripts/lib/batch/mod.ts";
import { applyDefinitions, createDatabase, dbmate } from "../scripts/lib/migrate/migrate.ts";
import { dbmatePath } from "../scripts/lib/testing/testdb.ts";
import { generate, type Manifest } from "../scripts/lib/generator/generate.ts";

const HELP = `Usage: deno run -A bench/check_profile.ts [--rows N] [--anomaly-rate R] [--reps N]`;
const values = parseFlags(Deno.args, {
  rows: { type: "string", default: "200000" },
  "anomaly-rate": { type: "string", default: "0.02" },
  "id-version": { type: "string", default: "7" },
  reps: { type: "string", default: "3" },
}, HELP);
const rows = Number(values.rows);
const anomalyRate = Number(values["anomaly-rate"]);
const reps = Number(values.reps);
const idVersion = Number(values["id-version"]) as 4 | 7;

const dir = new URL(`./data/profile-${rows}-${anomalyRate}-v${idVersion}`, import.meta.url)
  .pathname;
let file: string;
try {
  const m = JSON.parse(await Deno.readTextFile(join(dir, "manifest.json"))) as Manifest;
  file = join(dir, m.files[0].name);
} catch {
  const m = await generate({
    files: 1,
    events: rows,
    seed: 99,
    idVersion,
    anomalyRate,
    outDir: dir,
    manifestPath: join(dir, "manifest.json"),
  });
  file = join(dir, m.files[0].name);
}

const cfg = loadConfig();
const url = withDatabase(cfg.DATABASE_URL, "check_profile");
await createDatabase(url).catch(() => {});
await dbmate(await dbmatePath(), url, "up");
const sql = connect({ url, max: 1 });
await applyDefinitions(sql);
const s = settings(cfg);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const out: Record<string, number> = {};

await sql.begin(async (tx) => {
  const bytes = await Deno.readFile(file);
  const nl = bytes.indexOf(10);
  const header = new TextDecoder().decode(bytes.subarray(0, nl)).trim().split(",");
  const [{ opened }] = await tx`
    select ingest.open_batch('file', 'profile', ${bytes.length}, ${header}::text[]) as opened`;
  const scanner = new CsvScanner();
  async function* body() {
    const b = scanner.push(bytes);
    if (b.length) yield b;
    const tail = scanner.end();
    if (tail.length) yield tail;
  }
  await copyStream(
    tx,
    `copy ${opened.copy_table} (${opened.copy_columns}) from stdin (format csv)`,
    body(),
  );
  await tx`analyze pg_temp.stage`;
  const timeIt = async (name: string, q: () => Promise<unknown>) => {
    const ms: number[] = [];
    for (let i = 0; i < reps; i++) {
      await tx`savepoint p`;
      const t = performance.now();
      await q();
      ms.push(performance.now() - t);
      await tx`rollback to savepoint p`;
    }
    out[`${name}_ms`] = Math.round(median(ms));
    out[`${name}_us_per_row`] = Math.round(median(ms) * 1000 / scanner.rows * 100) / 100;
  };
  await timeIt("check_stage", () => tx`select ingest.check_stage(${tx.json(s)}::jsonb)`);
  await tx`select ingest.check_stage(${tx.json(s)}::jsonb)`;
  const [c] = await tx`
    select count(*)::int as n, count(*) filter (where is_valid)::int as valid from pg_temp.checked`;
  out.checked = c.n;
  out.valid = c.valid;
  await timeIt(
    "accept_checked",
    () => tx`select * from ingest.accept_checked(${opened.batch_id}::bigint)`,
  );
  await timeIt("process_batch", () =>
    tx`
    select ingest.process_batch(${opened.batch_id}::bigint,
      ${scanner.rows + scanner.malformed.length}::bigint,
      ${tx.json(malformedJson(scanner.malformed))}::jsonb, ${tx.json(s)}::jsonb)`);
  throw new Error("rollback");
}).catch((e) => {
  if (e.message !== "rollback") throw e;
});
console.log(JSON.stringify({ rows, anomaly_rate: anomalyRate, id_version: idVersion, ...out }));
await sql.end();
const admin = connect({ url: withDatabase(cfg.DATABASE_URL, "postgres"), max: 1 });
await admin.unsafe("drop database if exists check_profile with (force)");
await admin.end();
