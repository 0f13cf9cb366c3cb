// The plan of a run: options checked and completed with defaults, the event-time window and the
// name of every file, and the size of the shop.
import { join } from "node:path";
import { MAX_SEED, randomSeed } from "./random.ts";
import type { SchemaVersion } from "../common/contract.ts";
import { DEFAULT_FUNNEL, type Funnel } from "./model.ts";

/** Options of `generate()`; each mirrors a command-line flag (shown in brackets). */
export interface GenerateOptions {
  /** Files to write [--files, default 1]; not with `continuous`. */
  files?: number;
  /** Rows per file [--events, default 1000]. */
  events?: number;
  /** Event-time window of each file, and the pace of a continuous run [--interval, default 60]. */
  intervalSeconds?: number;
  /** Write a file every interval until `signal` aborts [--continuous]. */
  continuous?: boolean;
  /** Seed of all randomness [--seed, default random]. */
  seed?: number;
  /** Start of the first window [--start-time, default: now - files × interval, or now]. */
  startTime?: string | Date;
  /** Share of rows made invalid on purpose [--anomaly-rate, default 0.02]. */
  anomalyRate?: number;
  /** Share of rows that re-send an earlier row (1 in 5 conflicting) [--duplicate-rate, 0.01]. */
  duplicateRate?: number;
  /** Share of regular rows placed 15 min to 6 h early [--late-rate, default 0.01]. */
  lateRate?: number;
  /** Columns to write [--schema-version, default 2]. */
  schemaVersion?: SchemaVersion;
  /** Output directory, created if missing [--out, default data/incoming]. */
  outDir?: string;
  /** Where to write the manifest JSON [--manifest, default none]. */
  manifestPath?: string;
  /** UUID version of event ids [--id-version, default 7]. */
  idVersion?: 4 | 7;
  /** Per product viewed: chance of an add to cart [--cart-rate, default 0.009]. */
  cartRate?: number;
  /** Chance that a session that carted buys [--checkout-rate, default 0.45]. */
  checkoutRate?: number;
  /** Per product viewed: chance of buying it at once, without a cart [--buy-now-rate, 0.0003]. */
  buyNowRate?: number;
  /** Event times within a window: a shop's daily and weekly cycle, or flat [--traffic]. */
  traffic?: "cycle" | "flat";
  /**
   * Rows per file follow the daily and weekly cycle instead of --events: a day of weekday
   * weight 1 holds this many rows, a file its window's share of the cycle [--daily-events].
   */
  dailyEvents?: number;
  /**
   * One shop across runs: the catalogue (ids, categories, prices) and the customer base
   * (ids, e-mails, currencies) come from this seed alone, so every run that names it sells
   * the same products to the same people [--shop-seed, default: the run's own shop].
   */
  shopSeed?: number;
  /** With shopSeed: customers in the base [--shop-users, default the run's user count]. */
  shopUsers?: number;
  /** With shopSeed: products in the catalogue [--shop-products, default from the volume]. */
  shopProducts?: number;
  /**
   * Customers this run draws its sessions from: the first N of the base (a busier past day
   * reaches further into it) [--active-users, default from the volume].
   */
  activeUsers?: number;
}

/** A bad option or flag value; the CLI prints its message and exits 2. */
export class OptionError extends RangeError {
  override name = "OptionError";
}

export const DEFAULTS = {
  files: 1,
  events: 1000,
  intervalSeconds: 60,
  anomalyRate: 0.02,
  duplicateRate: 0.01,
  lateRate: 0.01,
  schemaVersion: 2 as SchemaVersion,
  outDir: "data/incoming",
  idVersion: 7 as 4 | 7,
  cartRate: DEFAULT_FUNNEL.cart,
  checkoutRate: DEFAULT_FUNNEL.checkout,
  buyNowRate: DEFAULT_FUNNEL.buyNow,
  traffic: "cycle" as "cycle" | "flat",
};

export const MAX_EVENTS = 100_000_000;
export const MAX_FILES = 1_000_000;
export const MAX_USERS = 10_000_000;
export const MAX_PRODUCTS = 1_000_000;
/** A fixed run spans at most this much event time (valid rows must never be too old). */
export const MAX_SPAN_MS = 365 * 86_400_000;
const EARLIEST_START = Date.UTC(2000, 0, 1);
const LATEST_START = Date.UTC(9000, 0, 1);

export interface Plan {
  /** Files to write (Infinity for a continuous run). */
  files: number;
  events: number;
  intervalMs: number;
  continuous: boolean;
  seed: number;
  /** True when the seed was drawn at random (it is printed so the run can be repeated). */
  seedDrawn: boolean;
  startMs: number;
  anomalyRate: number;
  duplicateRate: number;
  lateRate: number;
  schemaVersion: SchemaVersion;
  idVersion: 4 | 7;
  outDir: string;
  manifestPath?: string;
  funnel: Funnel;
  traffic: "cycle" | "flat";
  /** Rows per weight-1 day when file sizes follow the cycle, else null (every file --events). */
  dailyEvents: number | null;
  /** The shared shop's seed, or null: the shop comes from the run's own random stream. */
  shopSeed: number | null;
  /** Customers in the base (shared shop), and the first `users` of them the run draws from. */
  shopUsers: number;
  /** Shop size, from the volume of the run (or given). */
  users: number;
  products: number;
  concurrency: number;
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new OptionError(message);
}

function wholeInRange(value: number, flag: string, min: number, max: number): void {
  check(
    Number.isInteger(value) && value >= min && value <= max,
    `${flag} must be a whole number from ${min} to ${max} (got "${value}")`,
  );
}

function rate(value: number, flag: string): void {
  check(
    Number.isFinite(value) && value >= 0 && value <= 1,
    `${flag} must be a number from 0 to 1 (got "${value}")`,
  );
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, Math.round(x)));

/** Checks the options (OptionError names the flag) and fills in the defaults. */
export function makePlan(options: GenerateOptions, now = Date.now()): Plan {
  const continuous = options.continuous ?? false;
  check(
    !(continuous && options.files !== undefined),
    "--files cannot be combined with --continuous (a continuous run writes files until stopped)",
  );
  const files = continuous ? Infinity : options.files ?? DEFAULTS.files;
  if (!continuous) wholeInRange(files, "--files", 1, MAX_FILES);
  const events = options.events ?? DEFAULTS.events;
  wholeInRange(events, "--events", 1, MAX_EVENTS);
  const intervalSeconds = options.intervalSeconds ?? DEFAULTS.intervalSeconds;
  check(
    Number.isFinite(intervalSeconds) && intervalSeconds >= 0.001 && intervalSeconds <= 86_400 * 30,
    `--interval must be a number of seconds from 0.001 to 2592000 (got "${intervalSeconds}")`,
  );
  const intervalMs = Math.round(intervalSeconds * 1000);
  const seedDrawn = options.seed === undefined;
  const seed = options.seed ?? randomSeed();
  wholeInRange(seed, "--seed", 0, MAX_SEED);
  const anomalyRate = options.anomalyRate ?? DEFAULTS.anomalyRate;
  const duplicateRate = options.duplicateRate ?? DEFAULTS.duplicateRate;
  const lateRate = options.lateRate ?? DEFAULTS.lateRate;
  rate(anomalyRate, "--anomaly-rate");
  rate(duplicateRate, "--duplicate-rate");
  rate(lateRate, "--late-rate");
  check(
    anomalyRate + duplicateRate <= 1,
    `--anomaly-rate plus --duplicate-rate must be at most 1 (got "${anomalyRate}" and "${duplicateRate}")`,
  );
  const schemaVersion = options.schemaVersion ?? DEFAULTS.schemaVersion;
  check(
    schemaVersion === 1 || schemaVersion === 2 || schemaVersion === 3,
    `--schema-version must be 1, 2 or 3 (got "${schemaVersion}")`,
  );
  const funnel: Funnel = {
    cart: options.cartRate ?? DEFAULTS.cartRate,
    checkout: options.checkoutRate ?? DEFAULTS.checkoutRate,
    buyNow: options.buyNowRate ?? DEFAULTS.buyNowRate,
  };
  rate(funnel.cart, "--cart-rate");
  rate(funnel.checkout, "--checkout-rate");
  rate(funnel.buyNow, "--buy-now-rate");
  const traffic = options.traffic ?? DEFAULTS.traffic;
  check(
    traffic === "cycle" || traffic === "flat",
    `--traffic must be cycle or flat (got "${traffic}")`,
  );
  const dailyEvents = options.dailyEvents ?? null;
  if (dailyEvents !== null) {
    wholeInRange(dailyEvents, "--daily-events", 1, MAX_EVENTS);
    check(
      options.events === undefined,
      "--daily-events cannot be combined with --events (file sizes follow the daily cycle)",
    );
  }
  const shopSeed = options.shopSeed ?? null;
  if (shopSeed !== null) wholeInRange(shopSeed, "--shop-seed", 0, MAX_SEED);
  check(
    shopSeed !== null ||
      (options.shopUsers === undefined && options.shopProducts === undefined),
    "--shop-users and --shop-products need --shop-seed (they size the shared shop)",
  );
  if (options.shopUsers !== undefined) {
    wholeInRange(options.shopUsers, "--shop-users", 1, MAX_USERS);
  }
  if (options.shopProducts !== undefined) {
    wholeInRange(options.shopProducts, "--shop-products", 8, MAX_PRODUCTS);
  }
  if (options.activeUsers !== undefined) {
    wholeInRange(options.activeUsers, "--active-users", 1, MAX_USERS);
  }
  const idVersion = options.idVersion ?? DEFAULTS.idVersion;
  check(idVersion === 4 || idVersion === 7, `--id-version must be 7 or 4 (got "${idVersion}")`);
  const outDir = options.outDir ?? DEFAULTS.outDir;
  check(outDir.trim() !== "", "--out must name a directory");
  const manifestPath = options.manifestPath;
  check(
    manifestPath === undefined ||
      (manifestPath.trim() !== "" && !/\.(csv|tmp)$/i.test(manifestPath)),
    `--manifest must be a file path not ending in .csv or .tmp (got "${manifestPath}")`,
  );
  if (!continuous) {
    check(
      files * intervalMs <= MAX_SPAN_MS,
      `--files × --interval must span at most 365 days of event time (got ${
        Math.ceil(files * intervalMs / 86_400_000)
      } days)`,
    );
  }

  let startMs: number;
  if (options.startTime === undefined) {
    startMs = continuous ? now : now - files * intervalMs;
  } else {
    startMs = options.startTime instanceof Date
      ? options.startTime.getTime()
      : parseStartTime(options.startTime);
    check(
      Number.isFinite(startMs) && startMs >= EARLIEST_START && startMs < LATEST_START,
      `--start-time must be an ISO-8601 time with an offset, e.g. 2026-11-21T10:00:00Z, between 2000 and 9000 (got "${options.startTime}")`,
    );
  }

  // the shop grows with the run: about 10 events per user (most visitors come once or twice,
  // so few of them buy), 100 per product
  // with --daily-events the run's volume is a day's: a day's customers, a day's pace
  const volume = dailyEvents !== null ? dailyEvents : continuous ? events * 60 : files * events;
  const perSecond = dailyEvents !== null ? dailyEvents / 86_400 : events / (intervalMs / 1000);
  const ownUsers = options.activeUsers ?? clamp(volume / 10, 50, 200_000);
  const shopUsers = options.shopUsers ?? ownUsers;
  return {
    files,
    events,
    intervalMs,
    continuous,
    seed,
    seedDrawn,
    startMs,
    anomalyRate,
    duplicateRate,
    lateRate,
    schemaVersion,
    idVersion,
    outDir,
    manifestPath,
    funnel,
    traffic,
    dailyEvents,
    shopSeed,
    shopUsers,
    users: Math.min(ownUsers, shopUsers),
    products: options.shopProducts ?? clamp(volume / 100, 40, 5_000),
    // sessions last a few minutes (about 8 events); a file holds at least ~20 events of each,
    // unless file sizes follow the cycle: then sessions run on across files (the pace alone)
    concurrency: clamp(
      dailyEvents !== null ? perSecond * 300 / 8 : Math.min(events / 20, perSecond * 300 / 8),
      1,
      100,
    ),
  };
}

/** ISO-8601 with an explicit offset (Z or ±HH:MM / ±HHMM / ±HH); NaN when it is not one. */
export function parseStartTime(text: string): number {
  const m =
    /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?)(Z|[+-]\d{2}(?::?\d{2})?)$/i
      .exec(text.trim());
  if (!m) return NaN;
  let offset = m[3].toUpperCase();
  if (offset !== "Z") {
    offset = offset.slice(0, 3) + ":" + (offset.slice(3).replace(":", "") || "00");
  }
  const ms = Date.parse(`${m[1]}T${m[2]}${offset}`);
  // Date.parse rolls 2026-02-30 over to March: reject dates that do not round-trip
  if (Number.isNaN(ms)) return NaN;
  const dayMs = Date.parse(`${m[1]}T00:00:00Z`);
  if (Number.isNaN(dayMs)) return NaN;
  return new Date(dayMs).toISOString().slice(0, 10) === m[1] ? ms : NaN;
}

/** The event-time window [start, end) of file k. */
export function windowOf(plan: Plan, k: number): [number, number] {
  return [plan.startMs + k * plan.intervalMs, plan.startMs + (k + 1) * plan.intervalMs];
}

/** `20261121T101500123Z` */
function compact(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:.]/g, "");
}

/**
 * `events-<window start, UTC, compact>-<seed>-<k, 6 digits>.csv`: names sort by event time
 * (so by creation in a continuous run), and a run never reuses another run's name unless it
 * has the same seed and start time (then the files would be identical anyway, and the run
 * stops rather than overwrite).
 */
export function fileName(plan: Plan, k: number): string {
  return `events-${compact(windowOf(plan, k)[0])}-${plan.seed}-${String(k).padStart(6, "0")}.csv`;
}

export function filePath(plan: Plan, k: number): string {
  return join(plan.outDir, fileName(plan, k));
}
