// Kafka messages -> CSV batch: structure only (the rules are tested in SQL through the loader).
import { assertEquals } from "../testing/assert.ts";
import { buildBatch, type Message, readCsv, readJson } from "./batch.ts";

const enc = new TextEncoder();
const msg = (topic: string, offset: number, value: string | Uint8Array): Message => ({
  topic,
  partition: 0,
  offset: BigInt(offset),
  value: typeof value === "string" ? enc.encode(value) : value,
});
const formats = new Map([
  ["j", { format: "json" as const }],
  ["c", { format: "csv" as const, header: ["event_id", "price", "search_query"] }],
]);

Deno.test("a batch: union header, one record per message, poison after the records", () => {
  const b = buildBatch([
    msg("j", 5, '{"event_id":"a","price":12.10}'),
    msg("j", 6, "{oops"),
    msg("c", 9, 'b,3.5,"two\nlines"'),
    msg("c", 10, "only,two"),
    msg("j", 7, '{"Event_ID":"c","device":"ios"}'),
  ], formats);
  assertEquals(
    new TextDecoder().decode(b.csv),
    'event_id,price,search_query,device\na,12.10,,\nb,3.5,"two\nlines",\nc,,,ios\n',
  );
  assertEquals(b.rows, 3);
  // lines: records start at 2, 3 (two physical lines), 5; poison rows follow at 6, 7
  assertEquals(b.lines, [2, 3, 5, 6, 7]);
  assertEquals(b.sources, ["j/0@5", "c/0@9", "j/0@7", "j/0@6", "c/0@10"]);
  assertEquals(b.malformed.map((m) => [m.lineNo, new TextDecoder().decode(m.raw)]), [
    [6, "{oops"],
    [7, "only,two"],
  ]);
});

Deno.test("a message naming a field twice adds no column to the header", () => {
  const b = buildBatch([
    msg("j", 1, '{"event_id":"a"}'),
    msg("j", 2, '{"event_id":"b","Zed":1,"zed":2}'),
    msg("j", 3, '{"event_id":"c","price":"1.50"}'),
  ], formats);
  assertEquals(new TextDecoder().decode(b.csv), "event_id,price\na,\nc,1.50\n");
  assertEquals(b.malformed.map((m) => [m.lineNo, m.why]), [[4, 'the field "zed" is named twice']]);
});

Deno.test("unreadable messages say why", () => {
  assertEquals(typeof readJson(new Uint8Array([0xff])), "string");
  assertEquals(readJson(enc.encode("[1]")), "an array, not a JSON object");
  assertEquals(readJson(enc.encode("12")), "a number, not a JSON object");
  assertEquals(readJson(enc.encode('{"a":1,"A":2}')), 'the field "a" is named twice');
  assertEquals(typeof readCsv(enc.encode('"open,1,2'), ["x", "y", "z"]), "string");
  assertEquals(
    readCsv(enc.encode("1,2,3"), ["x", "y", "z"]),
    new Map([["x", "1"], ["y", "2"], ["z", "3"]]),
  );
});

Deno.test("a batch of poison only still has a header (full column set) and zero records", () => {
  const b = buildBatch([msg("j", 1, "nope")], formats);
  assertEquals(b.rows, 0);
  assertEquals(new TextDecoder().decode(b.csv).startsWith("event_id,event_time,event_type"), true);
  assertEquals(b.lines, [2]);
});
