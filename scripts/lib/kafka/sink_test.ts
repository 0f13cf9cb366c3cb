// One flush = one transaction, also when it holds several fetched batches of one partition (the
// consumer fetches ahead): one position per partition, and messages that do not follow the
// stored position are not loaded. Against a real database; no broker needed for this part.
import { assertEquals } from "../testing/assert.ts";
import { loadConfig } from "../common/config.ts";
import { settings } from "../batch/mod.ts";
import { testDb } from "../testing/testdb.ts";
import type { Sql } from "../common/db.ts";
import type { Message } from "./batch.ts";
import { flush, type PartitionBatch, partitionKey, prebuild } from "./sink.ts";

const cfg = settings(loadConfig({}));
const formats = new Map([["t", { format: "json" as const }]]);
const t = new Date(Date.now() - 60_000).toISOString();

function part(partition: number, from: number, n: number): PartitionBatch {
  const messages: Message[] = Array.from({ length: n }, (_, i) => ({
    topic: "t",
    partition,
    offset: BigInt(from + i),
    value: new TextEncoder().encode(JSON.stringify({
      event_id: `0190f000-0000-7000-8000-${String(partition * 1000 + from + i).padStart(12, "0")}`,
      event_time: t,
      event_type: "view",
      session_id: "s-1",
      product_id: "5",
      category: "toys",
    })),
  }));
  return { topic: "t", partition, messages, highWatermark: BigInt(from + n + 10) };
}

async function positions(sql: Sql) {
  const rows = await sql`
    select partition, next_offset::int as next, messages::int, batches::int
    from ingest.kafka_offsets where consumer_group = 'g' order by partition`;
  return rows.map((r) => [r.partition, r.next, r.messages, r.batches]);
}

Deno.test("a flush with several batches of one partition stores one position per partition; a gap loads nothing of it", async () => {
  const db = await testDb("kafka_sink_parts");
  try {
    // partition 0: offsets 0-2 and 3-5 (two fetches); partition 1: 0-1; built ahead
    const parts = [part(0, 0, 3), part(1, 0, 2), part(0, 3, 3)];
    const r = await flush(db.sql, "g", parts, formats, cfg, prebuild(parts, formats));
    assertEquals([r.messages, r.skipped, r.gaps], [8, 0, []]);
    assertEquals(r.load!.result!.valid, 8);
    assertEquals(await positions(db.sql), [[0, 6, 6, 1], [1, 2, 2, 1]]);

    // partition 0 again from 4 (already loaded up to 5: 4-5 skipped, 6-7 loaded) and a batch
    // of partition 1 from 5 (offsets 2-4 never arrived): partition 1 is a gap, nothing of it loads
    const again = [part(0, 4, 4), part(1, 5, 3)];
    const r2 = await flush(db.sql, "g", again, formats, cfg, prebuild(again, formats));
    assertEquals([r2.messages, r2.skipped, r2.gaps, r2.lost], [2, 5, [{
      topic: "t",
      partition: 1,
    }], []]);
    assertEquals(await positions(db.sql), [[0, 8, 8, 2], [1, 2, 2, 1]]);
    const [{ n }] = await db.sql`select count(*)::int as n from core.events`;
    assertEquals(n, 10);
  } finally {
    await db.drop();
  }
});

Deno.test("offsets without consumable messages are no gap when the fetch covered them; messages deleted by retention are passed over and reported", async () => {
  const db = await testDb("kafka_sink_covers");
  try {
    const first = [part(0, 0, 3), part(1, 0, 3)];
    await flush(db.sql, "g", first, formats, cfg, prebuild(first, formats));
    // partition 0: offsets 3-4 are transaction markers; the fetch started at 3, the first
    // message is 5: loaded. Partition 1: a fetch that started at 5 (3-4 not covered): a gap
    const covered = [{ ...part(0, 5, 2), coversFrom: 3n }, { ...part(1, 5, 2), coversFrom: 5n }];
    const r = await flush(db.sql, "g", covered, formats, cfg);
    assertEquals([r.messages, r.skipped, r.gaps, r.lost], [
      2,
      2,
      [{ topic: "t", partition: 1 }],
      [],
    ]);
    assertEquals(await positions(db.sql), [[0, 7, 5, 2], [1, 3, 3, 1]]);

    // Kafka deleted partition 1 up to offset 4 (its earliest retained offset is 5): the
    // consumer passes that on, the flush loads from 5 and reports 3-4 as lost
    const logStart = new Map([[partitionKey("t", 1), 5n]]);
    const again = [{ ...part(1, 5, 2), coversFrom: 5n }];
    const r2 = await flush(db.sql, "g", again, formats, cfg, undefined, logStart);
    assertEquals([r2.messages, r2.gaps, r2.lost], [2, [], [{
      topic: "t",
      partition: 1,
      from: 3n,
      to: 4n,
    }]]);
    assertEquals(await positions(db.sql), [[0, 7, 5, 2], [1, 7, 5, 2]]);
    const [{ n }] = await db.sql`select count(*)::int as n from core.events`;
    assertEquals(n, 10);
  } finally {
    await db.drop();
  }
});

Deno.test("every dead-lettered row of a flush is named by its message, with few and with over 1,000 of them", async () => {
  const db = await testDb("kafka_sink_sources");
  const enc = new TextEncoder();
  const event = (id: number, over: Record<string, string> = {}) =>
    enc.encode(JSON.stringify({
      event_id: `0190f000-0000-7000-8000-${String(id).padStart(12, "0")}`,
      event_time: t,
      event_type: "view",
      session_id: "s-1",
      product_id: "5",
      category: "toys",
      ...over,
    }));
  const messages = (partition: number, values: Uint8Array[]): PartitionBatch => ({
    topic: "t",
    partition,
    messages: values.map((value, i) => ({ topic: "t", partition, offset: BigInt(i), value })),
    highWatermark: BigInt(values.length),
  });
  const sources = async () =>
    (await db.sql`select source from quality.dead_letter order by source`).map((r) => r.source);
  try {
    // few: a rule failure, a malformed message and one whose field holds a newline (its record
    // takes two CSV lines, which moves the lines after it)
    const few = [
      messages(0, [event(1), event(2, { event_type: "teleport" }), event(3), enc.encode("{bad")]),
      messages(1, [
        event(4, { search_query: "two\nlines" }),
        event(5, { event_time: "yesterday-ish" }),
      ]),
    ];
    const r = await flush(db.sql, "g", few, formats, cfg, prebuild(few, formats));
    assertEquals([r.load!.result!.valid, r.load!.result!.invalid], [3, 3]);
    assertEquals(await sources(), ["t/0@1", "t/0@3", "t/1@1"]);

    // over 1,000: the result lists only the first 1,000, so every line's source is sent
    await db.sql`delete from quality.dead_letter`;
    const many = [
      messages(2, [
        ...Array.from({ length: 1_100 }, (_, i) => event(10_000 + i, { event_type: "nope" })),
        event(20_000),
      ]),
    ];
    const r2 = await flush(db.sql, "g", many, formats, cfg, prebuild(many, formats));
    assertEquals([r2.load!.result!.valid, r2.load!.result!.invalid], [1, 1_100]);
    const named = await sources();
    assertEquals(named.length, 1_100);
    assertEquals(
      new Set(named),
      new Set(Array.from({ length: 1_100 }, (_, i) => `t/2@${i}`)),
    );
  } finally {
    await db.drop();
  }
});
