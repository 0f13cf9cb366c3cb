// Logging: readable lines on stderr, JSON lines appended to LOG_DIR/<component>-YYYY-MM-DD.log.
import { config } from "./config.ts";

const levels = { debug: 10, info: 20, warn: 30, error: 40 } as const;
export type Level = keyof typeof levels;
export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
}

function fmt(value: unknown): string {
  if (typeof value === "string") return /[\s"=]/.test(value) ? JSON.stringify(value) : value;
  if (value instanceof Error) return JSON.stringify(value.message);
  return JSON.stringify(value);
}

/** A logger for one component (ingest, serve, ...). */
export function logger(
  component: string,
  opts: { level?: Level; dir?: string; quiet?: boolean } = {},
): Logger {
  const cfg = opts.level && opts.dir ? undefined : config();
  const min = levels[opts.level ?? cfg!.LOG_LEVEL];
  const dir = opts.dir ?? cfg!.LOG_DIR;
  let dirReady = false;

  function write(level: Level, msg: string, fields: Fields = {}) {
    if (levels[level] < min) return;
    const now = new Date();
    const iso = now.toISOString();
    if (!opts.quiet) {
      const kv = Object.entries(fields).map(([k, v]) => `${k}=${fmt(v)}`).join(" ");
      const tag = level === "info" ? "" : `${level.toUpperCase()} `;
      console.error(`${iso.slice(11, 19)} ${component} ${tag}${msg}${kv ? " " + kv : ""}`);
    }
    try {
      if (!dirReady) {
        Deno.mkdirSync(dir, { recursive: true });
        dirReady = true;
      }
      const record: Fields = { time: iso, level, component, msg };
      for (const [k, v] of Object.entries(fields)) {
        record[k] = v instanceof Error ? v.message : v;
      }
      Deno.writeTextFileSync(
        `${dir}/${component}-${iso.slice(0, 10)}.log`,
        JSON.stringify(record) + "\n",
        { append: true },
      );
    } catch {
      // a log file we cannot write must not stop the pipeline; the terminal line was printed
    }
  }

  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
  };
}
