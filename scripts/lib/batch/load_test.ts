import { assert, assertEquals, assertRejects } from "../testing/assert.ts";
import { loadConfig } from "../common/config.ts";
import { purchaseFields } from "../testing/fixtures.ts";
import { bytesSource, CopyError, copyStream, loadFile, loadSource, settings } from "./mod.ts";
import { testDb } from "../testing/testdb.ts";

const cfg = settings(loadConfig({}));
const HEADER =
  "event_id,event_time,event_type,user_id,session_id,product_id,category,price,quantity\n";
const now = new Date();
const at = (minutesAgo: number) => new Date(now.getTime() - minutesAgo * 60_000).toISOString();
const id = (n: number) => `0190a000-0000-7000-8000-${String(n).padStart(12, "0")}`;

function row(n: number, extra: Partial<Record<string, string>> = {}) {
  return Object.values(purchaseFields(id(n), at(1), extra)).join(",") + "\n";
}

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir();
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("loadFile loads, dedupes and dead-letters one file in one transaction", async () => {
  const db = await testDb("loader_basic");
  try {
    await withDir(async (dir) => {
      const path = `${dir}/a.csv`;
      await Deno.writeTextFile(
        path,
        HEADER + row(1) + row(1) + row(1, { price: "13.00" }) + row(2, { price: "-1" }) +
          "1,2,3\n" + row(3, { event_time: at(60) }),
      );
      const r = await loadFile(db.sql, path, cfg);
      assertEquals(r.outcome, "loaded");
      assertEquals(
        [r.result!.rows, r.result!.valid, r.result!.duplicates, r.result!.invalid, r.result!.late],
        [6, 2, 1, 3, 1],
      );
      assertEquals(r.result!.reasons, {
        conflicting_duplicate: 1,
        negative_price: 1,
        malformed_row: 1,
      });
      const dl = await db.sql`
        select line_no, reasons, raw_line from quality.dead_letter order by line_no`;
      assertEquals(dl.map((d) => [d.line_no, d.reasons, d.raw_line]), [
        [4, ["conflicting_duplicate"], null],
        [5, ["negative_price"], null],
        [6, ["malformed_row"], "1,2,3"],
      ]);
      const [ev] = await db.sql`
        select count(*)::int as n, sum(total_amount)::text as revenue from core.events`;
      assertEquals([ev.n, ev.revenue], [2, "50.00"]);
      // validity 2 / (2 + 3) is below MIN_VALIDITY_RATE: the batch raised an alert
      assertEquals(r.result!.alert, true);
      const alerts = await db
        .sql`select kind, validity_rate::text, threshold::text from quality.alerts`;
      assertEquals(alerts.map((a) => [a.kind, a.validity_rate, a.threshold]), [
        ["low_validity", "0.400000", "0.95"],
      ]);

      // the same content again, under its name and under another: nothing changes
      const again = await loadFile(db.sql, path, cfg);
      assertEquals([again.outcome, again.reason], ["duplicate_file", "a.csv"]);
      await Deno.copyFile(path, `${dir}/renamed.csv`);
      const renamed = await loadFile(db.sql, `${dir}/renamed.csv`, cfg);
      assertEquals(renamed.outcome, "duplicate_file");
      const [counts] = await db.sql`
        select (select count(*)::int from core.events) as events,
               (select count(*)::int from quality.dead_letter) as dead,
               (select count(*)::int from ingest.files) as files,
               (select count(*)::int from quality.batch_metrics) as batches`;
      assertEquals(counts, { events: 2, dead: 3, files: 1, batches: 1 });
    });
  } finally {
    await db.drop();
  }
});

Deno.test("loadFile rejects a file without the required columns and records why", async () => {
  const db = await testDb("loader_reject");
  try {
    await withDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/noheader.csv`, row(1) + row(2));
      const r = await loadFile(db.sql, `${dir}/noheader.csv`, cfg);
      assertEquals(r.outcome, "rejected");
      assert(r.reason?.startsWith("missing required column(s) event_id, event_time"), r.reason);
      const [f] = await db.sql`select status, reason from ingest.files`;
      assertEquals(f.status, "rejected");
      const [{ n }] = await db.sql`select count(*)::int as n from core.events`;
      assertEquals(n, 0);
    });
  } finally {
    await db.drop();
  }
});

Deno.test("loadFile records zero-byte and header-only files as empty", async () => {
  const db = await testDb("loader_empty");
  try {
    await withDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/zero.csv`, "");
      await Deno.writeTextFile(`${dir}/header.csv`, HEADER);
      assertEquals((await loadFile(db.sql, `${dir}/zero.csv`, cfg)).outcome, "empty");
      assertEquals((await loadFile(db.sql, `${dir}/header.csv`, cfg)).outcome, "empty");
      const files = await db.sql`select file_name, status from ingest.files order by file_name`;
      assertEquals(files.map((f) => [f.file_name, f.status]), [
        ["header.csv", "empty"],
        ["zero.csv", "empty"],
      ]);
    });
  } finally {
    await db.drop();
  }
});

Deno.test("loadSource maps v1 headers in any order and ignores unknown columns", async () => {
  const db = await testDb("loader_v1");
  try {
    const text = "PRICE, Category ,product_id,user_id,event_type,event_time,event_id,colour\n" +
      `9.99,Books,5,,view,${at(2)},${id(9)},red\n`;
    const r = await loadSource(db.sql, bytesSource(new TextEncoder().encode(text)), "v1.csv", cfg);
    assertEquals(r.unknownColumns, ["colour"]);
    assertEquals(r.result!.valid, 1);
    const [e] = await db.sql`select session_id, quantity, price, category from core.events`;
    assertEquals(e.session_id, `v1-guest-${at(2).slice(0, 10)}`);
    assertEquals([e.quantity, e.price, e.category], [1, null, "books"]);
  } finally {
    await db.drop();
  }
});

Deno.test("copyStream surfaces a COPY the server rejects instead of hanging", async () => {
  const db = await testDb("loader_copyfail");
  try {
    const err = await assertRejects(() =>
      db.sql.begin(async (tx) => {
        await tx`create temp table t (a text, b text) on commit drop`;
        await copyStream(tx, "copy t from stdin (format csv)", ofText("1,2\n3,4,5\n"), 200);
      }), CopyError);
    assert(err.message.includes("COPY was rejected"));
    // the connection is usable again after the rollback
    const [{ ok }] = await db.sql`select 1 as ok`;
    assertEquals(ok, 1);
  } finally {
    await db.drop();
  }
});

Deno.test("copyStream completes a healthy COPY", async () => {
  const db = await testDb("loader_copyok");
  try {
    const n = await db.sql.begin(async (tx) => {
      await tx`create temp table t (a text, b text) on commit drop`;
      await copyStream(tx, "copy t from stdin (format csv)", ofText("1,2\n3,4\n"), 50);
      const [{ n }] = await tx`select count(*)::int as n from t`;
      return n;
    });
    assertEquals(n, 2);
  } finally {
    await db.drop();
  }
});

async function* ofText(text: string) {
  yield new TextEncoder().encode(text);
}
