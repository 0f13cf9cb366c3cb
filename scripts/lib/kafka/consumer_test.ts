// The consumer's byte budget against a real broker (scripts/kafka.sh) and PostgreSQL: with a
// small budget the bytes in hand never exceed it by more than one fetch, micro-batches hold half
// of it at most, and every event is still stored exactly once. (The consumer's other tests:
// scripts/consume_test.ts.)
import { Buffer } from "node:buffer";
import { Kafka, logLevel } from "kafkajs";
import { assert, assertEquals } from "../testing/assert.ts";
import { testDb } from "../testing/testdb.ts";
import { admin, kafkaBroker, waitFor } from "../testing/kafka.ts";
import { loadConfig } from "../common/config.ts";
import { connect } from "../common/db.ts";
import { logger } from "../common/log.ts";
import { settings } from "../batch/mod.ts";
import { fetchLimits, KafkaSource } from "./consumer.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "with a small byte budget the bytes in hand stay within budget + one fetch; every event stored once",
  opts,
  async () => {
    const run = crypto.randomUUID().slice(0, 8);
    const brokers = await kafkaBroker();
    const db = await testDb("kafka_budget");
    const topic = `budget-${run}`, group = `gbudget-${run}`;
    const kafka = new Kafka({ brokers: [brokers], clientId: "test", logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    const now = new Date(Date.now() - 60_000).toISOString();
    const total = 9_000;
    const sizes: number[] = [];
    const sql = connect({ url: db.url, max: 3 });
    // 256 KiB: fetching stops at it; micro-batches of 128 KiB at most; fetches of 64 KiB
    const budget = 256 * 1024;
    const fetch = fetchLimits(budget).maxBytes;
    assertEquals(fetch, 64 * 1024);
    const source = new KafkaSource({
      client: { brokers: [brokers] },
      group,
      topics: new Map([[topic, { format: "json" }]]),
      // the rows never bound a batch or the fetching here: only the bytes do
      maxRows: 1_000_000,
      maxWaitMs: 200,
      maxBytesInHand: budget,
      sql,
      settings: settings(loadConfig({})),
      log: logger("test", { level: "error" }),
      watermarkIntervalMs: 0,
    });
    try {
      const a = admin(brokers);
      await a.connect();
      await a.createTopics({ topics: [{ topic, numPartitions: 3 }] });
      await a.disconnect();
      await producer.connect();
      // in sends of 100 (small record batches: Kafka returns a partition's first record batch
      // whole even when it is larger than the fetch's limit)
      for (let i = 0; i < total; i += 100) {
        await producer.send({
          topic,
          messages: Array.from({ length: 100 }, (_, k) => {
            const value = Buffer.from(JSON.stringify({
              event_id: crypto.randomUUID(),
              event_time: now,
              event_type: "view",
              // messages of 150 to 200 bytes
              session_id: `s${i + k}-${"x".repeat((i + k) % 50)}`,
              product_id: String(i + k + 1),
              category: "electronics",
            }));
            sizes.push(value.length);
            return { partition: (i + k) % 3, value };
          }),
        });
      }
      const sent = sizes.reduce((a, b) => a + b, 0);
      // what was sent is many budgets: without the budget the consumer would hold most of it
      assert(sent > 4 * (budget + fetch), `sent ${sent} bytes`);
      let sampledPeak = 0;
      const sampler = setInterval(() => {
        sampledPeak = Math.max(sampledPeak, source.bytesInHand.now);
      }, 5);
      await source.start();
      try {
        await waitFor(
          async () => {
            const [r] = await db.sql`
              select coalesce(sum(rows), 0)::int as n from quality.batch_metrics
              where source_kind = 'kafka'`;
            return r.n === total;
          },
          120_000,
          `${total} messages loaded`,
        );
      } finally {
        clearInterval(sampler);
        await source.stop();
      }
      const { peak, now: left, budget: b } = source.bytesInHand;
      assertEquals(b, budget);
      assertEquals(left, 0, "nothing in hand once stopped");
      assert(
        peak <= budget + fetch,
        `peak ${peak} bytes in hand > budget ${budget} + fetch ${fetch}`,
      );
      // it did fetch ahead up to the budget (the bound was reached, not avoided)
      assert(peak >= budget, `peak ${peak} bytes in hand never reached the budget ${budget}`);
      assert(sampledPeak <= peak, `sampled ${sampledPeak} > recorded peak ${peak}`);
      // every micro-batch within half the budget (one message at most beyond it)
      const batches = await db.sql`
        select rows::int as n from quality.batch_metrics where source_kind = 'kafka'
        order by batch_id`;
      const smallest = Math.min(...sizes), largest = Math.max(...sizes);
      for (const r of batches) {
        assert(
          r.n * smallest <= budget / 2 + largest,
          `a batch of ${r.n} messages holds more than half the budget`,
        );
      }
      assert(batches.length >= Math.ceil(sent / (budget / 2)), `${batches.length} batches`);
      // exactly once: every event stored, none twice, positions at the partitions' ends
      const [e] = await db.sql`
        select count(*)::int as n, count(distinct event_id)::int as d from core.events`;
      assertEquals(e, { n: total, d: total });
      const [m] = await db.sql`
        select sum(rows)::int as rows, sum(duplicates)::int as dup, sum(invalid)::int as bad
        from quality.batch_metrics where source_kind = 'kafka'`;
      assertEquals(m, { rows: total, dup: 0, bad: 0 });
      const positions = await db.sql`
        select partition, next_offset::int as next from ingest.kafka_offsets
        where consumer_group = ${group} order by partition`;
      assertEquals(
        positions.map((p) => [p.partition, p.next]),
        [[0, total / 3], [1, total / 3], [2, total / 3]],
      );
    } finally {
      await producer.disconnect();
      await sql.end();
      await db.drop();
    }
  },
);
