// Command-line flags of `deno task generate`: every flag declared, each value checked for its
// form (a bad one is an OptionError naming the flag and the expected form).
import { parseArgs } from "node:util";
import {
  DEFAULTS,
  type GenerateOptions,
  MAX_EVENTS,
  MAX_FILES,
  MAX_PRODUCTS,
  MAX_USERS,
  OptionError,
} from "./plan.ts";
import { MAX_SEED } from "./random.ts";

export const HELP = `Usage: deno task generate [flags]

Writes CSV event files (docs/contract.md) from a simulated shop, with anomalies, duplicates and
late events injected at known rates, and optionally a manifest of the expected counts.

  --files N            files to write (default ${DEFAULTS.files}; not with --continuous)
  --events N           rows per file, 1..${MAX_EVENTS} (default ${DEFAULTS.events})
  --daily-events N     instead of --events: rows per file follow the daily and weekly cycle,
                       a day of weekday weight 1 holding N rows (100000: about 1.2 rows/s on
                       average, 2 at the 20:00 UTC peak); sessions run on across files
  --interval S         seconds of event time per file, e.g. 60 or 0.5 (default ${DEFAULTS.intervalSeconds});
                       with --continuous also the pace: one file every S seconds
  --continuous         write files until SIGINT/SIGTERM (the file in hand is finished)
  --seed N             seed, 0..${MAX_SEED} (default: random, printed)
  --start-time ISO     start of the first file's window, with an offset, e.g.
                       2026-11-21T10:00:00Z (default: now - files x interval, so the run
                       ends now; with --continuous: now)
  --anomaly-rate R     share of rows made invalid, 0..1 (default ${DEFAULTS.anomalyRate})
  --duplicate-rate R   share of rows re-sent (1 in 5 with a conflicting payload), 0..1
                       (default ${DEFAULTS.duplicateRate})
  --late-rate R        share of regular rows dated 15 min to 6 h early, 0..1 (default ${DEFAULTS.lateRate})
  --schema-version V   1 (7 columns), 2 (15 columns) or 3 (2 + coupon_code: register it first,
                       deno task schema add db/schemas/v3-coupon-code.json) (default ${DEFAULTS.schemaVersion})
  --out DIR            output directory, created if missing (default ${DEFAULTS.outDir})
  --manifest FILE      also write the expected counts per file as JSON
  --id-version V       event ids: 7 (time-ordered UUIDv7) or 4 (random UUIDv4) (default ${DEFAULTS.idVersion})
  --cart-rate R        per product viewed, chance of an add to cart, 0..1 (default ${DEFAULTS.cartRate});
                       scaled per segment, traffic source and device
  --checkout-rate R    chance that a session that carted buys, 0..1 (default ${DEFAULTS.checkoutRate})
  --buy-now-rate R     per product viewed, chance of buying at once without a cart, 0..1
                       (default ${DEFAULTS.buyNowRate})
  --shop-seed N        one shop across runs: catalogue (categories, prices) and customers
                       (ids, e-mails, currencies) from this seed alone, the same in every run
                       that names it (default: each run makes its own from --seed)
  --shop-users N       with --shop-seed: customers in the shared base (default: the run's)
  --shop-products N    with --shop-seed: products in the shared catalogue (default: from the volume)
  --active-users N     sessions come from the first N customers (default: one per 10 rows of
                       the run, or of a day with --daily-events)
  --traffic T          cycle: event times follow a shop's daily and weekly cycle within each
                       file's window; flat: evenly spread (default ${DEFAULTS.traffic})
  --kafka-brokers LIST also produce every record to Kafka (host:port,...), one event per message,
                       after each file is written; the manifest holds for the messages too
  --kafka-topic NAME   the topic (default events); with --kafka-route the topic prefix
  --kafka-route        route by event type to NAME.views, .carts, .purchases, .searches, .other
  --kafka-format F     json (the NDJSON field names, default) or csv (the record as written)
  --quiet              print nothing but errors
  -h, --help           show this help

Files are named events-<window start UTC>-<seed>-<index>.csv, written as .csv.tmp and renamed
when complete; an existing file is never replaced. The same flags with --seed and --start-time
give byte-identical files. Exit status: 0 done, 1 failed, 2 bad flags.`;

export interface KafkaTarget {
  brokers: string[];
  topic: string;
  routeByType: boolean;
  format: "json" | "csv";
}

export interface Cli {
  options: GenerateOptions;
  /** producer mode: the records also go to Kafka */
  kafka?: KafkaTarget;
  quiet: boolean;
  help: boolean;
}

const OPTIONS = {
  files: { type: "string" },
  events: { type: "string" },
  interval: { type: "string" },
  continuous: { type: "boolean" },
  seed: { type: "string" },
  "start-time": { type: "string" },
  "anomaly-rate": { type: "string" },
  "duplicate-rate": { type: "string" },
  "late-rate": { type: "string" },
  "schema-version": { type: "string" },
  out: { type: "string" },
  manifest: { type: "string" },
  "id-version": { type: "string" },
  "cart-rate": { type: "string" },
  "checkout-rate": { type: "string" },
  "buy-now-rate": { type: "string" },
  traffic: { type: "string" },
  "daily-events": { type: "string" },
  "shop-seed": { type: "string" },
  "shop-users": { type: "string" },
  "shop-products": { type: "string" },
  "active-users": { type: "string" },
  "kafka-brokers": { type: "string" },
  "kafka-topic": { type: "string" },
  "kafka-route": { type: "boolean" },
  "kafka-format": { type: "string" },
  quiet: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

function whole(flag: string, text: string | undefined, min: number, max: number) {
  if (text === undefined) return undefined;
  const value = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!(value >= min && value <= max)) {
    throw new OptionError(`--${flag} must be a whole number from ${min} to ${max} (got "${text}")`);
  }
  return value;
}

function rate(flag: string, text: string | undefined) {
  if (text === undefined) return undefined;
  const value = /^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(text) ? Number(text) : NaN;
  if (!(value >= 0 && value <= 1)) {
    throw new OptionError(`--${flag} must be a number from 0 to 1, e.g. 0.02 (got "${text}")`);
  }
  return value;
}

function oneOf<T extends number>(flag: string, text: string | undefined, allowed: readonly T[]) {
  if (text === undefined) return undefined;
  const value = Number(text.trim()) as T;
  if (!/^\s*\d+\s*$/.test(text) || !allowed.includes(value)) {
    throw new OptionError(`--${flag} must be ${allowed.join(" or ")} (got "${text}")`);
  }
  return value;
}

function traffic(text: string | undefined): "cycle" | "flat" | undefined {
  if (text === undefined) return undefined;
  const value = text.trim();
  if (value !== "cycle" && value !== "flat") {
    throw new OptionError(`--traffic must be cycle or flat (got "${text}")`);
  }
  return value;
}

function path(flag: string, text: string | undefined) {
  if (text === undefined) return undefined;
  if (text.trim() === "") throw new OptionError(`--${flag} must not be empty`);
  return text;
}

/** The flag that parseArgs complained about, in a one-line message. */
function parseArgsMessage(error: Error & { code?: string }): string {
  const flag = /'(-{1,2}[^' <]+)/.exec(error.message)?.[1];
  switch (error.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `Unknown flag "${flag}" (see --help)`;
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `Unexpected argument "${
        /'([^']*)'/.exec(error.message)?.[1]
      }": every value belongs to a flag (see --help)`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      if (/does not take an argument/.test(error.message)) return `${flag} takes no value`;
      if (/ambiguous/.test(error.message)) {
        return `${flag} needs a value (one starting with "-" is written ${flag}=<value>)`;
      }
      return `${flag} needs a value (see --help)`;
    default:
      return error.message.split("\n")[0];
  }
}

/** Parses the flags; OptionError on any bad flag or value. */
export function parseFlags(args: string[]): Cli {
  let values;
  try {
    values = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (error) {
    if (error instanceof TypeError) {
      throw new OptionError(parseArgsMessage(error), { cause: error });
    }
    throw error;
  }
  const interval = values.interval;
  let intervalSeconds: number | undefined;
  if (interval !== undefined) {
    intervalSeconds = /^\s*(\d+(\.\d{0,3})?|\.\d{1,3})\s*$/.test(interval) ? Number(interval) : NaN;
    if (!(intervalSeconds >= 0.001 && intervalSeconds <= 2_592_000)) {
      throw new OptionError(
        `--interval must be a number of seconds from 0.001 to 2592000, at most 3 decimals (got "${interval}")`,
      );
    }
  }
  const startTime = values["start-time"];
  if (startTime !== undefined && startTime.trim() === "") {
    throw new OptionError('--start-time must be an ISO-8601 time with an offset (got "")');
  }
  const options: GenerateOptions = {
    files: whole("files", values.files, 1, MAX_FILES),
    events: whole("events", values.events, 1, MAX_EVENTS),
    intervalSeconds,
    continuous: values.continuous,
    seed: whole("seed", values.seed, 0, MAX_SEED),
    startTime,
    anomalyRate: rate("anomaly-rate", values["anomaly-rate"]),
    duplicateRate: rate("duplicate-rate", values["duplicate-rate"]),
    lateRate: rate("late-rate", values["late-rate"]),
    schemaVersion: oneOf("schema-version", values["schema-version"], [1, 2, 3] as const),
    outDir: path("out", values.out),
    manifestPath: path("manifest", values.manifest),
    idVersion: oneOf("id-version", values["id-version"], [7, 4] as const),
    cartRate: rate("cart-rate", values["cart-rate"]),
    checkoutRate: rate("checkout-rate", values["checkout-rate"]),
    buyNowRate: rate("buy-now-rate", values["buy-now-rate"]),
    traffic: traffic(values.traffic),
    dailyEvents: whole("daily-events", values["daily-events"], 1, MAX_EVENTS),
    shopSeed: whole("shop-seed", values["shop-seed"], 0, MAX_SEED),
    shopUsers: whole("shop-users", values["shop-users"], 1, MAX_USERS),
    shopProducts: whole("shop-products", values["shop-products"], 8, MAX_PRODUCTS),
    activeUsers: whole("active-users", values["active-users"], 1, MAX_USERS),
  };
  for (const key of Object.keys(options) as (keyof GenerateOptions)[]) {
    if (options[key] === undefined) delete options[key];
  }
  let kafka: KafkaTarget | undefined;
  if (values["kafka-brokers"] !== undefined) {
    const brokers = values["kafka-brokers"].split(",").map((b) => b.trim()).filter(Boolean);
    if (brokers.length === 0 || brokers.some((b) => !/^[^:\s]+:\d+$/.test(b))) {
      throw new OptionError(
        `--kafka-brokers must be host:port[,host:port...] (got "${values["kafka-brokers"]}")`,
      );
    }
    const format = values["kafka-format"] ?? "json";
    if (format !== "json" && format !== "csv") {
      throw new OptionError(`--kafka-format must be json or csv (got "${format}")`);
    }
    const topic = values["kafka-topic"] ?? "events";
    if (!/^[A-Za-z0-9._-]{1,200}$/.test(topic)) {
      throw new OptionError(
        `--kafka-topic must be a Kafka topic name: letters, digits, . _ - (got "${topic}")`,
      );
    }
    kafka = { brokers, topic, routeByType: values["kafka-route"] ?? false, format };
  } else if (
    values["kafka-topic"] !== undefined || values["kafka-route"] ||
    values["kafka-format"] !== undefined
  ) {
    throw new OptionError("--kafka-topic, --kafka-route and --kafka-format need --kafka-brokers");
  }
  return { options, kafka, quiet: values.quiet ?? false, help: values.help ?? false };
}
