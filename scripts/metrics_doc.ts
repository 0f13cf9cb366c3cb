// deno task metrics-doc: writes the metrics catalogue (analytics.metrics) into docs/metrics.md,
// or with --check fails when the document differs from the database's catalogue.
import { parseArgs } from "node:util";
import { config } from "./lib/common/config.ts";
import { connect } from "./lib/common/db.ts";
import { readCatalogue, renderCatalogue, replaceCatalogue } from "./lib/analytics/catalogue.ts";

const HELP = `Usage: deno task metrics-doc [--check]

Renders the metrics catalogue (the view analytics.metrics, db/views/001_metrics.sql) into the
generated block of docs/metrics.md. Run it after changing a metric's definition.

Options:
  --check      do not write: exit 1 when docs/metrics.md differs from the catalogue
  -h, --help   show this help

Reads DATABASE_URL (a migrated database). Exit code: 0 on success, 1 when the document is out of
date (--check) or the database cannot be read, 2 for bad flags.`;

const DOC = new URL("../docs/metrics.md", import.meta.url).pathname;

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: {
        check: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    console.error(`error: ${(error as Error).message} (see --help)`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const sql = connect({ url: config().DATABASE_URL, max: 1 });
  try {
    const doc = await Deno.readTextFile(DOC);
    const next = replaceCatalogue(doc, renderCatalogue(await readCatalogue(sql)));
    if (values.check) {
      if (next === doc) return 0;
      console.error(
        "error: docs/metrics.md differs from analytics.metrics: run deno task metrics-doc",
      );
      return 1;
    }
    await Deno.writeTextFile(DOC, next);
    console.log(`metrics-doc: ${DOC} ${next === doc ? "unchanged" : "updated"}`);
    return 0;
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    return 1;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

if (import.meta.main) Deno.exit(await main());
