// Bad-input corpus: hostile and odd files, each asserting the exact reason codes per line and
// that the rest of the file loaded.
import { join } from "node:path";
import { assert, assertEquals } from "../scripts/lib/testing/assert.ts";
import { loadConfig } from "../scripts/lib/common/config.ts";
import { dirsFor, ensureDirs } from "../scripts/lib/common/inbox.ts";
import { bytesSource, loadSource, settings } from "../scripts/lib/batch/mod.ts";
import { logger } from "../scripts/lib/common/log.ts";
import { type TestDb, testDb } from "../scripts/lib/testing/testdb.ts";
import { Ingester } from "../scripts/lib/ingest/ingester.ts";

const enc = new TextEncoder();
const cfg = settings(loadConfig({}));
const H = "event_id,event_time,event_type,user_id,session_id,product_id,category,price,quantity";
const t = new Date(Date.now() - 60_000).toISOString();
let n = 0;
const id = () => `0190c000-0000-7000-8000-${String(++n).padStart(12, "0")}`;
const ok = (over: Partial<Record<string, string>> = {}) => {
  const r: Record<string, string> = {
    event_id: id(),
    event_time: t,
    event_type: "purchase",
    user_id: "5",
    session_id: "s",
    product_id: "9",
    category: "toys",
    price: "5.00",
    quantity: "1",
    ...over,
  };
  return H.split(",").map((c) => r[c]).join(",");
};

interface Outcome {
  outcome: string;
  reason?: string;
  valid: number;
  dead: [number, string[]][];
}

async function load(db: TestDb, name: string, data: string | Uint8Array): Promise<Outcome> {
  const bytes = typeof data === "string" ? enc.encode(data) : data;
  const r = await loadSource(db.sql, bytesSource(bytes), name, cfg);
  const dead = r.result
    ? await db.sql`
        select line_no, reasons from quality.dead_letter
        where batch_id = ${r.result.batch_id} order by line_no`
    : [];
  return {
    outcome: r.outcome,
    reason: r.reason,
    valid: r.result?.valid ?? 0,
    dead: dead.map((d) => [Number(d.line_no), d.reasons]),
  };
}

Deno.test("corpus: BOM, CRLF, mixed line ends and quoted newlines all load", async () => {
  const db = await testDb("corpus_lineends");
  try {
    const text = "\ufeff" + H + "\r\n" + ok() + "\r\n" + ok() + "\n" +
      ok({ session_id: '"multi\r\nline, with ""quotes"""' }) + "\r\n" + ok() + "\n";
    const r = await load(db, "lineends.csv", text);
    assertEquals([r.outcome, r.valid, r.dead], ["loaded", 4, []]);
    const [e] = await db.sql`select session_id, line_no from core.events where line_no = 4`;
    assertEquals(e.session_id, 'multi\r\nline, with "quotes"');
    const lines = await db.sql`select line_no from core.events order by line_no`;
    assertEquals(lines.map((l) => Number(l.line_no)), [2, 3, 4, 6]);
  } finally {
    await db.drop();
  }
});

Deno.test("corpus: NUL bytes and invalid UTF-8 are malformed rows, the rest loads", async () => {
  const db = await testDb("corpus_bytes");
  try {
    const bytes = new Uint8Array([
      ...enc.encode(H + "\n" + ok() + "\n"),
      ...enc.encode(ok({ session_id: "a\u0000b" }) + "\n"),
      ...enc.encode(ok().replace(",s,", ",s")),
      0xc3,
      0x28,
      0x2c,
      ...enc.encode("9,toys,5.00,1\n"),
      ...enc.encode(ok() + "\n"),
    ]);
    const r = await load(db, "bytes.csv", bytes);
    assertEquals([r.valid, r.dead], [2, [[3, ["malformed_row"]], [4, ["malformed_row"]]]]);
    const [d] = await db.sql`
      select raw_line, octet_length(raw_bytes) > 0 as has_bytes from quality.dead_letter
      where line_no = 3`;
    assert((d.raw_line as string).includes("a\ufffdb"));
    assert(d.has_bytes);
  } finally {
    await db.drop();
  }
});

Deno.test("corpus: a 10 MB field is dead-lettered whole, the rest loads", async () => {
  const db = await testDb("corpus_bigfield");
  try {
    const big = "x".repeat(10 * 1024 * 1024);
    const text = H + ",search_query,quantity2\n".replace(",quantity2", "") + ok() + ",\n" +
      ok({ event_type: "search", product_id: "", category: "", price: "", quantity: "" }) +
      `,"${big}"\n` + ok() + ",\n";
    const header = H + ",search_query";
    const r = await load(db, "big.csv", text.replace(H + ",search_query", header));
    assertEquals([r.valid, r.dead], [2, [[3, ["invalid_search_query"]]]]);
    const [d] = await db.sql`select length(search_query) as len from quality.dead_letter`;
    assertEquals(d.len, big.length);
  } finally {
    await db.drop();
  }
});

Deno.test("corpus: overflow, NaN, Infinity and timestamps without offset or out of range", async () => {
  const db = await testDb("corpus_values");
  try {
    const rows = [
      ok({ user_id: "99999999999999999999" }),
      ok({ price: "1" + "0".repeat(30) }),
      ok({ quantity: "99999999999" }),
      ok({ price: "NaN" }),
      ok({ price: "Infinity" }),
      ok({ price: "-Infinity" }),
      ok({ event_time: "2026-11-21T10:15:00" }),
      ok({ event_time: "2026-11-21 10:15:00.123" }),
      ok({ event_time: "1900-01-01T00:00:00Z" }),
      ok({ event_time: "2999-01-01T00:00:00+02:00" }),
      ok({ event_time: "12/11/2026 10:00 +00" }),
      ok(),
    ];
    const r = await load(db, "values.csv", [H, ...rows].join("\n") + "\n");
    assertEquals(r.valid, 1);
    assertEquals(r.dead, [
      [2, ["invalid_user_id"]],
      [3, ["invalid_price"]],
      [4, ["invalid_quantity"]],
      [5, ["invalid_price"]],
      [6, ["invalid_price"]],
      [7, ["invalid_price"]],
      [8, ["invalid_event_time"]],
      [9, ["invalid_event_time"]],
      [10, ["too_old_event_time"]],
      [11, ["future_event_time"]],
      [12, ["invalid_event_time"]],
    ]);
  } finally {
    await db.drop();
  }
});

Deno.test("corpus: SQL injection and spreadsheet formulas are stored literally", async () => {
  const db = await testDb("corpus_injection");
  try {
    const before = await db.sql`
      select count(*)::int as n from pg_class c join pg_namespace s on s.oid = c.relnamespace
      where s.nspname in ('core', 'quality', 'ingest', 'analytics') and c.relkind in ('r', 'p', 'v', 'm')`;
    const evil = [
      `'); drop table core.events; --`,
      `"; delete from quality.dead_letter; --`,
      `=cmd|' /C calc'!A0`,
      `+1+1`,
      `@SUM(A1:A9)`,
      `-2+3`,
    ];
    const rows = evil.map((e) => ok({ session_id: `"${e.replaceAll('"', '""')}"` }));
    const r = await load(db, "evil.csv", [H, ...rows].join("\n") + "\n");
    assertEquals([r.valid, r.dead.length], [evil.length, 0]);
    const stored = await db.sql`select session_id from core.events order by line_no`;
    assertEquals(stored.map((s) => s.session_id), evil);
    const after = await db.sql`
      select count(*)::int as n from pg_class c join pg_namespace s on s.oid = c.relnamespace
      where s.nspname in ('core', 'quality', 'ingest', 'analytics') and c.relkind in ('r', 'p', 'v', 'm')`;
    assertEquals(after[0].n, before[0].n + 1, "only the new monthly partition appeared");
  } finally {
    await db.drop();
  }
});

Deno.test("corpus: empty, header-only, reordered, extra and missing columns", async () => {
  const db = await testDb("corpus_headers");
  try {
    assertEquals((await load(db, "empty.csv", "")).outcome, "empty");
    assertEquals((await load(db, "header.csv", H + "\n")).outcome, "empty");
    const cols = H.split(",");
    const reordered = [...cols].reverse();
    const row = ok().split(",").reverse().join(",");
    const r1 = await load(db, "reordered.csv", reordered.join(",") + ",Colour\n" + row + ",red\n");
    assertEquals([r1.outcome, r1.valid], ["loaded", 1]);
    const missing = await load(db, "missing.csv", cols.slice(1).join(",") + "\n1,2\n");
    assertEquals(missing.outcome, "rejected");
    assert(missing.reason!.includes("missing required column(s) event_id"), missing.reason);
    const twice = await load(db, "twice.csv", H + ",event_id\n" + ok() + ",x\n");
    assertEquals(twice.outcome, "rejected");
    assert(twice.reason!.includes("named twice: event_id"), twice.reason);
  } finally {
    await db.drop();
  }
});

Deno.test("corpus: odd file names load and move safely", async () => {
  const db = await testDb("corpus_names");
  const base = await Deno.makeTempDir({ prefix: "names-" });
  try {
    const dirs = dirsFor(join(base, "incoming"));
    await ensureDirs(dirs);
    const names = ["with space.csv", "ünïcødé-事件.csv", "-rf.csv", "--once.csv", "a..b.csv"];
    const dotfiles = ["..csv", "..%2f..%2fetc.csv"]; // dotfiles: never read (contract 1)
    for (const name of [...names, ...dotfiles]) {
      await Deno.writeTextFile(join(dirs.inbox, name), `${H}\n${ok()}\n`);
    }
    const ing = new Ingester({
      dirs,
      sql: db.sql,
      cfg: loadConfig({ DATABASE_URL: db.url }),
      log: logger("corpus", { level: "error", dir: join(base, "logs"), quiet: true }),
    });
    const s = await ing.drain();
    assertEquals([s.handled, s.failed], [names.length, 0]);
    assertEquals(
      [...Deno.readDirSync(dirs.processed)].map((e) => e.name).sort(),
      [...names].sort(),
    );
    const files = await db.sql`select file_name from ingest.files order by 1`;
    assertEquals(files.map((f) => f.file_name), [...names].sort());
    assertEquals([...Deno.readDirSync(dirs.inbox)].map((e) => e.name).sort(), dotfiles.sort());
    // nothing was written beside the data directories
    const top = [...Deno.readDirSync(base)].map((e) => e.name).filter((d) => d !== "logs");
    assertEquals(top.sort(), ["incoming", "processed", "rejected"]);
  } finally {
    await Deno.remove(base, { recursive: true });
    await db.drop();
  }
});
