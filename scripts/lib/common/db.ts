// Database access: postgres.js from DATABASE_URL.
import net from "node:net";
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
  const options = {
    socket: noDelaySocket, // not in postgres.js's types, supported by its connection code
    max: opts.max ?? 4,
    onnotice: () => {},
    connect_timeout: opts.connectTimeout ?? 10,
    idle_timeout: 30,
    connection: { TimeZone: "UTC", ...connection },
    // int8 as a number while a double holds it exactly (counts, sums, ids up to 2^53 - 1),
    // else as its exact decimal string (19-digit ids such as snowflake ids)
    types: {
      bigint: {
        to: 20,
        from: [20],
        serialize: (x: number | string | bigint) => String(x),
        parse: parseInt8,
      },
    },
  };
  return postgres(url, options);
}

/** An int8 from PostgreSQL: a number when exact, else the decimal string (never rounded). */
export function parseInt8(x: string): number | string {
  const n = Number(x);
  return Number.isSafeInteger(n) ? n : x;
}

/**
 * postgres.js leaves Nagle's algorithm on: a small COPY or a query sent right after one waits
 * for the server's delayed ACK (docs/measurements.md). A socket of our own with TCP_NODELAY
 * removes the wait.
 */
function noDelaySocket(o: { host: string[]; port: number[] }): net.Socket {
  // returned while still connecting: postgres.js buffers its first write, and a refused
  // connection reaches its own error handler like on the sockets it makes itself
  const socket = net.connect({ host: o.host[0], port: o.port[0], noDelay: true });
  socket.once("connect", () => socket.setNoDelay(true));
  return socket;
}

/** Replaces the database name in a postgres URL. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/**
 * postgres.js 3.4.9 writes a COPY chunk to a socket it has already dropped when the server
 * dies mid-COPY ("Cannot read properties of null (reading 'write')", thrown from a timer, so
 * no caller can catch it). Uncaught, it would kill a long-running process; this handler
 * absorbs exactly that error. The COPY it belonged to then stalls and copyStream fails the
 * batch, which is retried.
 */
export function absorbDriverCrashes(onAbsorbed: (error: Error) => void): void {
  globalThis.addEventListener("error", (event) => {
    const e = event.error;
    if (e instanceof TypeError && /reading 'write'/.test(e.message)) {
      event.preventDefault();
      onAbsorbed(e);
    }
  });
}
