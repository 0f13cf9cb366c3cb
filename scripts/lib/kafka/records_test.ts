// Fetches read by record batch (records.ts) give exactly the messages kafkajs's own decoder
// gives, on real responses of the project's broker: plain and gzip batches, keys, null values
// and headers, committed and aborted transactions with their markers, and fetches cut short by
// their byte limit; filtered from several fetched offsets as kafkajs filters them.
import { Buffer } from "node:buffer";
import { CompressionTypes, Kafka } from "kafkajs";
import v11 from "kafkajs/src/protocol/requests/fetch/v11/response.js";
import KafkaBatch from "kafkajs/src/consumer/batch.js";
import { assertEquals } from "../testing/assert.ts";
import { admin, kafkaBroker } from "../testing/kafka.ts";
import { decoders, messagesOf } from "./records.ts";

Deno.test({
  name: "a fetch read by record batch gives the messages kafkajs's decoder gives",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const brokers = await kafkaBroker();
    const topic = `records-${crypto.randomUUID().slice(0, 8)}`;
    const kafka = new Kafka({ brokers: [brokers], clientId: "records-test", logLevel: 0 });
    const a = admin(brokers);
    await a.connect();
    await a.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 2 }] });
    await a.disconnect();

    // what the topic holds: 2 partitions, batches of every kind
    const plain = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await plain.connect();
    const some = (n: number, tag: string) =>
      Array.from({ length: n }, (_, i) => ({
        key: i % 3 === 0 ? null : `k${i % 7}`,
        value: i % 11 === 5 ? null : `{"event_id":"${tag}-${i}","n":${i},"pad":"${"x".repeat(i)}"}`,
        headers: i % 4 === 0 ? { h: `v${i}`, again: ["a", "b"] } : undefined,
      }));
    for (let k = 0; k < 4; k++) await plain.send({ topic, messages: some(50, `plain${k}`) });
    for (let k = 0; k < 3; k++) {
      await plain.send({
        topic,
        compression: CompressionTypes.GZIP,
        messages: some(100, `gzip${k}`),
      });
    }
    await plain.disconnect();
    const transactional = kafka.producer({
      transactionalId: `records-${topic}`,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await transactional.connect();
    for (const [tag, commit] of [["tx1", true], ["tx2", false], ["tx3", true]] as const) {
      const t = await transactional.transaction();
      await t.send({ topic, messages: some(15, tag) });
      await (commit ? t.commit() : t.abort());
    }
    await transactional.send({ topic, messages: some(10, "after") });
    await transactional.disconnect();

    // the raw Fetch v11 responses a consumer gets, with small byte limits (batches cut short)
    const raws: Buffer[] = [];
    const decode = v11.decode;
    v11.decode = (raw: Buffer) => {
      raws.push(Buffer.from(raw));
      return decode(raw);
    };
    try {
      const consumer = kafka.consumer({
        groupId: `records-${topic}`,
        maxBytesPerPartition: 3_000,
        maxBytes: 5_000,
        readUncommitted: false,
      });
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      let seen = 0;
      await consumer.run({
        autoCommit: false,
        eachBatch: ({ batch }) => {
          seen += batch.messages.length;
          return Promise.resolve();
        },
      });
      // 500 plain + 30 committed + 10 after: the aborted 15 are never consumed
      const until = Date.now() + 20_000;
      while (seen < 540 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      await consumer.disconnect();
      assertEquals(seen, 540);
    } finally {
      v11.decode = decode;
    }

    // every response, both ways, filtered from several offsets as kafkajs's Batch filters
    let compared = 0, cut = 0, aborted = 0;
    for (const raw of raws) {
      const [mine, theirs] = [await decoders.byBatch(raw), await decoders.kafkajs(raw)];
      for (const [t, response] of theirs.responses.entries()) {
        for (const [p, part] of response.partitions.entries()) {
          if (part.messages.length === 0) continue;
          const own = mine.responses[t].partitions[p];
          if (part.abortedTransactions.length) aborted++;
          const lastInSet = Number(part.messages[part.messages.length - 1].offset);
          for (const from of [0, 1, 17, 45, 101, 130, 260, 333, 500, lastInSet]) {
            const expected = new KafkaBatch(topic, String(from), part);
            const got = new KafkaBatch(topic, String(from), own);
            const want = expected.messages.map((m: { offset: string; value: Buffer | null }) => [
              m.offset,
              m.value === null ? null : m.value.toString(),
            ]);
            const have = messagesOf(topic, part.partition, got.messages, BigInt(from)).map(
              (m) => [String(m.offset), m.value === null ? null : Buffer.from(m.value).toString()],
            );
            assertEquals(have, want, `partition ${part.partition} from ${from}`);
            // kafkajs resolves and fetches on from the batch's last offset: the same both ways
            assertEquals(got.lastOffset(), expected.lastOffset());
            assertEquals(got.isEmpty(), expected.isEmpty());
            compared++;
          }
          // a fetch whose last record batch was cut short by the byte limit
          const size = part.messages.length;
          if (size > 0 && Number(own.messages.at(-1)?.offset) < Number(part.highWatermark) - 1) {
            cut++;
          }
        }
      }
    }
    assertEquals(compared > 100 && cut > 5 && aborted > 0, true, `${compared}, ${cut}, ${aborted}`);
  },
});
