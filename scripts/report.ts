// deno task report: the analytics views as aligned terminal tables (or JSON with --json),
// read as the analyst role.
import { parseArgs } from "node:util";
import { config } from "./lib/common/config.ts";
import { connect } from "./lib/common/db.ts";
import { fetchReport, renderReport, reportJson } from "./lib/analytics/report.ts";

const HELP = `Usage: deno task report [--json] [--since YYYY-MM-DD] [--limit N]

Prints the analytics tables: recent daily sales, top categories, top products, the funnel,
customers per RFM status, data quality per hour of ingestion, and pipeline health.
All days and hours are UTC. Figures include every batch committed so far.

Options:
  --json               print one JSON object instead of tables
  --since YYYY-MM-DD   daily sales, funnel and data quality from this UTC day on
  --limit N            at most N rows per table (default 10)
  -h, --help           show this help

Reads DATABASE_URL and connects as ANALYST_ROLE (default pipeline_analyst).
Exit code: 0 on success, 1 when the database cannot be read, 2 for bad flags.`;

export interface ReportArgs {
  json: boolean;
  since?: string;
  limit: number;
  help: boolean;
}

export class UsageError extends Error {
  override name = "UsageError";
}

/** Parses and checks the flags; throws UsageError with a one-line message. */
export function parseReportArgs(args: string[]): ReportArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        json: { type: "boolean", default: false },
        since: { type: "string" },
        limit: { type: "string", default: "10" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message, { cause: error });
  }
  const limit = Number(values.limit);
  if (!/^\d+$/.test(values.limit) || !Number.isSafeInteger(limit) || limit < 1) {
    throw new UsageError(`--limit must be a whole number >= 1 (got "${values.limit}")`);
  }
  const since = values.since;
  if (since !== undefined) {
    const day = new Date(`${since}T00:00:00Z`);
    if (
      !/^\d{4}-\d{2}-\d{2}$/.test(since) || isNaN(day.getTime()) ||
      !day.toISOString().startsWith(since)
    ) {
      throw new UsageError(`--since must be a date like 2026-11-21 (got "${since}")`);
    }
  }
  return { json: values.json, since, limit, help: values.help };
}

async function main(): Promise<number> {
  let args: ReportArgs;
  try {
    args = parseReportArgs(Deno.args);
  } catch (error) {
    console.error(`error: ${(error as Error).message} (see --help)`);
    return 2;
  }
  if (args.help) {
    console.log(HELP);
    return 0;
  }
  const cfg = config();
  const sql = connect({ role: cfg.ANALYST_ROLE, max: 1 });
  try {
    const report = await fetchReport(sql, { since: args.since, limit: args.limit });
    const text = args.json ? reportJson(report) : renderReport(report);
    await Deno.stdout.write(new TextEncoder().encode(text));
    return 0;
  } catch (error) {
    console.error(`error: cannot read the analytics views: ${(error as Error).message}`);
    return 1;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

if (import.meta.main) Deno.exit(await main());
