// Invalid rows on purpose: one mutation per reason code a producer can cause (every code of the
// contract but conflicting_duplicate), malformed lines, and rows with several faults at once.
// Each mutation names the base event types on which, under docs/rules.md, it causes exactly its
// own reason; combinations only join mutations on disjoint fields with a common base type.
import type { Product } from "./catalog.ts";
import { type Shop, type ShopEvent, shopEvent } from "./model.ts";
import type { Random } from "./random.ts";
import { csvLine, eventFields } from "./rows.ts";
import {
  type Column,
  columnsOf,
  EVENT_TYPES,
  type EventType,
  PAYMENT_METHODS,
  PRICED_TYPES,
  REASON_CODES,
  type ReasonCode,
  type SchemaVersion,
  USER_TYPES,
} from "../common/contract.ts";

const DAY = 86_400_000;
/** Future rows are at least this far after the anchor (the contract tolerates 5 minutes). */
export const FUTURE_MIN_MS = 7 * DAY;
/** Too-old rows are at least this far before the run's first event (the contract says 400). */
export const TOO_OLD_MIN_MS = 450 * DAY;
/** Share of anomalies that carry more than one fault. */
const MULTI_FAULT_SHARE = 0.2;

/** Everything a mutation may need besides the row. */
export interface AnomalyContext {
  version: SchemaVersion;
  rng: Random;
  shop: Shop;
  /** Future rows: at least FUTURE_MIN_MS after this instant (the last event it must beat). */
  futureAnchorMs: number;
  /** Too-old rows: at least TOO_OLD_MIN_MS before this instant (the run's first event). */
  oldAnchorMs: number;
  /** Earliest future time written so far (kept up to date by the injector). */
  firstFutureMs: number;
}

/** An injected invalid row, ready to write. */
export interface Injected {
  /** Reason codes the validation must give it, in contract order. */
  reasons: ReasonCode[];
  /** Mutation names, e.g. ["invalid_price"] or ["malformed_row:nul_byte"]. */
  labels: string[];
  /** The CSV line (for rows that still parse as CSV). */
  text?: string;
  /** The raw bytes of a malformed row: one physical line, LF included. */
  raw?: Uint8Array;
  malformed: boolean;
}

type Setter = (column: Column, value: string) => void;

interface Mutation {
  name: string;
  reason: ReasonCode;
  /** Columns it changes (combinations need disjoint columns). */
  columns: readonly Column[];
  /** Base types on which it causes exactly `reason`. */
  types: readonly EventType[];
  /** Only possible with schema version 2 columns. */
  v2Only: boolean;
  /** Never combined with another mutation. */
  solo: boolean;
  apply(set: Setter, ctx: AnomalyContext, get: (col: Column) => string): void;
}

const NOT_SEARCH: readonly EventType[] = EVENT_TYPES.filter((t) => t !== "search");
const ANY_TYPE: readonly EventType[] = EVENT_TYPES;

function mutation(
  reason: ReasonCode,
  columns: readonly Column[],
  types: readonly EventType[],
  apply: Mutation["apply"],
  opts: { v2Only?: boolean; solo?: boolean } = {},
): Mutation {
  return {
    name: reason,
    reason,
    columns,
    types,
    v2Only: opts.v2Only ?? columns.some((col) => !columnsOf(1).includes(col)),
    solo: opts.solo ?? false,
    apply,
  };
}

const badIds = ["not-a-uuid", "12345", "evt_0001", "0190a1b2-c3d4-7e5f-8a9b"];
const badTypes = ["click", "checkout", "add-to-cart", "page_view", "purchased"];
// the last two overflow a bigint: max + 1 (19 digits) and 20 digits
const badUserIds = [
  "abc",
  "0",
  "-42",
  "12.5",
  "0x1F",
  "1_000",
  "9223372036854775808",
  "12345678901234567890",
];
const badProductIds = [
  "SKU-1001",
  "0",
  "-5",
  "3.7",
  "1e3",
  "00",
  "9223372036854775808",
  "12345678901234567890",
];
const badCategories = ["garden", "food", "electronic", "unknown", "misc", ""];
const badPrices = ["12.345", "abc", "NaN", "Infinity", "$19.99", "1e3", "19,99", "+5.00"];
const badQuantities = ["0", "-1", "1001", "two", "2.5", "", "99999999999999999999"];

/** The single-fault mutations, one per reason code a producer can cause. */
const MUTATIONS: readonly Mutation[] = [
  mutation("missing_event_id", ["event_id"], ANY_TYPE, (set) => set("event_id", "")),
  mutation("invalid_event_id", ["event_id"], ANY_TYPE, (set, ctx, c) => {
    set("event_id", ctx.rng.chance(0.5) ? ctx.rng.pick(badIds) : "x" + c("event_id").slice(1));
  }),
  mutation("missing_event_time", ["event_time"], ANY_TYPE, (set) => set("event_time", "")),
  mutation("invalid_event_time", ["event_time"], ANY_TYPE, (set, ctx, c) => {
    const iso = c("event_time");
    const year = iso.slice(0, 4);
    set(
      "event_time",
      ctx.rng.pick([
        iso.slice(0, -1), // no offset
        iso.slice(0, 16).replace("T", " "), // no offset, no seconds
        `${year}-13${iso.slice(7)}`, // month 13
        `${year}-02-30T10:00:00Z`, // no such day
        `${iso.slice(8, 10)}/${iso.slice(5, 7)}/${year} ${iso.slice(11, 19)}`,
        "yesterday",
        String(Math.floor(Date.parse(iso) / 1000)), // epoch seconds
      ]),
    );
  }),
  mutation("future_event_time", ["event_time"], ANY_TYPE, (set, ctx) => {
    const ms = ctx.futureAnchorMs + FUTURE_MIN_MS + ctx.rng.int(358 * DAY);
    ctx.firstFutureMs = Math.min(ctx.firstFutureMs, ms);
    set("event_time", new Date(ms).toISOString());
  }),
  mutation("too_old_event_time", ["event_time"], ANY_TYPE, (set, ctx) => {
    const ms = ctx.oldAnchorMs - TOO_OLD_MIN_MS - ctx.rng.int(3 * 365 * DAY);
    set("event_time", new Date(ms).toISOString());
  }),
  // a view keeps its product and category and has no quantity: a missing or unknown type adds
  // nothing else (price rules then apply, but a view's price is valid)
  mutation("missing_event_type", ["event_type"], ["view"], (set) => set("event_type", ""), {
    solo: true,
  }),
  mutation("invalid_event_type", ["event_type"], ["view"], (set, ctx) => {
    set("event_type", ctx.rng.pick(badTypes));
  }, { solo: true }),
  mutation("missing_user_id", ["user_id", "user_email"], USER_TYPES, (set, ctx) => {
    set("user_id", "");
    if (ctx.version >= 2) set("user_email", "");
  }, { v2Only: false }),
  mutation("invalid_user_id", ["user_id"], ANY_TYPE, (set, ctx) => {
    set("user_id", ctx.rng.pick(badUserIds));
  }),
  mutation("missing_session_id", ["session_id"], ANY_TYPE, (set, ctx) => {
    set("session_id", ctx.rng.chance(0.5) ? "" : "   ");
  }),
  mutation("invalid_session_id", ["session_id"], ANY_TYPE, (set, ctx) => {
    set("session_id", "s_" + ctx.rng.hex(ctx.rng.between(63, 90)));
  }),
  mutation("missing_product_id", ["product_id"], NOT_SEARCH, (set) => set("product_id", "")),
  mutation("invalid_product_id", ["product_id"], NOT_SEARCH, (set, ctx) => {
    set("product_id", ctx.rng.pick(badProductIds));
  }),
  mutation("invalid_category", ["category"], NOT_SEARCH, (set, ctx) => {
    set("category", ctx.rng.pick(badCategories));
  }),
  // not on purchase, where an empty price next to the zero_price rule is best left alone
  mutation("missing_price", ["price"], ["add_to_cart", "remove_from_cart"], (set) => {
    set("price", "");
  }),
  mutation("invalid_price", ["price"], PRICED_TYPES, (set, ctx) => {
    set("price", ctx.rng.pick(badPrices));
  }),
  mutation("negative_price", ["price"], PRICED_TYPES, (set, ctx) => {
    const cents = ctx.rng.between(1, 50_000);
    set("price", `-${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, "0")}`);
  }),
  mutation("zero_price", ["price"], ["purchase"], (set, ctx) => {
    set("price", ctx.rng.pick(["0", "0.00", "0.0"]));
  }),
  mutation("extreme_price", ["price"], PRICED_TYPES, (set, ctx) => {
    const cents = ctx.rng.between(1_000_001, 9_999_999);
    set("price", `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, "0")}`);
  }),
  mutation("invalid_quantity", ["quantity"], PRICED_TYPES, (set, ctx) => {
    set("quantity", ctx.rng.pick(badQuantities));
  }),
  mutation("invalid_currency", ["currency"], ANY_TYPE, (set, ctx) => {
    set("currency", ctx.rng.pick(["JPY", "CAD", "US$", "dollar", "EURO"]));
  }),
  mutation("invalid_device", ["device"], ANY_TYPE, (set, ctx) => {
    set("device", ctx.rng.pick(["smart_tv", "watch", "console", "kiosk"]));
  }),
  mutation("invalid_traffic_source", ["traffic_source"], ANY_TYPE, (set, ctx) => {
    set("traffic_source", ctx.rng.pick(["tiktok", "newsletter", "affiliate", "push"]));
  }),
  mutation("invalid_payment_method", ["payment_method"], ["purchase"], (set, ctx) => {
    set("payment_method", ctx.rng.pick(["crypto", "cash", "gift_card", "klarna"]));
  }),
  mutation("invalid_search_query", ["search_query"], ["search"], (set, ctx, c) => {
    let text = c("search_query").replace(/[\r\n]/g, " ");
    const filler = ["best price", "free shipping", "deal", "new 2026", "top rated", "sale, cheap"];
    while (text.length <= 260) text += " " + ctx.rng.pick(filler);
    // values are trimmed before the length check: do not end on a blank
    text = text.slice(0, ctx.rng.between(201, 260)).trimEnd();
    set("search_query", text.length > 200 ? text : text + "s".repeat(201 - text.length));
  }),
];

/** Malformed lines; each gets `malformed_row` only. */
const MALFORMED = [
  "extra_field",
  "missing_field",
  "invalid_utf8",
  "nul_byte",
  "bare_cr",
  "unterminated_quote",
] as const;
type Malformed = typeof MALFORMED[number];

/** Invalid UTF-8 sequences: lone continuation, truncated 3-byte, overlong, 0xFF. */
const BAD_UTF8 = [[0x80], [0xe2, 0x82], [0xc0, 0xaf], [0xff, 0xfe]];

type Kind = { mutation: Mutation } | { malformed: Malformed };

const encoder = new TextEncoder();

export class AnomalyInjector {
  private readonly kinds: Kind[];
  private readonly extras: readonly Mutation[];
  private readonly index: Map<Column, number>;
  private queue: Kind[] = [];
  /** An unterminated quote was drawn and waits for the last row of a file. */
  pendingUnterminated = false;

  constructor(readonly ctx: AnomalyContext) {
    const available = MUTATIONS.filter((m) => ctx.version >= 2 || !m.v2Only);
    this.kinds = [
      ...available.map((mutation) => ({ mutation })),
      ...MALFORMED.map((malformed) => ({ malformed })),
    ];
    this.extras = available.filter((m) => !m.solo);
    this.index = new Map(columnsOf(ctx.version).map((col, i) => [col, i]));
  }

  /** Reason codes this injector can produce (for tests and documentation). */
  get reasons(): ReasonCode[] {
    const codes = new Set<ReasonCode>(["malformed_row"]);
    for (const kind of this.kinds) if ("mutation" in kind) codes.add(kind.mutation.reason);
    return REASON_CODES.filter((code) => codes.has(code));
  }

  /**
   * The next anomaly, built from the shop's next event. Kinds come in shuffled rounds so that
   * every reason shows up early; an unterminated quote is held back for the last row.
   */
  next(event: ShopEvent, id: string, time: string): Injected {
    let kind = this.draw();
    while ("malformed" in kind && kind.malformed === "unterminated_quote") {
      this.pendingUnterminated = true;
      kind = this.draw();
    }
    return "malformed" in kind
      ? this.malformed(kind.malformed, event, id, time)
      : this.faulty(kind.mutation, event, id, time);
  }

  /** The held-back unterminated quote (call on the last row of a file). */
  unterminated(event: ShopEvent, id: string, time: string): Injected {
    this.pendingUnterminated = false;
    return this.malformed("unterminated_quote", event, id, time);
  }

  private draw(): Kind {
    if (this.queue.length === 0) this.queue = this.ctx.rng.shuffle([...this.kinds]);
    return this.queue.pop()!;
  }

  private faulty(first: Mutation, event: ShopEvent, id: string, time: string): Injected {
    const rng = this.ctx.rng;
    const chosen = [first];
    let types = first.types;
    if (!first.solo && rng.chance(MULTI_FAULT_SHARE)) {
      const wanted = rng.between(1, 2);
      for (const extra of rng.shuffle([...this.extras])) {
        if (chosen.length > wanted) break;
        const common = types.filter((t) => extra.types.includes(t));
        const clash = chosen.some((m) => m.columns.some((col) => extra.columns.includes(col)));
        if (common.length === 0 || clash) continue;
        chosen.push(extra);
        types = common;
      }
    }
    const type = types.includes(event.type) ? event.type : rng.pick(types);
    const fields = eventFields(this.reshape(event, type), id, time, this.ctx.version);
    const set: Setter = (col, value) => {
      fields[this.index.get(col)!] = value;
    };
    const get = (col: Column) => fields[this.index.get(col)!];
    for (const m of chosen) m.apply(set, this.ctx, get);
    const codes = new Set(chosen.map((m) => m.reason));
    return {
      reasons: REASON_CODES.filter((code) => codes.has(code)),
      labels: chosen.map((m) => m.name),
      text: csvLine(fields),
      malformed: false,
    };
  }

  private malformed(kind: Malformed, event: ShopEvent, id: string, time: string): Injected {
    // a view row: no field needs quoting, so the line is plain comma-joined text
    const fields = eventFields(this.reshape(event, "view"), id, time, this.ctx.version);
    const category = this.index.get("category")!;
    const rng = this.ctx.rng;
    let bytes: Uint8Array;
    switch (kind) {
      case "extra_field":
        bytes = encoder.encode([...fields, rng.pick(["x", "", "extra"])].join(",") + "\n");
        break;
      case "missing_field":
        bytes = encoder.encode(fields.slice(0, -1).join(",") + "\n");
        break;
      case "invalid_utf8": {
        const before = encoder.encode(fields.slice(0, category).join(",") + ",");
        const after = encoder.encode(fields.slice(category).join(",") + "\n");
        const bad = rng.pick(BAD_UTF8);
        bytes = new Uint8Array(before.length + bad.length + after.length);
        bytes.set(before);
        bytes.set(bad, before.length);
        bytes.set(after, before.length + bad.length);
        break;
      }
      case "nul_byte":
        fields[category] = fields[category].slice(0, 3) + "\0" + fields[category].slice(3);
        bytes = encoder.encode(fields.join(",") + "\n");
        break;
      case "bare_cr":
        fields[category] = fields[category].slice(0, 3) + "\r" + fields[category].slice(3);
        bytes = encoder.encode(fields.join(",") + "\n");
        break;
      case "unterminated_quote": {
        // one opening quote and no closing one: it swallows the rest of the file (nothing)
        const product = this.index.get("product_id")!;
        fields[product] = '"' + fields[product];
        bytes = encoder.encode(fields.join(",") + "\n");
        break;
      }
    }
    return {
      reasons: ["malformed_row"],
      labels: [`malformed_row:${kind}`],
      raw: bytes,
      malformed: true,
    };
  }

  /** The event as a clean (valid) event of `type`, so that only the mutations break it. */
  private reshape(event: ShopEvent, type: EventType): ShopEvent {
    if (event.type === type && type !== "search") return event;
    const { shop, rng } = this.ctx;
    const priced = PRICED_TYPES.includes(type);
    let session = event.session;
    if (USER_TYPES.includes(type) && !session.user) session = { ...session, user: shop.someUser() };
    if (type === "search") {
      // a query without CR or LF, so that a long query is one physical line too
      const query = event.query && !/[\r\n]/.test(event.query) ? event.query : "running shoes";
      return shopEvent(type, session, null, 0, query);
    }
    const product: Product = event.product ?? shop.catalog.pick(rng);
    const payment = type === "purchase" ? event.payment ?? rng.pick(PAYMENT_METHODS) : null;
    return shopEvent(type, session, product, priced ? event.quantity || 1 : 0, "", payment);
  }
}
