// Kafka messages -> CSV batch: structure only (the rules are tested in SQL through the loader).
import { assertEquals } from "../testing/assert.ts";
import { CsvScanner } from "../batch/mod.ts";
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
  // one by one (as kafka_commit's dead-lettered lines take them), then the whole list
  assertEquals([0, 1, 2, 3, 4].map((i) => b.sourceAt(i)), [
    "j/0@5",
    "c/0@9",
    "j/0@7",
    "j/0@6",
    "c/0@10",
  ]);
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

Deno.test("a message naming a field twice in the same spelling is malformed, not last-wins", () => {
  const b = buildBatch([
    msg("j", 1, '{"event_id":"a","price":"1"}'),
    msg("j", 2, '{"event_id":"b","event_id":"c","price":"2"}'),
    msg("j", 3, '{"event_id":"d","\\u0070rice":"3","price":"4"}'),
    msg("j", 4, '{"event_id":"e","note":"x\\":y","x":{"event_id":1,"y":2}}'),
  ], formats);
  assertEquals(
    new TextDecoder().decode(b.csv),
    'event_id,price,note,x\na,1,,\ne,,"x"":y","{""event_id"":1,""y"":2}"\n',
  );
  assertEquals(b.malformed.map((m) => [m.lineNo, m.why]), [
    [4, 'the field "event_id" is named twice'],
    [5, 'the field "price" is named twice'],
  ]);
  assertEquals(readJson(enc.encode('{"a":1,"a":2}')), 'the field "a" is named twice');
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

Deno.test("flat JSON copied from its bytes gives the batch JSON.parse gives, on random messages", () => {
  // a small seeded generator (mulberry32), so a failure can be replayed
  let seed = 1818;
  const rand = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const keys = [
    '"event_id"',
    '"price"',
    '"Price"',
    '" device "',
    '"search_query"',
    '"quantity"',
    '"1"',
    '"9lives"',
    '"__proto__"',
    '"caf\\u00e9"',
    '"café"',
    '"a\\"b"',
    '""',
    '"zed"',
  ];
  const values = [
    '"a"',
    '""',
    '"x,y"',
    '"two\\nlines"',
    '"say \\"hi\\""',
    '"caf\\u00e9"',
    '"café"',
    '"日本"',
    '"\\t"',
    '"a\\\\b"',
    // a NUL the general way writes into the CSV: the loader's scan dead-letters that record
    '"nul\\u0000here"',
    "0",
    "-0",
    "12",
    "1.50",
    "1.5",
    "1e3",
    "-2.5E-3",
    "12345678901234567890",
    "01",
    "1.",
    ".5",
    "-",
    "true",
    "false",
    "null",
    "nul",
    "{}",
    '{"a":1}',
    "[1,2]",
    "[]",
    '"open',
  ];
  const space = () => pick(["", "", "", " ", "\n", "\t ", "\r\n"]);
  const message = (): string => {
    const r = rand();
    if (r < 0.03) return pick(["", "  ", "[1]", "12", "null", '"s"', "{", "{}", " { } "]);
    const n = Math.floor(rand() * 6);
    const fields = Array.from(
      { length: n },
      () => `${space()}${pick(keys)}${space()}:${space()}${pick(values)}${space()}`,
    );
    let text = `${space()}{${fields.join(",")}}${space()}`;
    if (rand() < 0.03) text += pick(["x", ",", "}", "{}"]);
    if (rand() < 0.02) text = text.slice(0, Math.floor(rand() * text.length));
    return text;
  };
  const raw = (s: string) => {
    // a few messages with bytes that are not UTF-8
    const b = enc.encode(s);
    return rand() < 0.01 ? new Uint8Array([...b, 0xff]) : b;
  };
  let fast = 0, copied = 0, skipped = 0, diverted = 0;
  for (let round = 0; round < 300; round++) {
    const messages = Array.from({ length: 1 + Math.floor(rand() * 40) }, (_, i) => {
      // most rounds: the same fields in the same order, as real topics have
      // a sixth of the rounds: nothing else (such batches go to COPY without the scan)
      const steady = round % 3 === 0;
      const text = steady && (round % 6 === 0 || rand() < 0.9)
        ? `{"event_id":"e${i}","price":${pick(["1.50", "2", '"3"'])},"device":"${
          pick(["ios", "web,app", ""])
        }"}`
        : message();
      return msg("j", i, raw(text));
    });
    for (const fullHeader of [false, true]) {
      const got = buildBatch(messages, formats, { fullHeader });
      const want = buildBatch(messages, formats, { fullHeader, general: true });
      const show = (b: typeof got) => ({
        csv: new TextDecoder().decode(b.csv),
        lines: b.lines,
        sources: b.sources,
        rows: b.rows,
        malformed: b.malformed.map((m) => [m.lineNo, m.why, [...m.raw].join(" ")]),
      });
      assertEquals(
        show(got),
        show(want),
        `round ${round}: ${messages.map((m) => new TextDecoder().decode(m.value!)).join(" | ")}`,
      );
      // the records handed to COPY without the loader's scan are what its scan of the CSV gives
      // (no copy: the header line is blank, the field "" alone, and the loader scans the CSV)
      if (!got.copy) {
        assertEquals(new TextDecoder().decode(got.csv).startsWith("\n"), true);
        continue;
      }
      const scanner = new CsvScanner();
      const records = [scanner.push(got.csv), scanner.end()];
      const copyShow = (c: typeof got.copy) => ({
        records: new TextDecoder().decode(c?.records),
        header: c?.header,
        rows: c?.rows,
        malformed: c?.malformed.map((m) => [m.lineNo, m.why, [...m.raw].join(" ")]),
      });
      assertEquals(
        copyShow(got.copy),
        copyShow({
          records: new Uint8Array(records.flatMap((r) => [...r])),
          header: scanner.header!,
          rows: scanner.rows,
          malformed: scanner.malformed,
        }),
        `round ${round}`,
      );
      if (scanner.malformed.length) diverted++;
      if (got.copy.rows === got.rows) copied++;
      else skipped++;
    }
    fast += messages.length;
  }
  // the comparison covered messages of every kind, batches copied and batches to scan
  assertEquals(fast > 3000, true);
  assertEquals(
    copied > 80 && diverted > 20,
    true,
    `${copied} batches with every record passed, ${diverted} with records diverted, ${skipped} with records diverted or skipped`,
  );
});
