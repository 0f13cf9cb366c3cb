// GET /v1/analytics/<view>: rows of one analytics view, read as the analyst role. View and
// column names come from the catalog; user input reaches SQL only as a validated identifier
// or as a bound parameter.
import type postgres from "postgres";
import type { Sql } from "../common/db.ts";
import { HttpError } from "./responses.ts";

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 10_000;
const STATEMENT_TIMEOUT_MS = 15_000;
const IDENT = /^[a-z_][a-z0-9_]*$/;

export interface ViewInfo {
  name: string;
  kind: "view" | "materialized view";
  columns: { name: string; type: string }[];
}

/**
 * The analytics views (and materialized views) the analyst may select from, with their
 * columns. pg_catalog rather than information_schema, which leaves materialized views out.
 * Cached for a few seconds: views appear while the server runs (make up re-applies db/views).
 */
export class Catalog {
  #cached: { at: number; views: Map<string, ViewInfo> } | undefined;

  constructor(readonly sql: Sql, readonly ttlMs = 5_000) {}

  async views(): Promise<Map<string, ViewInfo>> {
    if (this.#cached && performance.now() - this.#cached.at < this.ttlMs) {
      return this.#cached.views;
    }
    const rows = await this.sql`
      select c.relname as view, c.relkind as kind, a.attname as column,
          format_type(a.atttypid, a.atttypmod) as type
      from pg_catalog.pg_class as c
      join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
      join pg_catalog.pg_attribute as a
          on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
      where n.nspname = 'analytics' and c.relkind in ('v', 'm')
          and pg_catalog.has_table_privilege(c.oid, 'select')
      order by c.relname, a.attnum`;
    const views = new Map<string, ViewInfo>();
    for (const r of rows) {
      if (!IDENT.test(r.view)) continue;
      let v = views.get(r.view);
      if (!v) {
        v = { name: r.view, kind: r.kind === "m" ? "materialized view" : "view", columns: [] };
        views.set(r.view, v);
      }
      v.columns.push({ name: r.column, type: r.type });
    }
    this.#cached = { at: performance.now(), views };
    return views;
  }

  async has(view: string): Promise<boolean> {
    return (await this.views()).has(view);
  }
}

/** Runs `fn` in a read-only transaction with a statement timeout. */
export function read<T>(sql: Sql, fn: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
  return sql.begin("read only", async (tx) => {
    await tx.unsafe(`set local statement_timeout = ${STATEMENT_TIMEOUT_MS}`);
    return await fn(tx);
  }) as Promise<T>;
}

const NUMERIC = 1700, DATE = 1082;

/** JSON-friendly rows: numeric as numbers, dates as YYYY-MM-DD. */
export function plain(rows: postgres.RowList<postgres.Row[]>): Record<string, unknown>[] {
  const numeric = rows.columns.filter((c) => c.type === NUMERIC).map((c) => c.name);
  const dates = rows.columns.filter((c) => c.type === DATE).map((c) => c.name);
  return rows.map((r) => {
    const o: Record<string, unknown> = { ...r };
    for (const n of numeric) if (o[n] !== null) o[n] = Number(o[n]);
    for (const n of dates) {
      if (o[n] instanceof Date) o[n] = (o[n] as Date).toISOString().slice(0, 10);
    }
    return o;
  });
}

function parseLimit(raw: string | null): number {
  if (raw === null) return DEFAULT_LIMIT;
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_LIMIT) {
    throw new HttpError(400, `limit must be a whole number from 1 to ${MAX_LIMIT} (got "${raw}")`);
  }
  return Number(raw);
}

/** SQLSTATEs that mean "this filter value does not fit the column". */
const BAD_VALUE = new Set(["22P02", "22007", "22008", "22003", "22023", "42883", "42804"]);

export function createAnalyticsHandler(deps: { analyst: Sql; catalog: Catalog }) {
  const { analyst, catalog } = deps;

  async function list(): Promise<Record<string, unknown>> {
    const views = await catalog.views();
    return { views: [...views.values()] };
  }

  async function rows(view: string, params: URLSearchParams): Promise<Record<string, unknown>> {
    const views = await catalog.views();
    const info = views.get(view);
    if (!info) {
      const names = [...views.keys()];
      throw new HttpError(
        404,
        `No analytics view "${view}": ${
          names.length
            ? `use one of ${names.join(", ")}`
            : "no analytics view exists yet (run make up)"
        }`,
        {},
        { views: names },
      );
    }
    const limit = parseLimit(params.get("limit"));
    const columns = new Set(info.columns.map((c) => c.name));
    const filters: [string, string][] = [];
    for (const [name, value] of params) {
      if (name === "limit") continue;
      if (!columns.has(name)) {
        throw new HttpError(
          400,
          `Unknown column "${name}" in view "${view}": filter on one of ${
            [...columns].join(", ")
          } (?column=value), or use ?limit=N`,
        );
      }
      if (filters.some(([n]) => n === name)) {
        throw new HttpError(400, `Filter "${name}" is given twice: give each column once`);
      }
      filters.push([name, value]);
    }
    try {
      const result = await read(analyst, (tx) => {
        const conds = filters.map(([c, v]) =>
          v === "" ? tx`${tx(c)} is null` : tx`${tx(c)} = ${v}`
        );
        const where = conds.length ? conds.reduce((acc, c) => tx`${acc} and ${c}`) : tx`true`;
        return tx`select * from ${tx(`analytics.${view}`)} where ${where} limit ${limit}`;
      });
      return {
        view,
        limit,
        filters: Object.fromEntries(filters),
        count: result.length,
        rows: plain(result),
      };
    } catch (error) {
      const code = (error as { code?: string }).code ?? "";
      if (BAD_VALUE.has(code)) {
        throw new HttpError(
          400,
          `A filter value does not fit its column (${
            (error as Error).message
          }): check the value's type, e.g. a date as 2026-11-21`,
          {},
          {},
          { cause: error },
        );
      }
      throw error;
    }
  }

  return { list, rows };
}
