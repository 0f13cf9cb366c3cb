// Brings a database to the current schema: waits for the server, creates the database,
// runs dbmate migrations, then re-applies every db/views file in order.
import { parseArgs } from "node:util";
import { config } from "./lib/config.ts";
import { connect, type Sql, withDatabase } from "./lib/db.ts";

const root = new URL("..", import.meta.url).pathname;
export const migrationsDir = `${root}db/migrations`;
export const viewsDir = `${root}db/views`;

/** Waits until the server accepts connections, up to `seconds`. */
export async function waitForServer(url: string, seconds = 60): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  let last: unknown;
  while (Date.now() < deadline) {
    const sql = connect({ url: withDatabase(url, "postgres"), max: 1, connectTimeout: 3 });
    try {
      await sql`select 1`;
      return;
    } catch (error) {
      last = error;
      await new Promise((r) => setTimeout(r, 250));
    } finally {
      await sql.end({ timeout: 1 });
    }
  }
  throw new Error(`PostgreSQL at "${new URL(url).host}" did not answer within ${seconds}s`, {
    cause: last,
  });
}

/** Creates the database named in `url` when it does not exist. */
export async function createDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  const sql = connect({ url: withDatabase(url, "postgres"), max: 1 });
  try {
    const [row] = await sql`select 1 as ok from pg_database where datname = ${name}`;
    if (!row) await sql.unsafe(`create database "${name.replaceAll('"', '""')}"`);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** Runs a dbmate command (`up`, `rollback`, ...) against `url`. */
export async function dbmate(bin: string, url: string, ...args: string[]): Promise<string> {
  const u = new URL(url);
  if (!u.searchParams.has("sslmode")) u.searchParams.set("sslmode", "disable");
  const out = await new Deno.Command(bin, {
    args: ["--url", u.toString(), "--migrations-dir", migrationsDir, "--no-dump-schema", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`dbmate ${args.join(" ")} failed: ${text.trim()}`);
  return text;
}

/** The view files in dependency order (their numeric prefix). */
export function viewFiles(): string[] {
  const names: string[] = [];
  for (const entry of Deno.readDirSync(viewsDir)) {
    if (entry.isFile && entry.name.endsWith(".sql")) names.push(entry.name);
  }
  return names.sort().map((n) => `${viewsDir}/${n}`);
}

/** Applies every view file, each in its own transaction, as the schema owner. */
export async function applyViews(sql: Sql): Promise<number> {
  const files = viewFiles();
  for (const file of files) {
    const text = await Deno.readTextFile(file);
    try {
      await sql.begin(async (tx) => {
        await tx.unsafe("set local role pipeline_owner");
        await tx.unsafe(text);
      });
    } catch (error) {
      throw new Error(`Applying view file "${file}" failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  return files.length;
}

/** Everything `make up` does after the server runs. */
export async function migrate(url: string, dbmateBin: string): Promise<void> {
  await waitForServer(url);
  await createDatabase(url);
  await dbmate(dbmateBin, url, "up");
  const sql = connect({ url, max: 1 });
  try {
    await applyViews(sql);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { dbmate: { type: "string", default: "dbmate" }, help: { type: "boolean" } },
  });
  if (values.help) {
    console.log(
      "usage: deno task migrate [--dbmate PATH]\n\nCreates the database, runs dbmate up, re-applies db/views.",
    );
    Deno.exit(0);
  }
  const url = config().DATABASE_URL;
  try {
    await migrate(url, values.dbmate!);
    const sql = connect({ url, max: 1 });
    const [v] = await sql`select current_setting('server_version') as version`;
    await sql.end();
    console.error(`stack: database ready at ${new URL(url).host} (PostgreSQL ${v.version})`);
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    Deno.exit(1);
  }
}
