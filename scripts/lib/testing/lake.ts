// Test support for the lake: what Apache Spark (an Iceberg reader independent of the writer,
// scripts/lib/lake/spark_read.py) reads per table and day, what the ledger says, and what
// PostgreSQL holds now (lake.digest), all as "layer.table" -> [day, rows, checksum][].
import type { Sql } from "../common/db.ts";
import { lakePython } from "../lake/mod.ts";

const root = new URL("../../..", import.meta.url).pathname;

export type Days = Record<string, [string, number, string][]>;

let reader: { python: string; jars: string } | undefined;

async function sparkReader() {
  if (reader) return reader;
  const out = await new Deno.Command("bash", {
    args: [`${root}scripts/stack.sh`, "lake-reader"],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error("Cannot install the Spark lake reader (see above)");
  const [python, jars] = new TextDecoder().decode(out.stdout).trim().split("\n");
  reader = { python, jars };
  return reader;
}

/** The Iceberg column order PostgreSQL defines (lake.columns), per "layer.table". */
async function columnOrder(sql: Sql): Promise<Record<string, string[]>> {
  const [{ columns }] = await sql`
    select json_object_agg(t.layer || '.' || t.table_name, (
        select json_agg(c.column_name order by c.col_position) from lake.columns(t.table_name) as c
    )) as columns
    from lake.tables as t
    where exists (select from lake.exports as x where x.table_name = t.table_name)`;
  return columns ?? {};
}

/** What Spark reads from every exported table of the database at `url`. */
export async function sparkDays(
  sql: Sql,
  url: string,
  warehouse: string,
  s3?: { endpoint: string; accessKey: string; secretKey: string },
): Promise<Days> {
  const { python, jars } = await sparkReader();
  const u = new URL(url);
  const args = [
    `${root}scripts/lib/lake/spark_read.py`,
    "--jars",
    jars,
    "--jdbc",
    `jdbc:postgresql://${u.hostname}:${u.port}${u.pathname}?currentSchema=lake_catalog`,
    "--user",
    decodeURIComponent(u.username),
    "--password",
    decodeURIComponent(u.password),
    "--warehouse",
    warehouse,
    "--columns",
    JSON.stringify(await columnOrder(sql)),
  ];
  const env: Record<string, string> = {};
  if (s3) {
    args.push("--s3-endpoint", s3.endpoint);
    env.LAKE_S3_ACCESS_KEY_ID = s3.accessKey;
    env.LAKE_S3_SECRET_ACCESS_KEY = s3.secretKey;
  }
  const out = await new Deno.Command(python, { args, env, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    throw new Error(
      `Spark could not read the lake: ${new TextDecoder().decode(out.stderr).slice(-2000)}`,
    );
  }
  return JSON.parse(text.split("\n").pop()!) as Days;
}

/** The ledger (lake.exports) in the same shape. */
export async function ledgerDays(sql: Sql): Promise<Days> {
  const rows = await sql<{ name: string; day: string; row_count: string; checksum: string }[]>`
    select t.layer || '.' || x.table_name as name, x.day::text as day, x.row_count::text,
        x.checksum::text
    from lake.exports as x join lake.tables as t using (table_name)
    order by 1, 2`;
  const out: Days = {};
  for (const r of rows) (out[r.name] ??= []).push([r.day, Number(r.row_count), r.checksum]);
  return out;
}

/** What PostgreSQL holds now for the days before `before` (lake.digest of every table). */
export async function postgresDays(sql: Sql, before: Date): Promise<Days> {
  const rows = await sql<{ name: string; day: string; row_count: string; checksum: string }[]>`
    select t.layer || '.' || t.table_name as name, d.day::text as day, d.row_count::text,
        d.checksum::text
    from lake.tables as t
    cross join lateral lake.digest(t.table_name, null, lake.closed_before(${before})) as d
    order by 1, 2`;
  const out: Days = {};
  for (const r of rows) (out[r.name] ??= []).push([r.day, Number(r.row_count), r.checksum]);
  return out;
}

/** The metadata file each Iceberg table's catalog entry points at (changes with each commit). */
export async function catalogPointers(sql: Sql): Promise<Record<string, string>> {
  const rows = await sql<{ name: string; location: string }[]>`
    select table_namespace || '.' || table_name as name, metadata_location as location
    from lake_catalog.iceberg_tables order by 1`;
  return Object.fromEntries(rows.map((r) => [r.name, r.location]));
}

export interface S3Server {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  stop(): Promise<void>;
}

/** A private SeaweedFS S3 gateway (scripts/s3.sh, built once per machine) in `dir`, with
 * `bucket` created; stop() ends it. */
export async function s3Server(dir: string, bucket: string): Promise<S3Server> {
  const port = 30_000 + (Deno.pid % 2_000) * 3;
  const accessKey = "lake-test";
  const secretKey = "lake-test-secret";
  const built = await new Deno.Command("bash", {
    args: [`${root}scripts/s3.sh`, "bin"],
    stdout: "null",
    stderr: "inherit",
  }).output();
  if (!built.success) throw new Error("Cannot build SeaweedFS (scripts/s3.sh bin, see above)");
  const child = new Deno.Command("bash", {
    args: [
      "-c",
      `exec bash "$0" run "$1" "$2" "$3" "$4" >"$5" 2>&1`,
      `${root}scripts/s3.sh`,
      `${dir}/s3`,
      String(port),
      accessKey,
      secretKey,
      `${dir}/weed.log`,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const endpoint = `http://127.0.0.1:${port}`;
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
  };
  // the gateway answers once master, volume and filer are up; then the bucket is made with
  // the writer's own S3 client (pyarrow)
  const deadline = Date.now() + 120_000;
  for (;;) {
    const made = await new Deno.Command(await lakePython(), {
      args: [
        "-c",
        `import pyarrow.fs as f; f.S3FileSystem(endpoint_override="${endpoint}", scheme="http", access_key="${accessKey}", secret_key="${secretKey}", region="us-east-1", allow_bucket_creation=True).create_dir("${bucket}")`,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (made.success) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `SeaweedFS did not accept a bucket within 120 s (log: ${dir}/weed.log): ${
          new TextDecoder().decode(made.stderr).slice(-500)
        }`,
      );
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  return { endpoint, accessKey, secretKey, stop };
}

/** Rows per day of Parquet `files` as DuckDB (Python package, .tools/lake-reader) reads them. */
export async function duckdbDays(files: string[]): Promise<[string, number][]> {
  const { python } = await sparkReader();
  const out = await new Deno.Command(python, {
    args: [
      "-c",
      'import duckdb, json, sys; print(json.dumps(duckdb.execute("select day::varchar, count(*) from read_parquet(?) group by day order by day", [json.loads(sys.argv[1])]).fetchall()))',
      JSON.stringify(files),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`DuckDB could not read the files: ${new TextDecoder().decode(out.stderr)}`);
  }
  return JSON.parse(new TextDecoder().decode(out.stdout)) as [string, number][];
}
