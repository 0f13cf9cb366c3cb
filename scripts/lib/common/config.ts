// Configuration: read once from the environment (plus an optional .env), validated with zod.
import { z } from "zod";

const positiveInt = (name: string) =>
  z.coerce.number({ error: `${name} must be a whole number` }).int(`${name} must be a whole number`)
    .positive(`${name} must be greater than 0`);

/** Every variable, its default and its form; docs/configuration.md mirrors this. */
export const variables = {
  DATABASE_URL: {
    default: "postgres://postgres:postgres@127.0.0.1:5433/ecommerce",
    schema: z.string().regex(
      /^postgres(ql)?:\/\/[^/]+\/[^/?]+(\?.*)?$/,
      "DATABASE_URL must look like postgres://user:password@host:port/database",
    ),
  },
  LOG_LEVEL: {
    default: "info",
    schema: z.enum(["debug", "info", "warn", "error"], {
      error: "LOG_LEVEL must be one of debug, info, warn, error",
    }),
  },
  LOG_DIR: { default: "data/logs", schema: z.string().min(1) },
  DATA_DIR: { default: "data", schema: z.string().min(1) },
  MAX_PRICE: {
    default: "10000",
    schema: z.coerce.number({ error: "MAX_PRICE must be a number" }).positive(
      "MAX_PRICE must be greater than 0",
    ),
  },
  FUTURE_TOLERANCE_SECONDS: { default: "300", schema: positiveInt("FUTURE_TOLERANCE_SECONDS") },
  TOO_OLD_DAYS: { default: "400", schema: positiveInt("TOO_OLD_DAYS") },
  LATE_AFTER_SECONDS: { default: "600", schema: positiveInt("LATE_AFTER_SECONDS") },
  MIN_VALIDITY_RATE: {
    default: "0.95",
    schema: z.coerce.number({ error: "MIN_VALIDITY_RATE must be a number between 0 and 1" })
      .min(0, "MIN_VALIDITY_RATE must be between 0 and 1").max(
        1,
        "MIN_VALIDITY_RATE must be between 0 and 1",
      ),
  },
  EMAIL_HASH_KEY: { default: "change-me-in-production", schema: z.string().min(8) },
  INGEST_ROLE: { default: "pipeline_ingest", schema: z.string().regex(/^[a-z_][a-z0-9_]*$/) },
  ANALYST_ROLE: { default: "pipeline_analyst", schema: z.string().regex(/^[a-z_][a-z0-9_]*$/) },
  DB_RETRY_MAX_SECONDS: { default: "30", schema: positiveInt("DB_RETRY_MAX_SECONDS") },
  BREAKER_THRESHOLD: { default: "5", schema: positiveInt("BREAKER_THRESHOLD") },
  SCAN_INTERVAL_SECONDS: { default: "2", schema: positiveInt("SCAN_INTERVAL_SECONDS") },
  SERVE_PORT: { default: "8080", schema: positiveInt("SERVE_PORT") },
  API_KEYS: {
    default: "dev-key",
    schema: z.string().min(1, "API_KEYS must list at least one key"),
  },
  // dashboard data-quality drill-down (docs/analytics.md): keys that may read example rejected
  // rows (none: drill-down off), and the database role those reads run as
  DEAD_LETTER_KEYS: { default: "", schema: z.string() },
  DEAD_LETTER_ROLE: {
    default: "pipeline_quality_reader",
    schema: z.string().regex(/^[a-z_][a-z0-9_]*$/),
  },
  MAX_BODY_BYTES: { default: "10485760", schema: positiveInt("MAX_BODY_BYTES") },
  MAX_CONCURRENT_BATCHES: { default: "32", schema: positiveInt("MAX_CONCURRENT_BATCHES") },
  PARALLEL_FILE_MIN_MB: {
    default: "32",
    schema: z.coerce.number({ error: "PARALLEL_FILE_MIN_MB must be a number of megabytes" })
      .min(0, "PARALLEL_FILE_MIN_MB must be 0 (every file) or more"),
  },
  GROUP_COMMIT_MS: {
    default: "2",
    schema: z.coerce.number({ error: "GROUP_COMMIT_MS must be a whole number of milliseconds" })
      .int("GROUP_COMMIT_MS must be a whole number of milliseconds")
      .min(0, "GROUP_COMMIT_MS must be 0 (off) or more").max(
        1000,
        "GROUP_COMMIT_MS must be at most 1000",
      ),
  },
  HTTP_ANALYTICS: {
    default: "deferred",
    schema: z.enum(["deferred", "inline"], {
      error: "HTTP_ANALYTICS must be deferred or inline",
    }),
  },
  ANALYTICS_INTERVAL_MS: { default: "250", schema: positiveInt("ANALYTICS_INTERVAL_MS") },
  // #14 production: where serve listens, read keys, the demo override
  SERVE_HOST: { default: "127.0.0.1", schema: z.string().min(1) },
  READ_KEYS: { default: "", schema: z.string() },
  MAINTAIN_INTERVAL_MINUTES: {
    default: "60",
    schema: z.coerce.number({ error: "MAINTAIN_INTERVAL_MINUTES must be a whole number" }).int(
      "MAINTAIN_INTERVAL_MINUTES must be a whole number",
    ).min(0, "MAINTAIN_INTERVAL_MINUTES must be 0 (never) or more"),
  },
  INGEST_METRICS_PORT: {
    default: "0",
    schema: z.coerce.number({ error: "INGEST_METRICS_PORT must be a port number" }).int(
      "INGEST_METRICS_PORT must be a port number",
    ).min(0, "INGEST_METRICS_PORT must be 0 (off) to 65535").max(
      65535,
      "INGEST_METRICS_PORT must be 0 (off) to 65535",
    ),
  },
  INGEST_METRICS_HOST: { default: "127.0.0.1", schema: z.string().min(1) },
  ALLOW_INSECURE_DEFAULTS: {
    default: "0",
    schema: z.enum(["0", "1"], { error: "ALLOW_INSECURE_DEFAULTS must be 0 or 1" }),
  },
  // how long one reading of GET /v1/dashboard serves every viewer (make storefront: 250)
  DASHBOARD_CACHE_MS: { default: "2000", schema: positiveInt("DASHBOARD_CACHE_MS") },
  // the browser source, POST /v1/collect (docs/tracking.md#abuse-limits)
  BROWSER_MAX_BODY_BYTES: { default: "65536", schema: positiveInt("BROWSER_MAX_BODY_BYTES") },
  BROWSER_MAX_EVENTS: { default: "100", schema: positiveInt("BROWSER_MAX_EVENTS") },
  BROWSER_IP_REQUESTS_PER_MINUTE: {
    default: "300",
    schema: positiveInt("BROWSER_IP_REQUESTS_PER_MINUTE"),
  },
  BROWSER_MAX_PENDING: { default: "512", schema: positiveInt("BROWSER_MAX_PENDING") },
  BROWSER_GROUP_COMMIT_MS: {
    default: "20",
    schema: z.coerce.number({
      error: "BROWSER_GROUP_COMMIT_MS must be a whole number of milliseconds",
    }).int("BROWSER_GROUP_COMMIT_MS must be a whole number of milliseconds")
      .min(0, "BROWSER_GROUP_COMMIT_MS must be 0 (off) or more").max(
        1000,
        "BROWSER_GROUP_COMMIT_MS must be at most 1000",
      ),
  },
  BROWSER_TRUST_PROXY: {
    default: "0",
    schema: z.enum(["0", "1"], { error: "BROWSER_TRUST_PROXY must be 0 or 1" }),
  },
  // the lake (docs/lake.md): where deno task export writes the Iceberg tables (empty:
  // DATA_DIR/lake), the S3-compatible endpoint and credentials for an s3:// warehouse, and how
  // often deno task export --watch runs
  LAKE_WAREHOUSE: {
    default: "",
    schema: z.string().regex(
      /^$|^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$|^(file:\/\/)?[^:]+$/,
      "LAKE_WAREHOUSE must be a directory or an s3://bucket/prefix URI",
    ),
  },
  LAKE_S3_ENDPOINT: {
    default: "",
    schema: z.string().regex(
      /^$|^https?:\/\/[^/\s]+\/?$/,
      "LAKE_S3_ENDPOINT must be an http(s)://host:port URL, such as http://127.0.0.1:8333",
    ),
  },
  LAKE_S3_REGION: { default: "us-east-1", schema: z.string().min(1) },
  LAKE_S3_ACCESS_KEY_ID: { default: "", schema: z.string() },
  LAKE_S3_SECRET_ACCESS_KEY: { default: "", schema: z.string() },
  LAKE_EXPORT_INTERVAL_MINUTES: {
    default: "60",
    schema: positiveInt("LAKE_EXPORT_INTERVAL_MINUTES"),
  },
  // deno task consume (docs/kafka.md#memory): megabytes of message values the process holds
  // fetched and not loaded yet, shared by its --consumers; fetching pauses above it
  KAFKA_FETCH_AHEAD_MB: {
    default: "24",
    schema: z.coerce.number({ error: "KAFKA_FETCH_AHEAD_MB must be a number of megabytes" })
      .min(0.0625, "KAFKA_FETCH_AHEAD_MB must be at least 0.0625 (64 KiB)").max(
        4096,
        "KAFKA_FETCH_AHEAD_MB must be at most 4096",
      ),
  },
  REPORTING_CURRENCY: {
    default: "USD",
    schema: z.string().regex(
      /^[A-Z]{3}$/,
      "REPORTING_CURRENCY must be a three-letter currency code in capitals, such as USD",
    ),
  },
} as const;

/** Defaults that are fine on a laptop and must never face a network. */
export const INSECURE_DEFAULTS = {
  API_KEYS: variables.API_KEYS.default,
  EMAIL_HASH_KEY: variables.EMAIL_HASH_KEY.default,
} as const;

type Vars = typeof variables;
export type Config = { [K in keyof Vars]: z.output<Vars[K]["schema"]> };

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Parses `KEY=value` lines; `#` comments and blank lines are skipped, quotes stripped. */
export function parseDotenv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    let value = line.slice(eq + 1).trim();
    const hash = value.search(/\s#/);
    if (hash >= 0 && !/^["']/.test(value)) value = value.slice(0, hash).trim();
    value = value.replace(/^(['"])(.*)\1$/, "$2");
    out[key] = value;
  }
  return out;
}

function readDotenv(path: string): Record<string, string> {
  try {
    return parseDotenv(Deno.readTextFileSync(path));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return {};
    throw new ConfigError(`Cannot read "${path}"`, { cause: error });
  }
}

/** Builds the config from `env` (default: .env overlaid by the process environment). */
export function loadConfig(env?: Record<string, string | undefined>): Config {
  const source = env ?? { ...readDotenv(".env"), ...Deno.env.toObject() };
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(variables)) {
    let raw = source[name];
    if (raw === undefined || raw === "") {
      raw = name === "DATABASE_URL" && source.PGPORT
        ? spec.default.replace(":5433/", `:${source.PGPORT}/`)
        : spec.default;
    }
    const parsed = (spec.schema as z.ZodType).safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]?.message ?? "invalid value";
      const hint = issue.includes(name) ? issue : `${name} is invalid: ${issue}`;
      throw new ConfigError(`${hint} (got "${raw}")`);
    }
    out[name] = parsed.data;
  }
  return out as Config;
}

let cached: Config | undefined;

/** The process config; on a bad value prints one line naming the variable and exits 2. */
export function config(): Config {
  if (cached) return cached;
  try {
    cached = loadConfig();
    return cached;
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`error: ${error.message}`);
      Deno.exit(2);
    }
    throw error;
  }
}
