// deno task migrate: brings the database of DATABASE_URL to the current schema (the steps are
// in lib/migrate/migrate.ts).
import { parseFlags } from "./lib/common/cli.ts";
import { config } from "./lib/common/config.ts";
import { connect } from "./lib/common/db.ts";
import { findDbmate, migrate, privilegeHint } from "./lib/migrate/migrate.ts";

const HELP = `Usage: deno task migrate [--dbmate PATH]

Brings the database of DATABASE_URL to the current schema: waits for the server, creates the
database when missing, runs the dbmate migrations (db/migrations), then re-creates every function
(db/functions) and view (db/views). Works against any PostgreSQL 18 server, including one this
project did not start; docs/operations.md lists the privileges the user of DATABASE_URL needs.

Options:
  --dbmate PATH   the dbmate binary (default: dbmate on PATH, else installed into .tools/)
  -h, --help      show this help`;

const values = parseFlags(Deno.args, { dbmate: { type: "string" } }, HELP);
const url = config().DATABASE_URL;
try {
  const bin = values.dbmate ?? await findDbmate();
  await migrate(url, bin);
  const sql = connect({ url, max: 1 });
  const [v] = await sql`select current_setting('server_version') as version`;
  await sql.end();
  console.error(`stack: database ready at ${new URL(url).host} (PostgreSQL ${v.version})`);
} catch (error) {
  const message = (error as Error).message;
  const hint = privilegeHint(message);
  console.error(`error: ${message}${hint ? `\nhint: ${hint}` : ""}`);
  Deno.exit(1);
}
