// Test support: each test file gets its own freshly migrated database on the dev server.
import { config } from "../common/config.ts";
import { connect, type Sql, withDatabase } from "../common/db.ts";
import {
  applyDefinitions,
  citusWorkers,
  createDatabase,
  dbmate,
  distribute,
  withHost,
} from "../migrate/migrate.ts";

const root = new URL("../../..", import.meta.url).pathname;

let dbmateBin: string | undefined;

/** The dbmate binary the Makefile uses (PATH or .tools/). */
export async function dbmatePath(): Promise<string> {
  if (dbmateBin) return dbmateBin;
  const out = await new Deno.Command("bash", {
    args: [`${root}scripts/stack.sh`, "dbmate"],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error("Cannot find dbmate: run 'make tools' first");
  dbmateBin = new TextDecoder().decode(out.stdout).trim();
  return dbmateBin;
}

export interface TestDb {
  url: string;
  sql: Sql;
  name: string;
  drop(): Promise<void>;
}

/**
 * Creates, migrates and connects to a database named after the test (dropped by drop()).
 * `migrationsOnly`: dbmate up without db/functions and db/views; `empty`: no migration at all.
 */
export async function testDb(
  label: string,
  opts: { migrationsOnly?: boolean; empty?: boolean } = {},
): Promise<TestDb> {
  const base = config().DATABASE_URL;
  const name = `test_${label.replace(/\W+/g, "_").toLowerCase()}_${Deno.pid}`;
  const url = withDatabase(base, name);
  await dropDatabase(base, name);
  await createDatabase(url);
  if (!opts.empty) await dbmate(await dbmatePath(), url, "up");
  const sql = connect({ url, max: 4 });
  if (!opts.empty && !opts.migrationsOnly) {
    await applyDefinitions(sql);
    await distribute(sql);
  }
  return {
    url,
    sql,
    name,
    async drop() {
      await sql.end({ timeout: 5 });
      await dropDatabase(base, name);
    },
  };
}

async function dropDatabase(base: string, name: string) {
  // on a Citus coordinator (CITUS_WORKERS), the workers hold the database too
  for (const url of [base, ...citusWorkers().map((w) => withHost(base, w))]) {
    const admin = connect({ url: withDatabase(url, "postgres"), max: 1 });
    try {
      // a failed test may leave prepared transactions (loads in slices), which keep the
      // database from being dropped: they are rolled back from inside it
      const left = await admin`
        select gid from pg_prepared_xacts where database = ${name}`;
      if (left.length) {
        const inside = connect({ url: withDatabase(url, name), max: 1 });
        try {
          for (const { gid } of left) await inside.unsafe(`rollback prepared '${gid}'`);
        } finally {
          await inside.end({ timeout: 5 });
        }
      }
      await admin.unsafe(`drop database if exists "${name}" with (force)`);
    } finally {
      await admin.end({ timeout: 5 });
    }
  }
}
