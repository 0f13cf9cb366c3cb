// From a shop event to CSV: event ids (uuid library, seeded bytes), ISO times, the columns of
// schema version 1 or 2, and RFC 4180 lines. A regular row is copied into the file buffer from
// pieces encoded once per product, user or session (no strings are made per row: that is what
// makes the generator fast); a row that needs quoting, and every hand-made row, is a string
// from csvLine (ingest/csv.ts). Both give the same bytes for the same fields (a test checks it).
import { csvLine } from "../batch/mod.ts";
import { v4, v7 } from "uuid";
import { needsQuoting } from "./catalog.ts";
import type { ShopEvent } from "./model.ts";
import type { Random } from "./random.ts";
import {
  columnsOf,
  CURRENCIES,
  type Currency,
  type Device,
  DEVICES,
  EVENT_TYPES,
  PAYMENT_METHODS,
  type SchemaVersion,
  TRAFFIC_SOURCES,
  type TrafficSource,
} from "../common/contract.ts";
import type { AtomicFileWriter } from "./writer.ts";

const encoder = new TextEncoder();
const HEX_CODES = encoder.encode("0123456789abcdef");
const COMMA = 44;

/** Event ids: UUIDv7 (time-ordered, from the event time) or v4, from seeded random bytes. */
export class IdMaker {
  private readonly random = new Uint8Array(16);
  private readonly bytes = new Uint8Array(16);

  constructor(private readonly rng: Random, readonly version: 4 | 7) {}

  /** The next id's 16 bytes (a shared buffer: copy it to keep it). */
  next(msecs: number): Uint8Array {
    this.rng.fill(this.random);
    return this.version === 7
      ? v7({ msecs, random: this.random }, this.bytes)
      : v4({ random: this.random }, this.bytes);
  }
}

/** The canonical text form of a UUID, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`. */
export function uuidText(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) s += "-";
    s += String.fromCharCode(HEX_CODES[b[i] >> 4], HEX_CODES[b[i] & 15]);
  }
  return s;
}

function writeUuid(w: AtomicFileWriter, b: Uint8Array): void {
  const buf = w.buf;
  let p = w.pos;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) buf[p++] = 45;
    const x = b[i];
    buf[p++] = HEX_CODES[x >> 4];
    buf[p++] = HEX_CODES[x & 15];
  }
  w.pos = p;
}

/** A 32-bit number as 8 lowercase hex digits. */
function writeHex32(w: AtomicFileWriter, x: number): void {
  const buf = w.buf;
  let p = w.pos;
  for (let shift = 28; shift >= 0; shift -= 4) buf[p++] = HEX_CODES[(x >>> shift) & 15];
  w.pos = p;
}

/** ISO-8601 UTC with milliseconds, `2026-11-21T10:15:00.123Z` (years 1000 to 9999). */
export class TimeFormatter {
  private minute = NaN;
  /** `YYYY-MM-DDTHH:MM:` of the current minute, and the same as a string once asked for. */
  private readonly prefixBytes = new Uint8Array(17);
  private prefix = "";

  /** Moves to the minute of `ms` (made by hand: no Date string, no encoder); ms within it. */
  private setMinute(ms: number): number {
    const minute = Math.floor(ms / 60_000);
    if (minute !== this.minute) {
      this.minute = minute;
      this.prefix = "";
      const d = new Date(minute * 60_000);
      const b = this.prefixBytes;
      const two = (at: number, v: number) => {
        b[at] = 48 + Math.floor(v / 10);
        b[at + 1] = 48 + v % 10;
      };
      const year = d.getUTCFullYear();
      two(0, Math.floor(year / 100));
      two(2, year % 100);
      b[4] = 45;
      two(5, d.getUTCMonth() + 1);
      b[7] = 45;
      two(8, d.getUTCDate());
      b[10] = 84;
      two(11, d.getUTCHours());
      b[13] = 58;
      two(14, d.getUTCMinutes());
      b[16] = 58;
    }
    return ms - minute * 60_000;
  }

  format(ms: number): string {
    const rest = this.setMinute(ms);
    if (this.prefix === "") this.prefix = String.fromCharCode(...this.prefixBytes);
    const s = Math.floor(rest / 1000);
    const milli = rest - s * 1000;
    return this.prefix + String(100 + s).slice(1) + "." + String(1000 + milli).slice(1) + "Z";
  }

  write(w: AtomicFileWriter, ms: number): void {
    const rest = this.setMinute(ms);
    w.copy(this.prefixBytes);
    const buf = w.buf;
    let p = w.pos;
    const s = Math.floor(rest / 1000);
    const milli = rest - s * 1000;
    buf[p++] = 48 + Math.floor(s / 10);
    buf[p++] = 48 + s % 10;
    buf[p++] = 46;
    buf[p++] = 48 + Math.floor(milli / 100);
    buf[p++] = 48 + Math.floor(milli / 10) % 10;
    buf[p++] = 48 + milli % 10;
    buf[p++] = 90;
    w.pos = p;
  }
}

/** Replacement price or quantity texts (conflicting duplicates). */
export interface Override {
  price?: string;
  quantity?: string;
}

/** The price in the session's market currency (schema version 1 has no currency: USD). */
const priceOf = (e: ShopEvent, version: SchemaVersion) =>
  e.product && e.type !== "search"
    ? e.product.prices[version === 1 ? "USD" : e.session.currency]
    : "";
const quantityOf = (e: ShopEvent) => e.quantity > 0 ? String(e.quantity) : "";

/** The field texts of an event under the given schema version, in header order. */
export function eventFields(
  e: ShopEvent,
  id: string,
  time: string,
  version: SchemaVersion,
  override: Override = {},
): string[] {
  const session = e.session;
  const user = session.user;
  const product = e.product;
  const common = [
    id,
    time,
    e.type,
    user ? user.idText : "",
  ];
  const price = override.price ?? priceOf(e, version);
  if (version === 1) {
    return [...common, product ? product.idText : "", product ? product.category : "", price];
  }
  const v2 = [
    ...common,
    session.id,
    product ? product.idText : "",
    product ? product.category : "",
    price,
    override.quantity ?? quantityOf(e),
    session.currency,
    session.device,
    session.source,
    e.payment ?? "",
    e.query,
    user ? user.email : "",
  ];
  return version === 2 ? v2 : [...v2, couponOf(e)];
}

const COUPONS = ["WELCOME10", "SAVE5"];

/**
 * Schema version 3's coupon_code: on purchases of two sessions in five, derived from the
 * session (no random draw, so a v3 run holds the same events as a v2 run with the same seed).
 */
export function couponOf(e: ShopEvent): string {
  return e.type === "purchase" ? COUPONS[e.session.idLow % 5] ?? "" : "";
}

/** A string as bytes (a plain loop for ASCII, which every generated piece but queries is). */
function bytesOf(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128) return encoder.encode(s);
    out[i] = c;
  }
  return out;
}

const table = <T extends string>(values: readonly T[], after: string, before = "") =>
  Object.fromEntries(values.map((v) => [v, bytesOf(before + v + after)])) as Record<T, Uint8Array>;
/** `type,` */
const TYPES = table(EVENT_TYPES, ",");
/** `payment_method,` */
const PAYMENTS = table(PAYMENT_METHODS, ",");
const NO_PRODUCT = bytesOf(",,");
const LF_BYTES = bytesOf("\n");
/** `,quantity` for 0 (none) to 99. */
const QUANTITIES = Array.from({ length: 100 }, (_, q) => bytesOf(q ? `,${q}` : ","));
/** `,currency,device,traffic_source,` for every combination. */
const MIDDLES = Object.fromEntries(
  CURRENCIES.map((c) => [
    c,
    Object.fromEntries(DEVICES.map((d) => [d, table(TRAFFIC_SOURCES, ",", `,${c},${d},`)])),
  ]),
) as Record<Currency, Record<Device, Record<TrafficSource, Uint8Array>>>;
/** Search queries with their comma, or null for those that need quoting. */
const QUERIES = new Map<string, Uint8Array | null>();

function queryBytes(query: string): Uint8Array | null {
  let bytes = QUERIES.get(query);
  if (bytes === undefined) {
    bytes = needsQuoting(query) ? null : bytesOf(query + ",");
    if (QUERIES.size < 10_000) QUERIES.set(query, bytes);
  }
  return bytes;
}

/**
 * Writes an event's row. A row that needs no quoting is copied into the buffer from pieces
 * encoded once per product, user and session (no strings are made per row: that is what keeps
 * the generator fast); a row whose search query needs quoting, or whose price or quantity is
 * overridden, goes through csvLine. Returns the physical lines written.
 */
export function writeEvent(
  w: AtomicFileWriter,
  times: TimeFormatter,
  e: ShopEvent,
  uuid: Uint8Array,
  ms: number,
  version: SchemaVersion,
  override?: Override,
): number {
  let query: Uint8Array | null = null;
  if (e.query !== "") query = queryBytes(e.query);
  if (
    version === 3 || override || (e.query !== "" && query === null) ||
    (e.type === "search" && e.product)
  ) {
    const fields = eventFields(e, uuidText(uuid), times.format(ms), version, override);
    return writeLine(w, csvLine(fields));
  }
  const session = e.session;
  const user = session.user;
  const product = e.product;
  writeUuid(w, uuid);
  w.byte(COMMA);
  times.write(w, ms);
  w.byte(COMMA);
  w.copy(TYPES[e.type]);
  if (user) w.copy(user.csvId ??= bytesOf(user.idText + ","));
  else w.byte(COMMA);
  if (version === 2) {
    w.byte(115); // s
    w.byte(95); // _
    writeHex32(w, session.idHigh);
    writeHex32(w, session.idLow);
    w.byte(COMMA);
  }
  if (!product) w.copy(NO_PRODUCT);
  else {
    const currency = version === 1 ? "USD" : session.currency;
    w.copy(
      product.csv[currency] ??= bytesOf(
        `${product.idText},${product.category},${product.prices[currency]}`,
      ),
    );
  }
  if (version === 1) {
    w.copy(LF_BYTES);
    return 1;
  }
  w.copy(QUANTITIES[e.quantity] ?? bytesOf(`,${e.quantity}`));
  w.copy(session.csvMiddle ??= MIDDLES[session.currency][session.device][session.source]);
  if (e.payment) w.copy(PAYMENTS[e.payment]);
  else w.byte(COMMA);
  if (query) w.copy(query);
  else w.byte(COMMA);
  w.copy(user ? (user.csvTail ??= bytesOf(user.email + "\n")) : LF_BYTES);
  return 1;
}

/** Writes a ready CSV line; returns the physical lines it takes (quoted fields may hold LFs). */
export function writeLine(w: AtomicFileWriter, line: string): number {
  w.ascii(line);
  let n = 0;
  for (let i = line.indexOf("\n"); i >= 0; i = line.indexOf("\n", i + 1)) n++;
  return n;
}

/** One CSV line (with its LF), quoted where needed: the loader's writer (ingest/csv.ts). */
export { csvLine };

/** The header line of a schema version. */
export function headerLine(version: SchemaVersion): string {
  return columnsOf(version).join(",") + "\n";
}
