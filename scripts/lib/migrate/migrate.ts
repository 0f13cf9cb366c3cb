// Brings a database to the current schema: waits for the server, creates the database,
// runs dbmate migrations (state: tables, indexes, roles, data), then re-creates every function
// (db/functions) and view (db/views) from their repeatable files.
import { config } from "../common/config.ts";
import { connect, type Sql, withDatabase } from "../common/db.ts";

const root = new URL("../../..", import.meta.url).pathname;
export const migrationsDir = `${root}db/migrations`;
export const viewsDir = `${root}db/views`;
export const functionsDir = `${root}db/functions`;

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

/**
 * Creates the database named in `url` when it does not exist. On a Citus coordinator with
 * `workers` (host:port list, default CITUS_WORKERS), also on every worker, with the citus
 * extension everywhere and the workers registered (Citus metadata is per database).
 */
export async function createDatabase(
  url: string,
  workers = citusWorkers(),
): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  const nodes = [url, ...workers.map((w) => withHost(url, w))];
  for (const [i, nodeUrl] of nodes.entries()) {
    const sql = connect({ url: withDatabase(nodeUrl, "postgres"), max: 1 });
    try {
      const [row] = await sql`select 1 as ok from pg_database where datname = ${name}`;
      if (!row) await sql.unsafe(`create database "${name.replaceAll('"', '""')}"`);
      if (i === 0 && workers.length === 0) return;
    } finally {
      await sql.end({ timeout: 1 });
    }
  }
  for (const nodeUrl of nodes) {
    const sql = connect({ url: nodeUrl, max: 1 });
    try {
      await sql`create extension if not exists citus`;
    } finally {
      await sql.end({ timeout: 1 });
    }
  }
  const sql = connect({ url, max: 1 });
  try {
    const coordinator = new URL(url);
    await sql`select citus_set_coordinator_host(${coordinator.hostname}, ${
      Number(coordinator.port || 5432)
    })`;
    for (const w of workers) {
      const [host, port] = w.split(":");
      await sql`select citus_add_node(${host}, ${Number(port)})
        where not exists (
          select from pg_dist_node where nodename = ${host} and nodeport = ${Number(port)}
        )`;
    }
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** The Citus workers of the coordinator in DATABASE_URL (CITUS_WORKERS=host:port,...). */
export function citusWorkers(): string[] {
  return (Deno.env.get("CITUS_WORKERS") ?? "").split(",").map((w) => w.trim()).filter(Boolean)
    .map((w) => {
      if (!/^[^:,]+:\d+$/.test(w)) {
        throw new Error(`CITUS_WORKERS entry "${w}" is not host:port (e.g. 127.0.0.1:5481)`);
      }
      return w;
    });
}

/** Replaces host:port in a postgres URL. */
export function withHost(url: string, hostPort: string): string {
  const u = new URL(url);
  u.host = hostPort;
  return u.toString();
}

/** Runs a dbmate command (`up`, `rollback`, ...) against `url`. */
export function dbmate(bin: string, url: string, ...args: string[]): Promise<string> {
  return dbmateIn(migrationsDir, bin, url, ...args);
}

/** Runs a dbmate command with the migrations of `dir` (tests: an older release's migrations). */
export async function dbmateIn(
  dir: string,
  bin: string,
  url: string,
  ...args: string[]
): Promise<string> {
  const u = new URL(url);
  if (!u.searchParams.has("sslmode")) u.searchParams.set("sslmode", "disable");
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(bin, {
      args: ["--url", u.toString(), "--migrations-dir", dir, "--no-dump-schema", ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    throw new Error(
      `cannot run dbmate "${bin}" (${(error as Error).message}): install dbmate, ` +
        "or run deno task migrate without --dbmate to install it into .tools/",
    );
  }
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`dbmate ${args.join(" ")} failed: ${text.trim()}`);
  return text;
}

/** The schemas whose functions and views are defined by db/functions and db/views. */
export const managedSchemas = ["ingest", "core", "quality", "analytics", "lake"];

function sqlFilesBelow(dir: string): string[] {
  const out: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) out.push(...sqlFilesBelow(path));
    else if (entry.isFile && entry.name.endsWith(".sql")) out.push(path);
  }
  return out;
}

/** The function files (db/functions/<schema>/<concern>.sql) in path order. */
export function functionFiles(): string[] {
  return sqlFilesBelow(functionsDir).sort();
}

/** The view files in dependency order (their numeric prefix). */
export function viewFiles(): string[] {
  return sqlFilesBelow(viewsDir).sort();
}

// Drops every function and view of the managed schemas that pipeline_owner owns, so that what
// the files define next is exactly what exists (a function removed or renamed in the files
// goes from the database too). Refuses, naming them, when other objects depend on them (a
// trigger, a column default, a view of your own): CASCADE would drop those silently.
const dropDefinitions = `
do $$
declare
    v_schemas oid[] := array(
        select oid from pg_namespace where nspname = any (string_to_array($schemas$, ','))
    );
    v_owner oid := 'pipeline_owner'::regrole;
    v_blocked text;
    v_views text[];
    v_routines text[];
    v_name text;
begin
    create temp table managed_objects on commit drop as
    select 'pg_proc'::regclass::oid as classid, p.oid as objid
    from pg_proc as p where p.pronamespace = any (v_schemas) and p.proowner = v_owner
    union all
    select 'pg_class'::regclass::oid, c.oid
    from pg_class as c
    where c.relnamespace = any (v_schemas) and c.relowner = v_owner and c.relkind in ('v', 'm');

    select string_agg(distinct format('%s (depends on %s)',
        case
            when rw.oid is not null then pg_describe_object('pg_class'::regclass, rw.ev_class, 0)
            else pg_describe_object(d.classid, d.objid, d.objsubid)
        end,
        pg_describe_object(d.refclassid, d.refobjid, 0)), '; ')
    into v_blocked
    from pg_depend as d
    join managed_objects as m on m.classid = d.refclassid and m.objid = d.refobjid
    left join pg_rewrite as rw on d.classid = 'pg_rewrite'::regclass and rw.oid = d.objid
    where d.deptype = 'n'
        and not exists (
            select from managed_objects as o
            where (o.classid = d.classid and o.objid = d.objid)
                or (o.classid = 'pg_class'::regclass and o.objid = rw.ev_class)
        );
    if v_blocked is not null then
        raise exception 'objects outside db/functions and db/views depend on definitions that migrate re-creates: %. Drop them first (or move their definitions into db/functions or db/views), then migrate again', v_blocked;
    end if;

    -- names first: a cascade may drop an object before the loop reaches it
    v_views := array(
        select format('%s if exists %s',
            case c.relkind when 'm' then 'materialized view' else 'view' end, c.oid::regclass)
        from pg_class as c
        join managed_objects as m on m.classid = 'pg_class'::regclass and m.objid = c.oid
    );
    v_routines := array(
        select p.oid::regprocedure::text from pg_proc as p
        join managed_objects as m on m.classid = 'pg_proc'::regclass and m.objid = p.oid
    );
    foreach v_name in array v_views loop
        execute format('drop %s cascade', v_name);
    end loop;
    foreach v_name in array v_routines loop
        execute format('drop routine if exists %s cascade', v_name);
    end loop;
end
$$`.replace("$schemas$", `'${managedSchemas.join(",")}'`);

/**
 * Re-creates every function (db/functions) and view (db/views) in one transaction, as the
 * schema owner: after it the managed schemas hold exactly what the files define. Running it
 * again changes no definition. Returns how many files were applied.
 */
export async function applyDefinitions(sql: Sql): Promise<number> {
  const files = [...functionFiles(), ...viewFiles()];
  await sql.begin(async (tx) => {
    await tx.unsafe("set local role pipeline_owner");
    await tx.unsafe(dropDefinitions);
    for (const file of files) {
      const text = await Deno.readTextFile(file);
      try {
        await tx.unsafe(text);
      } catch (error) {
        const where = file.slice(root.length);
        throw new Error(
          `Applying "${where}" failed: ${
            (error as Error).message
          } (nothing was changed: fix the file and run migrate again)`,
          { cause: error },
        );
      }
    }
  });
  return files.length;
}

/** Everything `make up` does after the server runs; writes REPORTING_CURRENCY to core.settings. */
export async function migrate(
  url: string,
  dbmateBin: string,
  reportingCurrency = config().REPORTING_CURRENCY,
): Promise<void> {
  await waitForServer(url);
  await createDatabase(url);
  await dbmate(dbmateBin, url, "up");
  const sql = connect({ url, max: 1 });
  try {
    await applyDefinitions(sql);
    await sql.begin(async (tx) => {
      await tx.unsafe("set local role pipeline_owner");
      await tx`select core.set_reporting_currency(${reportingCurrency})`;
    });
    await distribute(sql);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/**
 * The distribution step, where the citus extension is installed (a no-op elsewhere): runs
 * core.distribute() (db/functions/core/distribute.sql). Returns what it did.
 */
export async function distribute(sql: Sql): Promise<string | null> {
  const [citus] = await sql`select 1 as ok from pg_extension where extname = 'citus'`;
  if (!citus) return null;
  const [r] = await sql`select core.distribute() as done`;
  return r.done as string;
}

/** The dbmate binary: PATH, else .tools/ (installed from npm on first use by scripts/stack.sh). */
export async function findDbmate(): Promise<string> {
  const out = await new Deno.Command("bash", {
    args: [`${root}scripts/stack.sh`, "dbmate"],
    stdout: "piped",
    stderr: "piped",
  }).output().catch((error) => {
    throw new Error(`cannot run scripts/stack.sh to find dbmate (${(error as Error).message})`);
  });
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success || text === "") {
    const why = new TextDecoder().decode(out.stderr).trim().split("\n").pop();
    throw new Error(
      `dbmate is not on PATH and could not be installed into .tools/ (${why}): install dbmate or pass --dbmate PATH`,
    );
  }
  return text.split("\n").pop()!;
}

/**
 * One line saying what to do for the errors a migrating user without enough rights meets;
 * undefined for any other error.
 */
export function privilegeHint(message: string): string | undefined {
  if (
    /permission denied to (grant role|create role)|must have admin option on role/.test(message)
  ) {
    return 'the migrating user must have CREATEROLE and admin rights on the pipeline_* roles: see docs/operations.md, "Minimum privileges", for the one-time superuser SQL';
  }
  if (/permission denied to create extension|permission denied for database/.test(message)) {
    return 'the migrating user must own the database (or have CREATE on it) and pgcrypto must be installable: see docs/operations.md, "Minimum privileges"';
  }
  if (/password authentication failed|role ".*" does not exist/.test(message)) {
    return "check the user and password in DATABASE_URL";
  }
  return undefined;
}
