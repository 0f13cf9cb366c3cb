import { assertEquals, assertThrows } from "../testing/assert.ts";
import { CsvScanner, HeaderError, rawText, splitRecord } from "./csv.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function scan(text: string | Uint8Array, chunkSize = 7) {
  const bytes = typeof text === "string" ? enc.encode(text) : text;
  const s = new CsvScanner();
  let out = "";
  for (let i = 0; i < bytes.length; i += chunkSize) {
    out += dec.decode(s.push(bytes.subarray(i, i + chunkSize)));
  }
  out += dec.decode(s.end());
  return { out, header: s.header, rows: s.rows, malformed: s.malformed };
}

Deno.test("CsvScanner prefixes each record with its line and drops the header", () => {
  const r = scan("a,b\n1,2\n3,4\n");
  assertEquals(r.header, ["a", "b"]);
  assertEquals(r.out, "2,1,2\n3,3,4\n");
  assertEquals(r.rows, 2);
});

Deno.test("CsvScanner strips a BOM, CRLF and skips blank lines", () => {
  const r = scan("\ufeffa,b\r\n1,2\r\n\r\n\n3,4");
  assertEquals(r.header, ["a", "b"]);
  assertEquals(r.out, "2,1,2\n5,3,4\n");
});

Deno.test("CsvScanner keeps quoted commas, quotes and newlines, counting physical lines", () => {
  const r = scan('a,b\n"x,""y""\nz",2\n3,4\n', 3);
  assertEquals(r.out, '2,"x,""y""\nz",2\n4,3,4\n');
  assertEquals(r.malformed.length, 0);
});

Deno.test("CsvScanner diverts wrong field counts, NUL, bare CR and invalid UTF-8", () => {
  const bytes = new Uint8Array([
    ...enc.encode("a,b\n1,2,3\n4\n5,\u0000\n6,7\r8\n9,"),
    0xff,
    ...enc.encode("\n10,\u00e9\n"),
  ]);
  const r = scan(bytes, 5);
  assertEquals(r.out, "7,10,\u00e9\n");
  assertEquals(r.malformed.map((m) => [m.lineNo, m.why]), [
    [2, "3 fields where the header has 2"],
    [3, "1 fields where the header has 2"],
    [4, "NUL byte"],
    [5, "carriage return outside quotes"],
    [6, "invalid UTF-8"],
  ]);
  assertEquals(rawText(r.malformed[2].raw), "5,\ufffd");
});

Deno.test("CsvScanner turns an unterminated quote into one malformed row at the end", () => {
  const r = scan('a,b\n1,2\n3,"open\n4,5\n');
  assertEquals(r.out, "2,1,2\n");
  assertEquals(r.malformed.length, 1);
  assertEquals(r.malformed[0].lineNo, 3);
  assertEquals(r.malformed[0].why, "unterminated quoted field");
  assertEquals(dec.decode(r.malformed[0].raw), '3,"open\n4,5\n');
});

Deno.test("CsvScanner rejects an unreadable header", () => {
  assertThrows(() => scan(new Uint8Array([0x61, 0xff, 0x0a, 0x31])), HeaderError);
});

Deno.test("CsvScanner checks UTF-8 sequences split across chunks", () => {
  const r = scan("a,b\n1,\u20ac\u{1f600}\n", 1);
  assertEquals(r.out, "2,1,\u20ac\u{1f600}\n");
});

Deno.test("splitRecord follows PostgreSQL CSV quoting", () => {
  assertEquals(splitRecord('"a""b",c'), ['a"b', "c"]);
  assertEquals(splitRecord('ab"c,d"ef,g'), ["abc,def", "g"]);
});
