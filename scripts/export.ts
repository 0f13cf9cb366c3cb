// deno task export: closed UTC days to the lake (Apache Iceberg tables), once or --watch.
import { parseFlags } from "./lib/common/cli.ts";
import { config } from "./lib/common/config.ts";
import { connect } from "./lib/common/db.ts";
import { logger } from "./lib/common/log.ts";
import { currentFiles, runExport, warehouseOf } from "./lib/lake/mod.ts";

const HELP = `Usage: deno task export [--now TIME] [--table NAME] [--watch] [--json]
       deno task export --show [--now TIME] [--table NAME] [--json]
       deno task export --disable
       deno task export --files LAYER.TABLE

Writes every closed UTC day (past lake.settings.close_after, default 1 day after its end) of
the lake tables (lake.tables: silver.events, bronze.dead_letter and the gold KPI tables) to
Apache Iceberg tables in LAKE_WAREHOUSE (default DATA_DIR/lake; s3://bucket/prefix with
LAKE_S3_ENDPOINT and credentials), registered in an Iceberg SQL catalog in this database
(schema lake_catalog). A day already in the ledger (lake.exports) with the same rows is not
written again; a day whose rows changed since (late rows, a replay) overwrites its partition.
Exporting turns the retention guard on: deno task maintain then keeps every partition of
core.events with days not in the ledger. See docs/lake.md.

Options:
  --now TIME     the clock that decides which days are closed (ISO 8601; default: now)
  --table NAME   only this lake table (lake.tables.table_name, e.g. events, daily_sales)
  --watch        export every LAKE_EXPORT_INTERVAL_MINUTES (default 60) until SIGINT/SIGTERM
  --show         list the days to export and write nothing
  --disable      turn the export off (retention no longer waits for the ledger)
  --files T      print the Parquet files of table T's current snapshot (e.g. silver.events), one
                 a line: for readers without Iceberg support, such as DuckDB's read_parquet
  --json         print the result as JSON
  -h, --help     show this help

Change when a day closes with SQL, e.g.
  update lake.settings set close_after = interval '6 hours';`;

const values = parseFlags(Deno.args, {
  now: { type: "string" },
  table: { type: "string" },
  watch: { type: "boolean", default: false },
  show: { type: "boolean", default: false },
  disable: { type: "boolean", default: false },
  files: { type: "string" },
  json: { type: "boolean", default: false },
}, HELP);
const modes = [
  values.watch && "--watch",
  values.show && "--show",
  values.disable && "--disable",
  values.files !== undefined && "--files",
].filter(Boolean);
if (modes.length > 1) {
  console.error(`error: ${modes.join(" and ")} cannot be combined (see --help)`);
  Deno.exit(2);
}
if (values.watch && values.now !== undefined) {
  console.error("error: --now cannot be used with --watch, which uses the current time");
  Deno.exit(2);
}
const fixedNow = values.now === undefined ? undefined : new Date(values.now);
if (fixedNow && Number.isNaN(fixedNow.getTime())) {
  console.error(
    `error: --now must be an ISO 8601 time such as 2026-12-01T00:00:00Z (got "${values.now}")`,
  );
  Deno.exit(2);
}
const cfg = config();
const log = logger("export");
const sql = connect({ max: 1 });

async function show(now: Date) {
  const rows = await sql<
    { table_name: string; layer: string; day: string; row_count: string; exported_rows: string }[]
  >`select table_name, layer, day::text, row_count, exported_rows
    from lake.pending(${now}, ${values.table ?? null})`;
  if (values.json) return console.log(JSON.stringify(rows));
  if (rows.length === 0) return console.log("nothing to export: the ledger holds every closed day");
  for (const r of rows) {
    console.log(
      `${(r.layer + "." + r.table_name).padEnd(34)} ${r.day}  ${
        String(r.row_count).padStart(9)
      } rows  ${r.exported_rows === null ? "new" : `changed (ledger: ${r.exported_rows} rows)`}`,
    );
  }
}

async function once(now: Date) {
  const result = await runExport(cfg, { now, table: values.table });
  if (values.json) console.log(JSON.stringify(result));
  else {
    log.info("export done", {
      warehouse: result.warehouse,
      days: result.days,
      rows: result.rows,
      seconds: result.seconds,
    });
    for (const [name, t] of Object.entries(result.tables)) {
      log.info("table exported", {
        table: name,
        days: t.days,
        rows: t.rows,
        snapshots: t.snapshots.join(","),
        ...(t.columns_added.length ? { columns_added: t.columns_added.join(",") } : {}),
      });
    }
  }
}

let code = 0;
try {
  if (values.files !== undefined) {
    if (!/^(silver|bronze|gold)\.[a-z][a-z0-9_]*$/.test(values.files)) {
      throw new Error(`--files takes layer.table, such as silver.events (got "${values.files}")`);
    }
    for (const f of await currentFiles(cfg, values.files)) console.log(f);
  } else if (values.disable) {
    await sql`select lake.set_enabled(false)`;
    console.log(
      "export disabled: deno task maintain no longer waits for the ledger (deno task export turns it on again)",
    );
  } else if (values.show) {
    await show(fixedNow ?? new Date());
  } else if (!values.watch) {
    await once(fixedNow ?? new Date());
  } else {
    let stopping = false;
    let wake = () => {};
    const stop = () => {
      stopping = true;
      wake();
    };
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
    const minutes = cfg.LAKE_EXPORT_INTERVAL_MINUTES;
    log.info("watching", { warehouse: warehouseOf(cfg), every_minutes: minutes });
    while (!stopping) {
      try {
        await once(new Date());
      } catch (error) {
        // the next run converges (the ledger follows each commit): log and keep watching
        log.error("export failed, retrying at the next interval", {
          error: (error as Error).message,
        });
      }
      if (stopping) break; // a signal that came during the run
      await new Promise<void>((r) => {
        const t = setTimeout(r, minutes * 60_000);
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
    log.info("stopped");
  }
} catch (error) {
  console.error(`error: export failed: ${(error as Error).message}`);
  code = 1;
}
await sql.end({ timeout: 5 });
Deno.exit(code);
