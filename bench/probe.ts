// Quick profile of one 1M-row ingest: where the time goes (used while tuning; see bench.ts).
import { connect, withDatabase } from "../scripts/lib/common/db.ts";
import { loadConfig } from "../scripts/lib/common/config.ts";
import { loadFile, settings } from "../scripts/lib/batch/mod.ts";
import { applyDefinitions, createDatabase, dbmate } from "../scripts/lib/migrate/migrate.ts";
import { dbmatePath } from "../scripts/lib/testing/testdb.ts";
const url = withDatabase(loadConfig().DATABASE_URL, "bench_probe");
const admin = connect({ url: withDatabase(url, "postgres"), max: 1 });
await admin.unsafe("drop database if exists bench_probe with (force)");
await createDatabase(url);
await dbmate(await dbmatePath(), url, "up");
if (Deno.env.get("PROBE_EXPLAIN")) {
  for (
    const stmt of [
      "alter database bench_probe set session_preload_libraries = 'auto_explain'",
      "alter database bench_probe set auto_explain.log_min_duration = 500",
      "alter database bench_probe set auto_explain.log_nested_statements = on",
      "alter database bench_probe set auto_explain.log_analyze = on",
      "alter database bench_probe set auto_explain.log_timing = off",
    ]
  ) await admin.unsafe(stmt);
}
const sql = connect({ url, max: 2 });
await applyDefinitions(sql);
const t = performance.now();
const r = await loadFile(sql, Deno.args[0], settings(loadConfig()), {});
const ms = performance.now() - t;
console.log(
  JSON.stringify({
    ms: Math.round(ms),
    copy_ms: Math.round(r.copyMs!),
    process_ms: r.result?.process_ms,
    rows: r.result?.rows,
    rows_per_s: Math.round(r.result!.rows / ms * 1000),
  }),
);
await sql.end();
await admin.unsafe("drop database if exists bench_probe with (force)");
await admin.end();
