// SQL behaviour tests for the validation rules: one row per case through the real procedures.
import { stringify } from "csv-stringify/sync";
import { assertEquals } from "../scripts/lib/testing/assert.ts";
import { loadConfig } from "../scripts/lib/common/config.ts";
import { bytesSource, loadSource, settings } from "../scripts/lib/batch/mod.ts";
import { type Column, COLUMNS_V2 as COLUMNS } from "../scripts/lib/common/contract.ts";
import { testDb } from "../scripts/lib/testing/testdb.ts";
import { fullPurchase } from "../scripts/lib/testing/fixtures.ts";

type Row = Partial<Record<Column, string>>;

const now = Date.now();
const iso = (offsetMs: number) => new Date(now + offsetMs).toISOString();
const MIN = 60_000, DAY = 86_400_000;
let n = 0;
const nextId = () => `0190a000-0000-7000-8000-${String(++n).padStart(12, "0")}`;

function purchase(over: Row = {}): Row {
  return fullPurchase({ event_id: nextId(), event_time: iso(-MIN), ...over });
}
const view = (over: Row = {}) =>
  purchase({ event_type: "view", price: "", quantity: "", payment_method: "", ...over });
const search = (over: Row = {}) =>
  view({ event_type: "search", product_id: "", category: "", search_query: "red shoes", ...over });

// [case, row, expected reasons ([] = valid)]
const CASES: [string, Row, string[]][] = [
  ["valid purchase", purchase(), []],
  [
    "valid guest view, price and quantity ignored",
    view({ user_id: "", price: "abc", quantity: "x" }),
    [],
  ],
  ["valid search without product", search(), []],
  [
    "trimmed, case-insensitive enums",
    purchase({ event_type: " PURCHASE ", category: "Books", currency: "eur", device: "Mobile" }),
    [],
  ],
  [
    "offset +02:00 and +0200 and +02",
    purchase({ event_time: iso(-MIN).replace("Z", "+00:00") }),
    [],
  ],
  ["missing_event_id", purchase({ event_id: "" }), ["missing_event_id"]],
  ["invalid_event_id", purchase({ event_id: "not-a-uuid" }), ["invalid_event_id"]],
  ["missing_event_time", purchase({ event_time: "" }), ["missing_event_time"]],
  ["invalid_event_time: no offset", purchase({ event_time: iso(-MIN).replace("Z", "") }), [
    "invalid_event_time",
  ]],
  ["invalid_event_time: not a date", purchase({ event_time: "2026-13-45T99:00:00Z" }), [
    "invalid_event_time",
  ]],
  ["invalid_event_time: not ISO", purchase({ event_time: "Nov 21 2026 10:00 +00" }), [
    "invalid_event_time",
  ]],
  ["future_event_time", purchase({ event_time: iso(10 * MIN) }), ["future_event_time"]],
  ["too_old_event_time", purchase({ event_time: iso(-401 * DAY) }), ["too_old_event_time"]],
  ["missing_event_type", purchase({ event_type: "" }), ["missing_event_type"]],
  ["invalid_event_type", purchase({ event_type: "click" }), ["invalid_event_type"]],
  ["missing_user_id on purchase", purchase({ user_id: "" }), ["missing_user_id"]],
  ["missing_user_id on wishlist", view({ event_type: "wishlist", user_id: "" }), [
    "missing_user_id",
  ]],
  ["invalid_user_id", purchase({ user_id: "-3" }), ["invalid_user_id"]],
  ["invalid_user_id zero", purchase({ user_id: "0" }), ["invalid_user_id"]],
  ["user_id 19 digits, bigint max", purchase({ user_id: "9223372036854775807" }), []],
  ["user_id leading zeros", purchase({ user_id: "0009223372036854775807" }), []],
  ["invalid_user_id max + 1", purchase({ user_id: "9223372036854775808" }), ["invalid_user_id"]],
  ["invalid_user_id 20 digits", purchase({ user_id: "10000000000000000000" }), [
    "invalid_user_id",
  ]],
  ["invalid_user_id zeros only", purchase({ user_id: "000" }), ["invalid_user_id"]],
  ["product_id 19 digits", purchase({ product_id: "1234567890123456789" }), []],
  ["invalid_product_id max + 1", purchase({ product_id: "9223372036854775808" }), [
    "invalid_product_id",
  ]],
  ["invalid_product_id 20 digits", purchase({ product_id: "99999999999999999999" }), [
    "invalid_product_id",
  ]],
  ["missing_session_id", purchase({ session_id: "" }), ["missing_session_id"]],
  ["invalid_session_id", purchase({ session_id: "s".repeat(65) }), ["invalid_session_id"]],
  ["missing_product_id", purchase({ product_id: "" }), ["missing_product_id"]],
  ["invalid_product_id", purchase({ product_id: "4.2" }), ["invalid_product_id"]],
  ["invalid_category", purchase({ category: "cars" }), ["invalid_category"]],
  ["invalid_category when missing", view({ category: "" }), ["invalid_category"]],
  ["missing_price", purchase({ price: "" }), ["missing_price"]],
  ["invalid_price: three decimals", purchase({ price: "1.999" }), ["invalid_price"]],
  ["invalid_price: NaN", purchase({ price: "NaN" }), ["invalid_price"]],
  ["invalid_price: Infinity", purchase({ price: "Infinity" }), ["invalid_price"]],
  ["invalid_price: overflow", purchase({ price: "1".repeat(20) }), ["invalid_price"]],
  ["negative_price", purchase({ price: "-1.00" }), ["negative_price"]],
  ["zero_price", purchase({ price: "0" }), ["zero_price"]],
  [
    "zero price allowed on add_to_cart",
    purchase({ event_type: "add_to_cart", price: "0.00", payment_method: "" }),
    [],
  ],
  ["extreme_price", purchase({ price: "10000.01" }), ["extreme_price"]],
  ["invalid_quantity: zero", purchase({ quantity: "0" }), ["invalid_quantity"]],
  ["invalid_quantity: 1001", purchase({ quantity: "1001" }), ["invalid_quantity"]],
  ["invalid_quantity: empty on cart", purchase({ event_type: "add_to_cart", quantity: "" }), [
    "invalid_quantity",
  ]],
  ["invalid_quantity: not an integer", purchase({ quantity: "2.5" }), ["invalid_quantity"]],
  ["invalid_currency", purchase({ currency: "JPY" }), ["invalid_currency"]],
  ["invalid_device", purchase({ device: "fridge" }), ["invalid_device"]],
  ["invalid_traffic_source", purchase({ traffic_source: "tv" }), ["invalid_traffic_source"]],
  ["invalid_payment_method", purchase({ payment_method: "cash" }), ["invalid_payment_method"]],
  ["invalid_search_query", search({ search_query: "q".repeat(201) }), ["invalid_search_query"]],
  [
    "several faults, all reasons in contract order",
    purchase({
      event_id: "x",
      event_time: "",
      event_type: "purchase",
      user_id: "",
      session_id: "",
      product_id: "-1",
      category: "cars",
      price: "-5",
      quantity: "0",
      currency: "JPY",
      device: "tv",
      traffic_source: "tv",
      payment_method: "cash",
    }),
    [
      "invalid_event_id",
      "missing_event_time",
      "missing_user_id",
      "missing_session_id",
      "invalid_product_id",
      "invalid_category",
      "negative_price",
      "invalid_quantity",
      "invalid_currency",
      "invalid_device",
      "invalid_traffic_source",
      "invalid_payment_method",
    ],
  ],
  [
    "zero and extreme are independent of negative",
    purchase({ price: "0", quantity: "5000", event_time: iso(20 * MIN) }),
    ["future_event_time", "zero_price", "invalid_quantity"],
  ],
];

function csv(rows: Row[]): Uint8Array {
  const body = stringify(rows.map((r) => COLUMNS.map((c) => r[c] ?? "")), {
    header: true,
    columns: [...COLUMNS],
  });
  return new TextEncoder().encode(body);
}

Deno.test("validation gives every reason code of the contract, in order", async () => {
  const db = await testDb("validation_codes");
  try {
    const r = await loadSource(
      db.sql,
      bytesSource(csv(CASES.map((c) => c[1]))),
      "cases.csv",
      settings(loadConfig({})),
    );
    const dead = await db.sql`select line_no, reasons from quality.dead_letter`;
    const byLine = new Map(dead.map((d) => [Number(d.line_no), d.reasons as string[]]));
    CASES.forEach(([name, , expected], i) => {
      assertEquals(byLine.get(i + 2) ?? [], expected, name);
    });
    const valid = CASES.filter((c) => c[2].length === 0).length;
    assertEquals([r.result!.valid, r.result!.invalid], [valid, CASES.length - valid]);
  } finally {
    await db.drop();
  }
});

Deno.test("validation stores normalised values: NULL price on views, USD default, keyed email", async () => {
  const db = await testDb("validation_values");
  try {
    const rows = [
      view({ price: "9.99", quantity: "3", currency: "", user_email: " A@Example.com " }),
      purchase({ price: "10.25", quantity: "3", user_email: "" }),
    ];
    await loadSource(db.sql, bytesSource(csv(rows)), "v.csv", settings(loadConfig({})));
    const ev = await db.sql`
      select event_type, price::text, quantity, total_amount::text, currency,
             email_hash is not null as hashed, encode(email_hash, 'hex') as h
      from core.events order by line_no`;
    assertEquals(
      ev.map((e) => [e.event_type, e.price, e.quantity, e.total_amount, e.currency, e.hashed]),
      [
        ["view", null, 1, null, "USD", true],
        ["purchase", "10.25", 3, "30.75", "EUR", false],
      ],
    );
    const [{ expected }] = await db.sql`
      select encode(public.hmac('a@example.com', 'change-me-in-production', 'sha256'), 'hex') as expected`;
    assertEquals(ev[0].h, expected);
  } finally {
    await db.drop();
  }
});

Deno.test("19-digit ids are stored exactly and read back exactly by TypeScript", async () => {
  const db = await testDb("validation_big_ids");
  try {
    const rows = [
      purchase({ user_id: "9223372036854775807", product_id: "00001234567890123456789" }),
      purchase({ user_id: "9007199254740993", product_id: "42" }), // 2^53 + 1: not a double
    ];
    await loadSource(db.sql, bytesSource(csv(rows)), "ids.csv", settings(loadConfig({})));
    const ev = await db.sql`
      select user_id, product_id, user_id::text as u, count(*) over () as n
      from core.events order by line_no`;
    assertEquals(
      ev.map((e) => [e.user_id, e.product_id, e.u, e.n]),
      [
        ["9223372036854775807", "1234567890123456789", "9223372036854775807", 2],
        ["9007199254740993", 42, "9007199254740993", 2],
      ],
    );
  } finally {
    await db.drop();
  }
});

Deno.test("a raised MAX_PRICE lets replay move extreme prices into events, once", async () => {
  const db = await testDb("validation_replay");
  try {
    const cfg = settings(loadConfig({}));
    const rows = [purchase({ price: "20000.00" }), purchase({ price: "-1" })];
    await loadSource(db.sql, bytesSource(csv(rows)), "r.csv", cfg);
    const replay = async (max: number) => {
      const [{ r }] = await db.sql`
        select quality.replay(null, null, ${db.sql.json({ ...cfg, max_price: max })}::jsonb) as r`;
      return r;
    };
    assertEquals((await replay(10000)).moved, 0);
    const r = await replay(50000);
    assertEquals([r.rows, r.moved, r.duplicates, r.still_invalid], [2, 1, 0, 1]);
    assertEquals((await replay(50000)).moved, 0);
    const [m] = await db.sql`select rows, valid, invalid, duplicates from quality.batch_metrics`;
    assertEquals([m.rows, m.valid, m.invalid, m.duplicates], [2, 1, 1, 0]);
    const [{ n }] = await db.sql`select count(*)::int as n from core.events`;
    assertEquals(n, 1);
    const dead = await db.sql`select reasons, replay_count from quality.dead_letter`;
    assertEquals(dead.map((d) => [d.reasons, d.replay_count]), [[["negative_price"], 3]]);
  } finally {
    await db.drop();
  }
});

Deno.test("every reason code of the contract: a cleanly written row breaking only that rule gets exactly that reason", async () => {
  const db = await testDb("validation_each_rule");
  try {
    const [{ codes }] = await db.sql`select ingest.reason_codes() as codes`;
    // the case named after the code (or "code: how"): canonical spelling, so it is typed by
    // the cheap casts, and only the rule decides
    const rows = (codes as string[]).map((code) => {
      const found = CASES.find(([name, , want]) =>
        (name === code || name.startsWith(`${code}:`) || name.startsWith(`${code} `)) &&
        want.length === 1 && want[0] === code
      );
      if (!found) throw new Error(`db/validation_test.ts has no case for the rule "${code}"`);
      const row = found[1];
      for (const [column, value] of Object.entries(row)) {
        assertEquals(value, value!.trim(), `${code}: ${column} is written cleanly`);
      }
      return row;
    });
    await loadSource(db.sql, bytesSource(csv(rows)), "rules.csv", settings(loadConfig({})));
    const dead = await db.sql`select line_no, reasons from quality.dead_letter order by line_no`;
    assertEquals(
      dead.map((d) => [Number(d.line_no), d.reasons]),
      (codes as string[]).map((code, i) => [i + 2, [code]]),
    );
  } finally {
    await db.drop();
  }
});
