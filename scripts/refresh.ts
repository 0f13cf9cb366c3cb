// deno task refresh: rebuilds every analytics rollup from core.events and the quality tables.
// Batches keep the rollups current on their own; this is for repairs and after manual edits.
import { parseArgs } from "node:util";
import { config } from "./lib/common/config.ts";
import { connect } from "./lib/common/db.ts";
import { rebuildRollups } from "./lib/analytics/analytics.ts";

const HELP = `Usage: deno task refresh

Rebuilds all analytics rollups (daily, hourly, category, product, customer, funnel and data
quality figures) from core.events, quality.batch_metrics and quality.dead_letter, in one
transaction. Ingestion waits while it runs; readers see the old figures until it commits.
Afterwards every figure equals the one kept up to date batch by batch.

Options:
  -h, --help   show this help

Reads DATABASE_URL (needs the schema owner's rights). Exit code: 0 on success, 1 when the
rebuild failed, 2 for bad flags.`;

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: { help: { type: "boolean", short: "h", default: false } },
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
    const r = await rebuildRollups(sql);
    console.log(`refresh: rollups rebuilt from ${r.events} events in ${(r.ms / 1000).toFixed(2)}s`);
    return 0;
  } catch (error) {
    console.error(`error: rebuilding the analytics rollups failed: ${(error as Error).message}`);
    return 1;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

if (import.meta.main) Deno.exit(await main());
