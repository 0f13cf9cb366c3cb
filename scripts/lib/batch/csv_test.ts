import { assertEquals, assertThrows } from "../testing/assert.ts";
import { stringify } from "csv-stringify/sync";
import { csvLine, CsvScanner, HeaderError, lineCount, rawText, splitRecord } from "./csv.ts";

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

Deno.test("csvLine writes what csv-stringify writes, and the scanner reads the fields back", () => {
  const alphabet = ["a", "Z", "7", " ", ",", '"', "\n", "\r", "é", "€", "\t", "'"];
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const options = { record_delimiter: "unix", quote_record_delimiter: true, eof: true } as const;
  let quoted = 0;
  for (let r = 0; r < 2000; r++) {
    const fields = Array.from({ length: 1 + Math.floor(next() * 5) }, () => {
      const n = Math.floor(next() * 6);
      return Array.from({ length: n }, () => alphabet[Math.floor(next() * alphabet.length)])
        .join("");
    });
    const line = csvLine(fields);
    assertEquals(line, stringify([fields], options), JSON.stringify(fields));
    if (line.startsWith('"') || line.includes(',"')) quoted++;
    // a one-field record of "" is an empty line, which CSV cannot tell from no record
    if (fields.length === 1 && fields[0] === "") continue;
    const back = scan("h" + ",h".repeat(fields.length - 1) + "\n" + line);
    assertEquals(back.malformed, [], JSON.stringify(fields));
    assertEquals(back.rows, 1);
    const record = back.out.slice(back.out.indexOf(",") + 1, -1);
    assertEquals(splitRecord(record), fields, JSON.stringify(fields));
    assertEquals(lineCount(line), 1 + fields.join("").split("\n").length - 1);
  }
  assertEquals(quoted > 500, true, "many records needed quoting");
});
