// Database access: postgres.js from DATABASE_URL.
import postgres from "postgres";
import { config } from "./config.ts";

export type Sql = postgres.Sql;

export interface ConnectOptions {
  url?: string;
  /** run every statement as this role (SET ROLE at connection start) */
  role?: string;
  max?: number;
  /** how long to wait for a connection, seconds */
  connectTimeout?: number;
}

/** A postgres.js pool; quiet about notices, UTC, optionally acting as a pipeline role. */
export function connect(opts: ConnectOptions = {}): Sql {
  const url = opts.url ?? config().DATABASE_URL;
  const connection: Record<string, string> = { application_name: "ecommerce-pipeline" };
  if (opts.role) connection.role = opts.role;
  return postgres(url, {
    max: opts.max ?? 4,
    onnotice: () => {},
    connect_timeout: opts.connectTimeout ?? 10,
    idle_timeout: 30,
    connection: { TimeZone: "UTC", ...connection },
    // counts and ids fit in a double; strings for int8 would leak into every caller
    types: {
      bigint: {
        to: 20,
        from: [20],
        serialize: (x: number) => String(x),
        parse: (x: string) => Number(x),
      },
    },
  });
}

/** Replaces the database name in a postgres URL. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
