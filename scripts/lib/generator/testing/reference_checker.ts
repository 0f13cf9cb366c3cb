// Test oracle only: the product applies these rules once, in SQL (ingest.check_stage).
// An independent reading of docs/rules.md in TypeScript: splits a file into records the way the
// rules describe (PostgreSQL CSV quoting), validates every row and deduplicates by event_id. The
// generator's tests recount its files with it; it shares no code with the generator's writers.
import { parse } from "csv-parse/sync";
import {
  CATEGORIES,
  COLUMNS_V1,
  COLUMNS_V2,
  CURRENCIES,
  DEVICES,
  EVENT_TYPES,
  LIMITS,
  PAYMENT_METHODS,
  REASON_CODES,
  type ReasonCode,
  TRAFFIC_SOURCES,
} from "../../common/contract.ts";

export interface CheckOptions {
  /** The ingestion time. */
  nowMs: number;
}

export interface CheckedRow {
  /** 1-based physical line where the record starts (header = 1). */
  line: number;
  status: "valid" | "duplicate" | "invalid";
  reasons: ReasonCode[];
  late: boolean;
  /** Trimmed values by column (null = empty), for rows that are not malformed. */
  values?: Record<string, string | null>;
}

export interface CheckedFile {
  rejected?: string;
  schemaVersion?: 1 | 2;
  rows: CheckedRow[];
  valid: number;
  duplicates: number;
  invalid: number;
  late: number;
  reasons: Partial<Record<ReasonCode, number>>;
}

const V2_ONLY = COLUMNS_V2.filter((c) => !(COLUMNS_V1 as readonly string[]).includes(c));
const decoder = new TextDecoder("utf-8", { fatal: true });

interface RawRecord {
  line: number;
  bytes: Uint8Array;
  unterminated: boolean;
  bareCr: boolean;
}

/** Splits bytes into records: `"` toggles quoting, LF (or CRLF) outside quotes ends a record. */
export function splitRecords(data: Uint8Array): RawRecord[] {
  let start = data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf ? 3 : 0;
  const out: RawRecord[] = [];
  let line = 1;
  let recordLine = 1;
  let quoted = false;
  let bareCr = false;
  for (let i = start; i < data.length; i++) {
    const b = data[i];
    if (b === 0x22) quoted = !quoted;
    else if (b === 0x0d && !quoted && data[i + 1] !== 0x0a) bareCr = true;
    if (b !== 0x0a) continue;
    line++;
    if (quoted) continue;
    let end = i;
    if (end > start && data[end - 1] === 0x0d) end--;
    if (end > start || bareCr) {
      out.push({ line: recordLine, bytes: data.subarray(start, end), unterminated: false, bareCr });
    }
    start = i + 1;
    recordLine = line;
    bareCr = false;
  }
  if (start < data.length) {
    out.push({ line: recordLine, bytes: data.subarray(start), unterminated: quoted, bareCr });
  }
  return out;
}

function fieldsOf(text: string): string[] {
  const [fields] = parse(text, { relax_quotes: false, record_delimiter: "\n" }) as string[][];
  return fields ?? [""];
}

const trimmed = (v: string | undefined) => {
  if (v === undefined) return null;
  const t = v.replace(/^[ \t]+|[ \t]+$/g, "");
  return t === "" ? null : t;
};

const isUuid = (v: string) => /^\{?[0-9a-f]{4}(-?[0-9a-f]{4}){7}\}?$/i.test(v);
const BIGINT_MAX = 9223372036854775807n;
/** digits only, leading zeros allowed, value 1..BIGINT_MAX */
const isPositiveInt = (v: string) => /^\d+$/.test(v) && BigInt(v) > 0n && BigInt(v) <= BIGINT_MAX;
/** an id as the database stores it: its value, without leading zeros */
const idValue = (v: string) => BigInt(v).toString();

function parseTime(v: string): number {
  const m =
    /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}(?::?\d{2})?)$/i
      .exec(v);
  if (!m) return NaN;
  const [, y, mo, d, h, mi, s = "00", frac = ""] = m;
  const base = Date.UTC(+y, +mo - 1, +d, +h, +mi, +s);
  const check = new Date(base);
  if (
    check.getUTCFullYear() !== +y || check.getUTCMonth() !== +mo - 1 || check.getUTCDate() !== +d ||
    +h > 23 || +mi > 59 || +s > 59
  ) return NaN;
  let offset = 0;
  if (m[8].toUpperCase() !== "Z") {
    const sign = m[8][0] === "-" ? -1 : 1;
    const digits = m[8].slice(1).replace(":", "");
    offset = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || "0")) * 60_000;
  }
  return base + Math.floor(Number("0" + frac) * 1000) - offset;
}

const PRICE = /^-?\d{1,15}(\.\d{1,2})?$/;
const INTEGER = /^-?\d{1,18}$/;
const IGNORED_PRICE_TYPES = ["view", "search", "wishlist"];

/** Validates files in order, remembering accepted event_ids across them. */
export class ReferenceChecker {
  private readonly accepted = new Map<string, string>();

  constructor(private readonly options: CheckOptions) {}

  checkFile(data: Uint8Array): CheckedFile {
    const result: CheckedFile = {
      rows: [],
      valid: 0,
      duplicates: 0,
      invalid: 0,
      late: 0,
      reasons: {},
    };
    const records = splitRecords(data);
    const headerRecord = records.shift();
    if (!headerRecord) return { ...result, rejected: "no header" };
    const header = fieldsOf(decoder.decode(headerRecord.bytes)).map((h) => h.trim().toLowerCase());
    const v2 = header.some((h) => (V2_ONLY as readonly string[]).includes(h));
    const required = v2 ? COLUMNS_V2.slice(0, 9) : COLUMNS_V1;
    if (required.some((c) => !header.includes(c))) return { ...result, rejected: "missing column" };
    result.schemaVersion = v2 ? 2 : 1;

    for (const record of records) {
      const row = this.checkRecord(record, header, v2);
      result.rows.push(row);
      result[
        row.status === "valid" ? "valid" : row.status === "duplicate" ? "duplicates" : "invalid"
      ]++;
      if (row.late) result.late++;
      for (const code of row.reasons) result.reasons[code] = (result.reasons[code] ?? 0) + 1;
    }
    return result;
  }

  private checkRecord(record: RawRecord, header: string[], v2: boolean): CheckedRow {
    const malformed = (): CheckedRow => ({
      line: record.line,
      status: "invalid",
      reasons: ["malformed_row"],
      late: false,
    });
    if (record.unterminated || record.bareCr || record.bytes.includes(0)) return malformed();
    let text: string;
    try {
      text = decoder.decode(record.bytes);
    } catch {
      return malformed();
    }
    const fields = fieldsOf(text);
    if (fields.length !== header.length) return malformed();
    const values: Record<string, string | null> = {};
    header.forEach((h, i) => values[h] = trimmed(fields[i]));
    const get = (c: string) => values[c] ?? null;
    const reasons = new Set<ReasonCode>();
    const { nowMs } = this.options;

    const id = get("event_id");
    if (id === null) reasons.add("missing_event_id");
    else if (!isUuid(id)) reasons.add("invalid_event_id");

    const timeText = get("event_time");
    let time = NaN;
    if (timeText === null) reasons.add("missing_event_time");
    else {
      time = parseTime(timeText);
      if (Number.isNaN(time)) reasons.add("invalid_event_time");
      else if (time > nowMs + LIMITS.futureToleranceMs) reasons.add("future_event_time");
      else if (time < nowMs - LIMITS.tooOldMs) reasons.add("too_old_event_time");
    }

    const typeText = get("event_type");
    const type = typeText?.toLowerCase() ?? null;
    const knownType = type !== null && (EVENT_TYPES as readonly string[]).includes(type);
    if (type === null) reasons.add("missing_event_type");
    else if (!knownType) reasons.add("invalid_event_type");
    const priced = knownType && ["add_to_cart", "remove_from_cart", "purchase"].includes(type!);

    const user = get("user_id");
    if (user === null) {
      if (
        knownType && ["add_to_cart", "remove_from_cart", "wishlist", "purchase"].includes(type!)
      ) {
        reasons.add("missing_user_id");
      }
    } else if (!isPositiveInt(user)) reasons.add("invalid_user_id");

    let session = v2 ? get("session_id") : null;
    if (v2) {
      if (session === null) reasons.add("missing_session_id");
      else if ([...session].length > LIMITS.maxSessionId) reasons.add("invalid_session_id");
    } else {
      const day = Number.isNaN(time) ? "" : new Date(time).toISOString().slice(0, 10);
      session = `v1-${user ?? "guest"}-${day}`;
    }

    const product = get("product_id");
    if (product === null) {
      if (type !== "search") reasons.add("missing_product_id");
    } else if (!isPositiveInt(product)) reasons.add("invalid_product_id");

    const category = get("category")?.toLowerCase() ?? null;
    if (
      category === null ? type !== "search" : !(CATEGORIES as readonly string[]).includes(category)
    ) {
      reasons.add("invalid_category");
    }

    const price = get("price");
    const priceChecked = !(knownType && IGNORED_PRICE_TYPES.includes(type!));
    if (price === null) {
      if (priced) reasons.add("missing_price");
    } else if (priceChecked) {
      if (!PRICE.test(price)) reasons.add("invalid_price");
      else {
        const n = Number(price);
        if (n < 0) reasons.add("negative_price");
        if (n === 0 && type === "purchase") reasons.add("zero_price");
        if (n > LIMITS.maxPrice) reasons.add("extreme_price");
      }
    }

    const quantity = v2 ? get("quantity") : null;
    if (v2) {
      if (priced) {
        if (
          quantity === null || !INTEGER.test(quantity) || Number(quantity) < 1 ||
          Number(quantity) > LIMITS.maxQuantity
        ) reasons.add("invalid_quantity");
      } else if (!(knownType && IGNORED_PRICE_TYPES.includes(type!))) {
        if (quantity !== null && !INTEGER.test(quantity)) reasons.add("invalid_quantity");
      }
    }

    const domain = (c: string, allowed: readonly string[], code: ReasonCode, upper = false) => {
      const v = get(c);
      if (v !== null && !allowed.includes(upper ? v.toUpperCase() : v.toLowerCase())) {
        reasons.add(code);
      }
    };
    domain("currency", CURRENCIES, "invalid_currency", true);
    domain("device", DEVICES, "invalid_device");
    domain("traffic_source", TRAFFIC_SOURCES, "invalid_traffic_source");
    domain("payment_method", PAYMENT_METHODS, "invalid_payment_method");
    const query = get("search_query");
    if (query !== null && [...query].length > LIMITS.maxSearchQuery) {
      reasons.add("invalid_search_query");
    }

    let status: CheckedRow["status"] = reasons.size ? "invalid" : "valid";
    if (status === "valid") {
      const key = id!.replace(/[{}-]/g, "").toLowerCase();
      const ignored = IGNORED_PRICE_TYPES.includes(type!);
      const payload = JSON.stringify([
        time,
        type,
        user === null ? null : idValue(user),
        session,
        product === null ? null : idValue(product),
        category,
        ignored || price === null ? null : Number(price),
        ignored || !v2 || quantity === null ? 1 : Number(quantity),
        get("currency")?.toUpperCase() ?? "USD",
        get("device")?.toLowerCase() ?? null,
        get("traffic_source")?.toLowerCase() ?? null,
        get("payment_method")?.toLowerCase() ?? null,
        query,
        get("user_email"),
      ]);
      const seen = this.accepted.get(key);
      if (seen === undefined) this.accepted.set(key, payload);
      else if (seen === payload) status = "duplicate";
      else {
        status = "invalid";
        reasons.add("conflicting_duplicate");
      }
    }
    return {
      line: record.line,
      status,
      reasons: REASON_CODES.filter((c) => reasons.has(c)),
      late: status === "valid" && time < nowMs - LIMITS.lateAfterMs,
      values,
    };
  }
}
