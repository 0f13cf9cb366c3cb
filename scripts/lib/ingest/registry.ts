// The schema registry from TypeScript: reading a definition file and calling the SQL functions
// of db/functions/ingest/schema_registry.sql (which hold every rule: this only moves bytes).
import { createHash } from "node:crypto";
import type { Sql } from "../common/db.ts";

/** A definition file that cannot be read or is not a JSON object. */
export class DefinitionError extends Error {
  override name = "DefinitionError";
}

export interface SchemaVersionRow {
  version: number;
  columns: string[];
  types: Record<string, string>;
  required: string[];
  renames: Record<string, string>;
  upgrade: Record<string, unknown>;
  status: string;
  description: string;
  registered_at: string;
  registered_by: string;
}

/** Reads a schema definition (JSON object) from a file; DefinitionError names the problem. */
export async function readDefinition(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new DefinitionError(
      `Cannot read "${path}" (${(error as Error).message}): give the path of a JSON file`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new DefinitionError(
      `"${path}" is not valid JSON (${(error as Error).message}): see docs/schema-registry.md`,
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new DefinitionError(
      `"${path}" must hold one JSON object like {"version": 3, "extends": 2, "add": [...]}`,
    );
  }
  return value as Record<string, unknown>;
}

/** Registers a version (ingest.register_schema_version); the database refuses what breaks. */
export async function registerVersion(
  sql: Sql,
  definition: Record<string, unknown>,
): Promise<SchemaVersionRow> {
  const [{ row }] = await sql`
    select ingest.register_schema_version(${sql.json(definition as never)}::jsonb) as row`;
  return row as SchemaVersionRow;
}

export async function listVersions(sql: Sql): Promise<SchemaVersionRow[]> {
  const rows = await sql`
    select to_jsonb(v) as row from ingest.schema_versions as v order by v.version`;
  return rows.map((r) => r.row as SchemaVersionRow);
}

export async function listPins(sql: Sql) {
  return await sql`
    select source_kind, source_match, version, note, created_at
    from ingest.source_schemas order by source_kind, source_match`;
}

/** The client id the collector derives from an API key (never the key itself). */
export function httpClientId(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex").slice(0, 32);
}

export async function pinSource(
  sql: Sql,
  kind: string,
  match: string,
  version: number | null,
  note = "",
) {
  const [{ r }] = await sql`
    select ingest.pin_source_schema(${kind}, ${match}, ${version}::int, ${note}) as r`;
  return r;
}

export async function setStatus(sql: Sql, version: number, status: string) {
  const [{ r }] = await sql`select ingest.set_schema_status(${version}::int, ${status}) as r`;
  return r as SchemaVersionRow;
}
