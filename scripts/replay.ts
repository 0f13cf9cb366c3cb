// deno task replay: re-validates dead-lettered rows after a rule or data fix. Rows that now
// pass move to core.events (dedupe still applies); the rest stay with refreshed reasons.
import { parseFlags } from "./lib/common/cli.ts";
import { config } from "./lib/common/config.ts";
import { connect } from "./lib/common/db.ts";
import { settings } from "./lib/batch/mod.ts";
import { logger } from "./lib/common/log.ts";

const HELP = `Usage: deno task replay [--reason CODE]... [--file NAME] [--json]

Re-validates rows in quality.dead_letter with the current rules and configuration (e.g. after
raising MAX_PRICE). Rows that now pass move to core.events, duplicates are counted, the rest
keep their refreshed reasons. Malformed rows (malformed_row) cannot be re-read and stay.

Options:
  --reason CODE   only rows having this reason code (repeatable)
  --file NAME     only rows from this source file (or HTTP batch name)
  --json          print the result as JSON
  -h, --help      show this help`;

const values = parseFlags(Deno.args, {
  reason: { type: "string", multiple: true },
  file: { type: "string" },
  json: { type: "boolean", default: false },
}, HELP);

const cfg = config();
const log = logger("replay");
const sql = connect({ max: 1 });
try {
  const [{ result }] = await sql`
    select quality.replay(${values.reason ?? null}::text[], ${values.file ?? null},
      ${sql.json(settings(cfg))}::jsonb) as result`;
  if (values.json) console.log(JSON.stringify(result));
  else {
    log.info("replay done", {
      rows: result.rows,
      moved_to_events: result.moved,
      duplicates: result.duplicates,
      still_invalid: result.still_invalid,
    });
  }
} catch (error) {
  // 22023: an unknown --reason code (the message lists the valid ones): a usage error
  const usage = (error as { code?: string }).code === "22023";
  console.error(`error: ${usage ? "" : "replay failed: "}${(error as Error).message}`);
  await sql.end({ timeout: 5 });
  Deno.exit(usage ? 2 : 1);
} finally {
  await sql.end({ timeout: 5 });
}
