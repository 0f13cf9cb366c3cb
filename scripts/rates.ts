// deno task rates --file rates.csv: loads exchange rates into core.exchange_rates, all or
// nothing. The rules for a row live in SQL (core.load_exchange_rates); this script reads the
// CSV and reports what the database says.
import { parse } from "csv-parse/sync";
import { parseFlags } from "./lib/common/cli.ts";
import { config } from "./lib/common/config.ts";
import { connect, type Sql } from "./lib/common/db.ts";

const HELP = `Usage: deno task rates --file rates.csv [--source NAME]

Loads exchange rates (US dollars per unit of a currency, per UTC day) into core.exchange_rates.
The CSV has a header with the columns currency, day, usd_per_unit (any order, more columns
ignored), for example:

  currency,day,usd_per_unit
  EUR,2026-11-27,1.0412
  GBP,2026-11-27,1.2634

A (currency, day) already loaded is replaced. Every bad row is reported with its line and
reason, and then nothing is loaded. Revenue figures of the days a rate covers change at once
(the analytics views convert when they are read): no refresh needed. A day without its own
rate uses the latest earlier one (docs/money.md).

Options:
  --file PATH     the CSV to load (required)
  --source NAME   recorded in core.exchange_rates.source (default: the file name)
  -h, --help      show this help

Reads DATABASE_URL (needs the schema owner's rights). Exit code: 0 loaded, 1 rows rejected or
the database failed, 2 bad flags or an unreadable file.`;

export interface RatesResult {
  loaded: number;
  inserted: number;
  updated: number;
  rejected: { line: number; reason: string }[];
}

const COLUMNS = ["currency", "day", "usd_per_unit"] as const;

/** Parses the CSV into rows with their physical line; throws on a missing column. */
export function readRatesCsv(text: string): Record<string, string | number>[] {
  // with info: true each record comes with its physical line (csv-parse's types omit it)
  const records = parse(text, {
    bom: true,
    skip_empty_lines: true,
    relax_column_count: true,
    info: true,
  }) as unknown as { record: string[]; info: { lines: number } }[];
  if (records.length === 0) throw new Error("the file is empty: expected a header line");
  const header = records[0].record.map((h) => h.trim().toLowerCase());
  const missing = COLUMNS.filter((c) => !header.includes(c));
  if (missing.length) {
    throw new Error(
      `the header lacks ${missing.join(", ")}: expected the columns ${COLUMNS.join(", ")}`,
    );
  }
  return records.slice(1).map(({ record, info }) => {
    const row: Record<string, string | number> = { line: info.lines };
    for (const c of COLUMNS) row[c] = record[header.indexOf(c)] ?? "";
    return row;
  });
}

/** Loads the rows (all or nothing) through core.load_exchange_rates. */
export async function loadRates(
  sql: Sql,
  rows: Record<string, string | number>[],
  source: string,
): Promise<RatesResult> {
  const [{ r }] = await sql`
    select core.load_exchange_rates(${sql.json(rows)}::jsonb, ${source}) as r`;
  return r as RatesResult;
}

async function main(): Promise<number> {
  const flags = parseFlags(Deno.args, {
    file: { type: "string" },
    source: { type: "string" },
  }, HELP);
  if (!flags.file) {
    console.error("error: --file is required (see --help)");
    return 2;
  }
  let rows;
  try {
    rows = readRatesCsv(await Deno.readTextFile(flags.file));
  } catch (error) {
    console.error(`error: cannot read ${flags.file}: ${(error as Error).message}`);
    return 2;
  }
  const sql = connect({ url: config().DATABASE_URL, max: 1 });
  try {
    const source = flags.source ?? flags.file.split("/").pop()!;
    const r = await loadRates(sql, rows, source);
    if (r.rejected.length) {
      for (const x of r.rejected) console.error(`${flags.file}:${x.line}: ${x.reason}`);
      console.error(
        `error: ${r.rejected.length} bad row(s), nothing loaded: fix them and run again`,
      );
      return 1;
    }
    console.log(`rates: ${r.loaded} loaded (${r.inserted} new, ${r.updated} replaced)`);
    return 0;
  } catch (error) {
    console.error(`error: loading the rates failed: ${(error as Error).message}`);
    return 1;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

if (import.meta.main) Deno.exit(await main());
