import { assert, assertEquals, assertRejects } from "../testing/assert.ts";
import { field, parseExact } from "../batch/mod.ts";
import { NdjsonError, ndjsonToCsv } from "./ndjson.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("ndjsonToCsv: header from every key, numbers keep their text, null is empty", async () => {
  const r = await ndjsonToCsv(enc(
    '{"event_id":"a","price":12.10,"user_id":123456789012345678}\n' +
      "\n" +
      '{"Event_ID ":"b","category":"books","price":null,"extra":{"x":[1.50,true]}}\r\n',
  ));
  assertEquals(
    dec(r.csv),
    "event_id,price,user_id,category,extra\n" +
      "a,12.10,123456789012345678,,\n" +
      'b,,,books,"{""x"":[1.50,true]}"\n',
  );
  assertEquals(r.objects, 2);
  assertEquals([r.lineOf(2), r.lineOf(3)], [1, 3]);
});

Deno.test("ndjsonToCsv: values with newlines keep the NDJSON line mapping", async () => {
  const r = await ndjsonToCsv(enc('{"a":"x\\ny","b":"1"}\n{"a":"z","b":"2"}\n'));
  assertEquals(dec(r.csv), 'a,b\n"x\ny",1\nz,2\n');
  assertEquals([r.lineOf(2), r.lineOf(4)], [1, 2]);
});

Deno.test("ndjsonToCsv: a line that is not a JSON object is named", async () => {
  for (
    const [body, line, text] of [
      ['{"a":1}\n{"a":\n', 2, "Line 2 is not valid JSON"],
      ['{"a":1}\n\n[1,2]\n', 3, "Line 3 is an array, not a JSON object"],
      ['"text"\n', 1, "Line 1 is string, not a JSON object"],
      ["null\n", 1, "Line 1 is null, not a JSON object"],
      ["42\n", 1, "Line 1 is number, not a JSON object"],
      ['{"a":1,"A":2}\n', 1, 'Line 1 names the field "a" twice'],
      [
        '{"a":1}\n{"event_id":"x4","event_id":"x5"}\n',
        2,
        'Line 2 names the field "event_id" twice',
      ],
      ['{"b":"x\\":y","b":{"b":1}}\n', 1, 'Line 1 names the field "b" twice'],
      ['{"a":1,"\\u0061":2}\n', 1, 'Line 1 names the field "a" twice'],
      ["{}\n", 1, "Line 1 is an object with no fields"],
    ] as const
  ) {
    let caught: unknown;
    try {
      await ndjsonToCsv(enc(body));
    } catch (error) {
      caught = error;
    }
    assert(caught instanceof NdjsonError, body);
    assertEquals(caught.line, line, body);
    assert(caught.message.startsWith(text), `${body}: ${caught.message}`);
  }
  await assertRejects(() => ndjsonToCsv(new Uint8Array([0x7b, 0xff, 0x7d])), NdjsonError, "UTF-8");
});

Deno.test("ndjsonToCsv: colons inside strings and nested keys are no field named twice", async () => {
  const r = await ndjsonToCsv(enc('{"a":"x\\":y","b":{"a":1,"b":[{"a":2}]}}\n'));
  assertEquals(dec(r.csv), 'a,b\n"x"":y","{""a"":1,""b"":[{""a"":2}]}"\n');
});

Deno.test("ndjsonToCsv: blank input gives an empty CSV", async () => {
  const r = await ndjsonToCsv(enc("\n  \n"));
  assertEquals([r.csv.length, r.objects], [0, 0]);
});

Deno.test("ndjsonToCsv: number text survives on the fast and the slow path", async () => {
  const r = await ndjsonToCsv(enc(
    '{"a":7,"b":-3,"c":0.25,"d":"x:1.0"}\n' +
      '{"a":1.0,"b":1e3,"c":-0,"d":12345678901234567890}\n' +
      '{"a":[1.50, 2],"b":"10:00:00Z","c":1.5e-7,"d":null}\n',
  ));
  assertEquals(
    dec(r.csv),
    "a,b,c,d\n7,-3,0.25,x:1.0\n1.0,1e3,-0,12345678901234567890\n" +
      '"[1.50,2]",10:00:00Z,1.5e-7,\n',
  );
});

Deno.test("ndjsonToCsv: a large body converts in slices with exact line mapping", async () => {
  let body = "";
  for (let i = 0; i < 5000; i++) {
    body += i % 7 === 0 ? `{"a":"x\\ny${i}","b":${i}}\n\n` : `{"b":${i}}\n`;
  }
  const r = await ndjsonToCsv(enc(body));
  assertEquals(r.objects, 5000);
  const csv = dec(r.csv);
  assert(csv.startsWith('a,b\n"x\ny0",0\n,1\n'), csv.slice(0, 40));
  // the CSV line where each record starts maps back to the NDJSON line of that object
  const physical = csv.split("\n");
  const source = body.split("\n");
  let checked = 0;
  for (let n = 2; n <= physical.length; n++) {
    const text = physical[n - 1];
    if (text === "" || text.startsWith("y")) continue; // end of file / 2nd line of a record
    const b = text.startsWith('"x') ? physical[n].split(",")[1] : text.split(",")[1];
    const line = r.lineOf(n);
    assertEquals(source[line - 1].endsWith(`"b":${b}}`), true, `${n} -> ${line}`);
    checked++;
  }
  assertEquals(checked, 5000);
});

Deno.test("parseExact: numbers print as written, whatever path the parse took", () => {
  const fields = (text: string) =>
    Object.entries(parseExact(text) as Record<string, unknown>).map(([k, v]) => [k, field(v)]);
  // strings only: the plain parse
  assertEquals(fields('{"a":"x: 12.10","b":"[1,2.50]"}'), [["a", "x: 12.10"], ["b", "[1,2.50]"]]);
  // canonical numbers, top level and nested: the plain parse is exact
  assertEquals(fields('{"a":12.5,"b":{"c":[1,2]}}'), [["a", "12.5"], ["b", '{"c":[1,2]}']]);
  // text a number would not print back: the reviver keeps it
  assertEquals(fields('{"a":"s","b":12.10}'), [["a", "s"], ["b", "12.10"]]);
  assertEquals(fields('{"b":{"c":1.50}}'), [["b", '{"c":1.50}']]);
  assertEquals(fields('{"id":12345678901234567890}'), [["id", "12345678901234567890"]]);
  assertEquals(fields('{"e":1e3}'), [["e", "1e3"]]);
  assertEquals(parseExact("12"), 12);
  assertEquals(parseExact("null"), null);
});
