// deno task maintain: retention (core.retention) and partitions ahead, once.
import { parseFlags } from "./lib/common/cli.ts";
import { config } from "./lib/common/config.ts";
import { connect } from "./lib/common/db.ts";
import { dirsFor } from "./lib/common/inbox.ts";
import { logger } from "./lib/common/log.ts";
import { maintain, warnKept } from "./lib/maintain/maintain.ts";

const HELP = `Usage: deno task maintain [--dir DIR] [--now TIME] [--json] [--show]

First finishes what loads in slices left prepared when their process died (committed when the
file's transaction had committed, else rolled back). Then applies the retention policy in
core.retention once, in one transaction: creates the partitions
of core.events for the coming months, drops (or detaches) months of events older than their
retention, deletes old dead letter, batch metrics, alerts, replays, ledger and analytics
membership rows (while the lake export is on, docs/lake.md, a month with days not in the lake's
ledger is kept and named, and only exported days of dead letter go); then deletes files older
than their retention from processed/ and rejected/.
The ingester runs the same every MAINTAIN_INTERVAL_MINUTES (default 60; 0: never).

Options:
  --dir DIR     the inbox whose processed/ and rejected/ siblings are cleaned
                (default: $DATA_DIR/incoming)
  --now TIME    the clock to apply the policy at (ISO 8601; default: now)
  --json        print the result as JSON
  --show        print the policy (kind, keep, action, cutoff now) and change nothing
  -h, --help    show this help

Change the policy with SQL, e.g.
  update core.retention set keep = interval '30 days' where kind = 'dead_letter';
  update core.retention set keep = null where kind = 'events';      -- keep forever`;

const values = parseFlags(Deno.args, {
  dir: { type: "string" },
  now: { type: "string" },
  json: { type: "boolean", default: false },
  show: { type: "boolean", default: false },
}, HELP);
const now = values.now === undefined ? new Date() : new Date(values.now);
if (Number.isNaN(now.getTime())) {
  console.error(
    `error: --now must be an ISO 8601 time such as 2026-12-01T00:00:00Z (got "${values.now}")`,
  );
  Deno.exit(2);
}
const cfg = config();
const log = logger("maintain");
const sql = connect({ max: 1 });
try {
  if (values.show) {
    const rows = await sql`
      select kind, keep::text, action, cutoff from core.retention_cutoffs(${now})`;
    console.log(
      values.json
        ? JSON.stringify(rows)
        : rows.map((r) =>
          `${r.kind.padEnd(22)} ${String(r.keep ?? "forever").padEnd(12)} ${r.action.padEnd(7)} ${
            r.cutoff ? (r.cutoff as Date).toISOString() : "-"
          }`
        ).join("\n"),
    );
  } else {
    const result = await maintain(sql, dirsFor(values.dir ?? `${cfg.DATA_DIR}/incoming`), now);
    if (values.json) console.log(JSON.stringify(result));
    else log.info("maintenance done", { ...result });
    warnKept(log, result);
  }
} catch (error) {
  console.error(
    `error: maintenance failed: ${
      (error as Error).message
    } (is the database migrated? run make up)`,
  );
  await sql.end({ timeout: 5 });
  Deno.exit(1);
}
await sql.end({ timeout: 5 });
