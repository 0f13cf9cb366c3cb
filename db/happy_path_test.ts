// The validation's two passes agree: ingest.check_stage accepts canonically written rows on a
// cheap happy path and sends every other row through the full classification. The same events
// written canonically (happy path) and in every other accepted spelling (full classification)
// must type identically: loaded after one another they are duplicates, never conflicts, and
// the stored rows are the same. Also: payloads are compared only where an event_id collides,
// and winners fingerprinted by earlier versions still recognise their exact re-sends.
import { stringify } from "csv-stringify/sync";
import { assertEquals } from "../scripts/lib/testing/assert.ts";
import { loadConfig } from "../scripts/lib/common/config.ts";
import { bytesSource, loadSource, settings } from "../scripts/lib/batch/mod.ts";
import { type Column, COLUMNS_V2 as COLUMNS } from "../scripts/lib/common/contract.ts";
import { testDb } from "../scripts/lib/testing/testdb.ts";
import { fullPurchase } from "../scripts/lib/testing/fixtures.ts";

type Row = Partial<Record<Column, string>>;

const t = new Date(Date.now() - 3_600_000);
t.setUTCMilliseconds(250);
const iso = t.toISOString(); // 2026-...T..:..:..250Z
const isoPlus2 = new Date(t.getTime() + 2 * 3_600_000).toISOString().replace("Z", "+02:00");
const isoNoMs = new Date(Math.floor(t.getTime() / 1000) * 1000).toISOString().replace(".000", "");
const id = (i: number) => `0190c000-0000-7000-8000-${String(i).padStart(12, "0")}`;

function row(i: number, over: Row): Row {
  return fullPurchase({ event_id: id(i), event_time: iso, ...over });
}

// [canonical (happy path), the same event spelled otherwise (full classification)]
const PAIRS: [Row, Row][] = [
  [row(1, {}), row(1, { event_type: " Purchase ", category: "BOOKS", currency: "eur" })],
  [row(2, {}), row(2, { event_id: id(2).toUpperCase(), device: "Mobile " })],
  [row(3, {}), row(3, { event_time: isoPlus2 })],
  [row(4, { event_time: isoNoMs }), row(4, { event_time: ` ${isoNoMs}` })],
  [row(5, {}), row(5, { user_id: "007", product_id: " 42" })],
  [row(6, {}), row(6, { price: "12.5", quantity: "02" })],
  [row(7, { price: "0.50" }), row(7, { price: "00.50", session_id: " s-1\t" })],
  [row(8, {}), row(8, { user_email: " A@Example.COM ", traffic_source: "EMAIL" })],
  [
    row(9, { event_type: "view", price: "", quantity: "", payment_method: "" }),
    row(9, { event_type: "view", price: "abc", quantity: "-3", payment_method: " " }),
  ],
  [
    row(10, { event_type: "search", product_id: "", category: "", search_query: "red shoes" }),
    row(10, {
      event_type: "SEARCH",
      product_id: " ",
      category: "",
      search_query: " red shoes ",
      price: "x",
    }),
  ],
  [
    row(11, { event_type: "wishlist", price: "", quantity: "", currency: "" }),
    row(11, { event_type: "wishlist", price: "9.99", quantity: "1", currency: "usd" }),
  ],
  [
    row(12, { event_type: "view", user_id: "", user_email: "" }),
    row(12, { event_type: "view", user_id: " ", user_email: "  " }),
  ],
  [
    row(13, { event_type: "add_to_cart", price: "10000", quantity: "1000" }),
    row(13, { event_type: "add_to_cart", price: "10000.00", quantity: "1000" }),
  ],
  [
    row(14, { event_type: "remove_from_cart", price: "0", quantity: "1" }),
    row(14, { event_type: "remove_from_cart", price: "0.0", quantity: "1" }),
  ],
];

function csv(rows: Row[]): Uint8Array {
  const body = stringify(rows.map((r) => COLUMNS.map((c) => r[c] ?? "")), {
    header: true,
    columns: [...COLUMNS],
  });
  return new TextEncoder().encode(body);
}

const stored = (db: Awaited<ReturnType<typeof testDb>>) =>
  db.sql`
    select event_id::text, event_time, event_type, user_id::text, session_id,
           product_id::text, category, price::text, quantity, total_amount::text, currency,
           device, traffic_source, payment_method, search_query, encode(email_hash, 'hex') as h,
           is_late
    from core.events order by event_id`;

Deno.test("happy path and full classification type every event the same", async () => {
  const cfg = settings(loadConfig({}));
  for (const order of ["canonical first", "other spelling first"]) {
    const db = await testDb(`happy_${order.split(" ")[0]}`);
    try {
      const canonical = PAIRS.map((p) => p[0]);
      const other = PAIRS.map((p) => p[1]);
      const [first, second] = order === "canonical first" ? [canonical, other] : [other, canonical];
      const a = await loadSource(db.sql, bytesSource(csv(first)), "a.csv", cfg);
      assertEquals([a.result!.valid, a.result!.invalid], [PAIRS.length, 0], `${order}: a.csv`);
      const before = await stored(db);
      const b = await loadSource(db.sql, bytesSource(csv(second)), "b.csv", cfg);
      assertEquals(
        [b.result!.valid, b.result!.duplicates, b.result!.invalid],
        [0, PAIRS.length, 0],
        `${order}: every re-spelled event is a duplicate, none a conflict`,
      );
      assertEquals(await stored(db), before);
      // both files in one batch: the second of each pair is a duplicate within the file
      const c = await loadSource(
        db.sql,
        bytesSource(csv([...first, ...second])),
        "c.csv",
        cfg,
      );
      assertEquals([c.result!.valid, c.result!.duplicates], [0, 2 * PAIRS.length]);
    } finally {
      await db.drop();
    }
  }
});

Deno.test("a changed payload is a conflicting duplicate on either path", async () => {
  const db = await testDb("happy_conflict");
  const cfg = settings(loadConfig({}));
  try {
    await loadSource(db.sql, bytesSource(csv(PAIRS.map((p) => p[0]))), "a.csv", cfg);
    // canonical re-sends with one field changed (happy path), and re-spelled ones (full check)
    const changed = [
      row(1, { quantity: "3" }),
      row(2, { session_id: "s-2" }),
      row(3, { event_time: new Date(t.getTime() + 1).toISOString() }),
      row(5, { user_id: "8" }),
      row(6, { price: "12.51" }),
      row(8, { user_email: "b@example.com" }),
      row(1, { quantity: " 3", category: "Books" }),
      row(10, { event_type: "search", product_id: "", category: "", search_query: "Red shoes" }),
    ];
    const r = await loadSource(db.sql, bytesSource(csv(changed)), "b.csv", cfg);
    assertEquals([r.result!.valid, r.result!.duplicates, r.result!.invalid], [0, 0, 8]);
    const dead = await db.sql`
      select line_no::int, reasons from quality.dead_letter order by line_no`;
    assertEquals(
      dead.map((d) => [d.line_no, d.reasons]),
      changed.map((_, i) => [i + 2, ["conflicting_duplicate"]]),
    );
  } finally {
    await db.drop();
  }
});

Deno.test("winners fingerprinted by the earlier text form still match their re-sends", async () => {
  const db = await testDb("happy_legacy");
  const cfg = settings(loadConfig({}));
  try {
    await loadSource(db.sql, bytesSource(csv([row(1, {}), row(2, {})])), "a.csv", cfg);
    // rewrite the stored fingerprints as the previous version computed them
    const n = await db.sql.begin(async (tx) => {
      await tx`set local timezone = 'UTC'`;
      return await tx`
      update core.event_ids as i
      set payload_hash = hashtextextended(concat_ws('|',
          e.event_time, e.event_type, e.user_id, e.session_id, e.product_id, e.category,
          e.price, e.quantity, e.currency, e.device, e.traffic_source, e.payment_method,
          e.search_query, encode(e.email_hash, 'hex')), 0)
      from core.events as e
      where e.event_id = i.event_id`;
    });
    assertEquals(n.count, 2);
    const r = await loadSource(
      db.sql,
      bytesSource(csv([row(1, {}), row(2, { quantity: "5" })])),
      "b.csv",
      cfg,
    );
    assertEquals([r.result!.valid, r.result!.duplicates, r.result!.invalid], [0, 1, 1]);
  } finally {
    await db.drop();
  }
});
