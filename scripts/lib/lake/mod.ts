// The lake (docs/lake.md): runs the Iceberg writer (export.py, PyIceberg in .tools/lake) for
// deno task export, its watch mode, the tests and the bench. SQL decides what is exported
// (db/functions/lake/export.sql); this only starts the writer and reads its result.
import { isAbsolute, resolve } from "node:path";
import type { Config } from "../common/config.ts";

const root = new URL("../../..", import.meta.url).pathname;
const writer = `${root}scripts/lib/lake/export.py`;

export interface TableResult {
  days: number;
  rows: number;
  snapshots: string[];
  columns_added: string[];
}

export interface ExportResult {
  warehouse: string;
  tables: Record<string, TableResult>;
  rows: number;
  days: number;
  seconds: number;
}

export class ExportError extends Error {
  override name = "ExportError";
}

let python: string | undefined;

/** The lake writer's python (scripts/stack.sh lake installs it into .tools/lake when missing). */
export async function lakePython(): Promise<string> {
  if (python) return python;
  const out = await new Deno.Command("bash", {
    args: [`${root}scripts/stack.sh`, "lake"],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) {
    throw new ExportError(
      "Cannot install the lake writer (PyIceberg) into .tools/lake: see the error above",
    );
  }
  python = new TextDecoder().decode(out.stdout).trim();
  return python;
}

/** The warehouse URI: LAKE_WAREHOUSE, else DATA_DIR/lake (a directory, made absolute). */
export function warehouseOf(cfg: Pick<Config, "LAKE_WAREHOUSE" | "DATA_DIR">): string {
  const w = cfg.LAKE_WAREHOUSE || `${cfg.DATA_DIR}/lake`;
  if (w.startsWith("s3://") || w.startsWith("file://")) return w;
  return isAbsolute(w) ? w : resolve(w);
}

export interface ExportOptions {
  now: Date;
  table?: string;
  /** test-only: PIPELINE_CRASH_AT for the writer (lake-after-data-files, lake-after-commit,
   * lake-before-ledger-commit): it kills itself with SIGKILL there */
  crashAt?: string;
  /** rows read and written per catalog commit at most (whole days) */
  chunkRows?: number;
}

type LakeConfig = Pick<
  Config,
  | "DATABASE_URL"
  | "DATA_DIR"
  | "LAKE_WAREHOUSE"
  | "LAKE_S3_ENDPOINT"
  | "LAKE_S3_REGION"
  | "LAKE_S3_ACCESS_KEY_ID"
  | "LAKE_S3_SECRET_ACCESS_KEY"
>;

/** The Parquet files of the current snapshot of `table` ("layer.name"), for readers without
 * Iceberg support: the files of overwritten days are left out. */
export async function currentFiles(cfg: LakeConfig, table: string): Promise<string[]> {
  const out = await new Deno.Command(await lakePython(), {
    args: [writer, "--files", table],
    env: writerEnv(cfg),
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const last = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-1)[0];
    throw new ExportError(`Cannot list the files of ${table}: ${last}`);
  }
  return JSON.parse(new TextDecoder().decode(out.stdout)) as string[];
}

function writerEnv(cfg: LakeConfig): Record<string, string> {
  return {
    DATABASE_URL: cfg.DATABASE_URL,
    LAKE_WAREHOUSE: warehouseOf(cfg),
    LAKE_S3_ENDPOINT: cfg.LAKE_S3_ENDPOINT,
    LAKE_S3_REGION: cfg.LAKE_S3_REGION,
    LAKE_S3_ACCESS_KEY_ID: cfg.LAKE_S3_ACCESS_KEY_ID,
    LAKE_S3_SECRET_ACCESS_KEY: cfg.LAKE_S3_SECRET_ACCESS_KEY,
    PYTHONWARNINGS: "ignore",
  };
}

/** One export run: every closed day the ledger lacks, written as Iceberg snapshots. */
export async function runExport(cfg: LakeConfig, opts: ExportOptions): Promise<ExportResult> {
  const warehouse = warehouseOf(cfg);
  if (!warehouse.includes("://")) await Deno.mkdir(warehouse, { recursive: true });
  const args = [writer, "--now", opts.now.toISOString()];
  if (opts.table) args.push("--table", opts.table);
  const env = writerEnv(cfg);
  if (opts.crashAt) env.PIPELINE_CRASH_AT = opts.crashAt;
  if (opts.chunkRows) env.LAKE_CHUNK_ROWS = String(opts.chunkRows);
  const out = await new Deno.Command(await lakePython(), {
    args,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr).trim();
  if (!out.success) {
    const how = out.signal ? `was killed (${out.signal})` : `exited with ${out.code}`;
    const last = stderr.split("\n").filter((l) => l.trim() !== "").slice(-3).join(" | ");
    throw new ExportError(`The lake writer ${how}: ${last || "no message"}`);
  }
  const line = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line) as ExportResult;
  } catch (error) {
    throw new ExportError(`The lake writer printed no result (got "${line.slice(0, 200)}")`, {
      cause: error,
    });
  }
}
