// The Kafka source against a real Apache Kafka broker (scripts/kafka.sh) and PostgreSQL:
// exact counts in SQL after seeded producer runs, poison messages, kill -9 of the consumer,
// a rebalance, a broker restart and a database outage. docs/kafka.md
import { Buffer } from "node:buffer";
import { Kafka, logLevel } from "kafkajs";
import { assert, assertEquals } from "./lib/testing/assert.ts";
import { testDb } from "./lib/testing/testdb.ts";
import { startCluster } from "./lib/testing/testpg.ts";
import {
  admin,
  type ConsumerProcess,
  kafkaBroker,
  type Manifest,
  produce,
  startConsumer,
  stopBroker,
  waitFor,
} from "./lib/testing/kafka.ts";
import { connect, type Sql } from "./lib/common/db.ts";
import { topicsOf } from "./lib/kafka/producer.ts";

const run = crypto.randomUUID().slice(0, 8);
const opts = { sanitizeOps: false, sanitizeResources: false };

async function loaded(sql: Sql): Promise<number> {
  const [r] = await sql`
    select coalesce(sum(rows), 0)::int as n from quality.batch_metrics where source_kind = 'kafka'`;
  return r.n;
}

/** The database's counts of everything the Kafka batches loaded, shaped like the manifest. */
async function counts(sql: Sql) {
  const [t] = await sql`
    select coalesce(sum(rows), 0)::int as rows, coalesce(sum(valid), 0)::int as valid,
           coalesce(sum(duplicates), 0)::int as duplicates, coalesce(sum(invalid), 0)::int as invalid
    from quality.batch_metrics where source_kind = 'kafka'`;
  const [e] = await sql`
    select count(*)::int as events, count(distinct event_id)::int as ids from core.events`;
  const reasons: Record<string, number> = {};
  for (
    const r of await sql`
    select reason, count(*)::int as n from quality.dead_letter, unnest(reasons) as reason
    group by reason order by reason`
  ) reasons[r.reason] = r.n;
  return {
    rows: t.rows as number,
    valid: t.valid as number,
    duplicates: t.duplicates as number,
    invalid: t.invalid as number,
    events: e.events as number,
    ids: e.ids as number,
    reasons,
  };
}

/** Where a group stands, for a timeout's message: rows loaded and each stored position. */
async function standing(sql: Sql, group: string): Promise<string> {
  const rows = await sql`
    select topic || '/' || partition as p, next_offset, high_watermark, messages, batches
    from ingest.kafka_offsets where consumer_group = ${group} order by topic, partition`;
  return `${await loaded(sql)} rows loaded; positions (next/high/messages/batches): ${
    rows.map((r) => `${r.p} ${r.next_offset}/${r.high_watermark}/${r.messages}/${r.batches}`).join(
      ", ",
    )
  }`;
}

function expected(m: Manifest) {
  const t = m.totals;
  const reasons: Record<string, number> = {};
  for (const k of Object.keys(t.reasons).sort()) reasons[k] = t.reasons[k];
  return {
    rows: t.rows,
    valid: t.valid,
    duplicates: t.duplicates,
    invalid: t.invalid,
    events: t.valid,
    ids: t.valid,
    reasons,
  };
}

/** Every stored position is the partition's end: nothing skipped, nothing left. */
async function assertPositionsAtEnd(sql: Sql, brokers: string, group: string, topics: string[]) {
  const a = admin(brokers);
  await a.connect();
  try {
    const ends: Record<string, number> = {};
    for (const topic of topics) {
      for (const p of await a.fetchTopicOffsets(topic)) {
        ends[`${topic}/${p.partition}`] = Number(p.high);
      }
    }
    const stored: Record<string, number> = {};
    for (
      const r of await sql`
      select topic, partition, coalesce(next_offset, 0)::int as next from ingest.kafka_offsets
      where consumer_group = ${group}`
    ) stored[`${r.topic}/${r.partition}`] = r.next;
    for (const [k, end] of Object.entries(ends)) {
      assertEquals(stored[k] ?? 0, end, `stored position of ${k}`);
    }
    // and Kafka holds no offsets for the group: it never committed any
    for (const t of await a.fetchOffsets({ groupId: group, topics })) {
      for (const p of t.partitions) {
        assertEquals(p.offset, "-1", `Kafka offset of ${t.topic}/${p.partition}`);
      }
    }
  } finally {
    await a.disconnect();
  }
}

Deno.test(
  "seeded producer run routed by event type, two consumers in one process: the database equals the manifest",
  opts,
  async () => {
    const brokers = await kafkaBroker();
    const db = await testDb("kafka_manifest");
    const dir = await Deno.makeTempDir({ prefix: "kafka-manifest-" });
    const prefix = `m-${run}`;
    const group = `g-${run}`;
    const topics = topicsOf({ topic: prefix, routeByType: true });
    try {
      const m = await produce(
        [
          "--files",
          "3",
          "--events",
          "1000",
          "--seed",
          "1801",
          "--kafka-brokers",
          brokers,
          "--kafka-topic",
          prefix,
          "--kafka-route",
        ],
        dir,
      );
      // two consumers of the group in one process (--consumers 2) share the 16 partitions
      const c = await startConsumer({
        url: db.url,
        brokers,
        group,
        topics,
        dir,
        name: "c",
        args: ["--consumers", "2"],
      });
      try {
        await waitFor(async () => await loaded(db.sql) === m.totals.rows, 60_000, "every message")
          .catch(
            async (e) => {
              throw new Error(
                `${e.message} (${m.totals.rows} sent); ${await standing(
                  db.sql,
                  group,
                )}; consumer log:\n${await c
                  .output()}`,
              );
            },
          );
      } finally {
        assertEquals((await c.stop()).code, 0, await c.output());
      }
      assertEquals(await counts(db.sql), expected(m));
      await assertPositionsAtEnd(db.sql, brokers, group, topics);
      // every dead letter row names its message; malformed ones keep their raw bytes
      const [d] = await db.sql`
      select count(*) filter (where source !~ ${`^${prefix}\\.[a-z]+/[0-9]+@[0-9]+$`})::int as unnamed,
             count(*) filter (where 'malformed_row' = any (reasons) and raw_bytes is null)::int as rawless
      from quality.dead_letter`;
      assertEquals(d, { unnamed: 0, rawless: 0 });
      const [h] = await db
        .sql`select kafka_partitions::int, kafka_lag::int from analytics.pipeline_health`;
      assertEquals(h, { kafka_partitions: topics.length * 4, kafka_lag: 0 });
    } finally {
      await db.drop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "an error retrying cannot fix stops the consumer (exit 1) instead of retrying forever; nothing committed",
  opts,
  async () => {
    const brokers = await kafkaBroker();
    const db = await testDb("kafka_fatal");
    const dir = await Deno.makeTempDir({ prefix: "kafka-fatal-" });
    const topic = `fatal-${run}`, group = `gf-${run}`;
    const kafka = new Kafka({ brokers: [brokers], clientId: "test", logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    try {
      const a = admin(brokers);
      await a.connect();
      await a.createTopics({ topics: [{ topic, numPartitions: 1 }] });
      await a.disconnect();
      await producer.connect();
      await producer.send({
        topic,
        messages: [{
          value: JSON.stringify({
            event_id: crypto.randomUUID(),
            event_time: new Date(Date.now() - 60_000).toISOString(),
            event_type: "view",
            session_id: "s1",
            product_id: "7",
            category: "books",
          }),
        }],
      });
      // every batch now fails with a check violation (23514): a bug retrying cannot fix
      await db.sql`
        alter table quality.batch_metrics add constraint broken check (rows < 0) not valid`;
      const c = startConsumer({ url: db.url, brokers, group, topics: [topic], dir, name: "c" });
      const status = await Promise.race([
        c.child.status,
        new Promise<null>((r) => setTimeout(() => r(null), 60_000)),
      ]);
      if (status === null) await c.kill();
      assertEquals(status?.code, 1, `the consumer must stop: ${await c.output()}`);
      assert((await c.output()).includes("an error retrying does not fix"), await c.output());
      assertEquals(await loaded(db.sql), 0);
      const [{ n }] = await db.sql`select count(*)::int as n from core.events`;
      assertEquals(n, 0);
    } finally {
      await producer.disconnect();
      await db.drop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "poison messages are dead-lettered with raw bytes and topic/partition@offset; the batch goes on",
  opts,
  async () => {
    const brokers = await kafkaBroker();
    const db = await testDb("kafka_poison");
    const dir = await Deno.makeTempDir({ prefix: "kafka-poison-" });
    const json = `pj-${run}`, csv = `pc-${run}`, group = `gp-${run}`;
    const kafka = new Kafka({ brokers: [brokers], clientId: "test", logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    const now = new Date(Date.now() - 60_000).toISOString();
    const good = (i: number) =>
      JSON.stringify({
        event_id: crypto.randomUUID(),
        event_time: now,
        event_type: "view",
        user_id: String(i),
        session_id: `s${i}`,
        product_id: "7",
        category: "electronics",
        price: "10.00",
        quantity: "1",
      });
    const header =
      "event_id,event_time,event_type,user_id,session_id,product_id,category,price,quantity";
    const enc = new TextEncoder();
    const json_msgs = [
      enc.encode(good(1)),
      enc.encode("{not json"),
      new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), // {"\xff\xfe"}: not UTF-8
      enc.encode("[1,2,3]"),
      enc.encode(good(2)),
      // a field named twice: JSON.parse would keep the second id and load it
      enc.encode(
        good(5).replace('{"event_id":', `{"event_id":"${crypto.randomUUID()}","event_id":`),
      ),
    ];
    const csv_msgs = [
      enc.encode(`${crypto.randomUUID()},${now},view,3,s3,7,electronics,10.00,1`),
      enc.encode("only,three,fields"),
      enc.encode(`"unterminated,${now}`),
      enc.encode(`${crypto.randomUUID()},${now},view,4,s4,7,electronics,10.00,1`),
    ];
    try {
      const a = admin(brokers);
      await a.connect();
      await a.createTopics({
        topics: [{ topic: json, numPartitions: 1 }, { topic: csv, numPartitions: 1 }],
      });
      await a.disconnect();
      await producer.connect();
      await producer.send({
        topic: json,
        messages: json_msgs.map((v) => ({ value: Buffer.from(v), partition: 0 })),
      });
      await producer.send({
        topic: csv,
        messages: csv_msgs.map((v) => ({ value: Buffer.from(v), partition: 0 })),
      });
      const c = await startConsumer({
        url: db.url,
        brokers,
        group,
        topics: [json, `${csv}=csv`],
        args: ["--csv-header", header],
        dir,
        name: "c",
      });
      try {
        await waitFor(async () => await loaded(db.sql) === 10, 60_000, "10 messages");
      } finally {
        await c.stop();
      }
      const rows = await db.sql`
      select source, reasons, raw_bytes from quality.dead_letter order by source`;
      assertEquals(
        rows.map((r) => ({
          source: r.source,
          reasons: r.reasons,
          raw: new Uint8Array(r.raw_bytes),
        })),
        [
          { source: `${csv}/0@1`, reasons: ["malformed_row"], raw: csv_msgs[1] },
          { source: `${csv}/0@2`, reasons: ["malformed_row"], raw: csv_msgs[2] },
          { source: `${json}/0@1`, reasons: ["malformed_row"], raw: json_msgs[1] },
          { source: `${json}/0@2`, reasons: ["malformed_row"], raw: json_msgs[2] },
          { source: `${json}/0@3`, reasons: ["malformed_row"], raw: json_msgs[3] },
          { source: `${json}/0@5`, reasons: ["malformed_row"], raw: json_msgs[5] },
        ],
      );
      const [e] = await db.sql`select count(*)::int as n from core.events`;
      assertEquals(e.n, 4);
      await assertPositionsAtEnd(db.sql, brokers, group, [json, csv]);
    } finally {
      await producer.disconnect();
      await db.drop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "a backlog loads in full micro-batches of --max-rows; the rest, and a trickle, once --max-wait-ms has passed",
  opts,
  async () => {
    const brokers = await kafkaBroker();
    const db = await testDb("kafka_batching");
    const dir = await Deno.makeTempDir({ prefix: "kafka-batching-" });
    const topic = `mb-${run}`, group = `gmb-${run}`;
    const kafka = new Kafka({ brokers: [brokers], clientId: "test", logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    const now = new Date(Date.now() - 60_000).toISOString();
    const send = (from: number, n: number) =>
      producer.send({
        topic,
        messages: Array.from({ length: n }, (_, k) => ({
          partition: (from + k) % 3,
          value: Buffer.from(JSON.stringify({
            event_id: crypto.randomUUID(),
            event_time: now,
            event_type: "view",
            session_id: `s${from + k}`,
            product_id: "7",
            category: "electronics",
          })),
        })),
      });
    const batches = async () =>
      (await db.sql`
        select rows::int as n from quality.batch_metrics where source_kind = 'kafka'
        order by batch_id`).map((r) => r.n as number);
    try {
      const a = admin(brokers);
      await a.connect();
      await a.createTopics({ topics: [{ topic, numPartitions: 3 }] });
      await a.disconnect();
      await producer.connect();
      for (let i = 0; i < 10_000; i += 2_000) await send(i, 2_000);
      const c = startConsumer({
        url: db.url,
        brokers,
        group,
        topics: [topic],
        args: ["--max-rows", "3000", "--max-wait-ms", "3000"],
        dir,
        name: "c",
      });
      try {
        await waitFor(async () => await loaded(db.sql) === 10_000, 60_000, "10,000 messages")
          .catch(async (e) => {
            throw new Error(`${e.message} (batches ${await batches()}); log:\n${await c.output()}`);
          });
        // the backlog: full batches, a partition's fetch split where a batch is full; the
        // remainder once it has waited --max-wait-ms with nothing more to come
        assertEquals(await batches(), [3000, 3000, 3000, 1000]);
        const sent = performance.now();
        await send(10_000, 10);
        await waitFor(async () => await loaded(db.sql) === 10_010, 60_000, "10,010 messages");
        assert(performance.now() - sent >= 2_900, "the trickle waited --max-wait-ms");
        assertEquals(await batches(), [3000, 3000, 3000, 1000, 10]);
      } finally {
        await c.stop();
      }
      const [e] = await db.sql`select count(*)::int as n from core.events`;
      assertEquals(e.n, 10_010);
      await assertPositionsAtEnd(db.sql, brokers, group, [topic]);
    } finally {
      await producer.disconnect();
      await db.drop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "transaction markers and aborted messages neither stall the consumer nor load; records deleted by Kafka are passed over and reported",
  opts,
  async () => {
    const brokers = await kafkaBroker();
    const db = await testDb("kafka_tx_retention");
    const dir = await Deno.makeTempDir({ prefix: "kafka-tx-" });
    const topic = `tx-${run}`, group = `gt-${run}`;
    const kafka = new Kafka({ brokers: [brokers], clientId: "test", logLevel: logLevel.NOTHING });
    const producer = kafka.producer({
      transactionalId: `tx-${run}`,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    const now = new Date(Date.now() - 60_000).toISOString();
    let n = 0;
    const event = () =>
      Buffer.from(JSON.stringify({
        event_id: crypto.randomUUID(),
        event_time: now,
        event_type: "view",
        session_id: `s${++n}`,
        product_id: "7",
        category: "electronics",
      }));
    // one transaction of k messages: k offsets, then one for its commit or abort marker
    const txn = async (k: number, commit = true) => {
      const t = await producer.transaction();
      await t.send({ topic, messages: Array.from({ length: k }, () => ({ value: event() })) });
      await (commit ? t.commit() : t.abort());
    };
    const stored = async () => {
      const [r] = await db.sql`
        select next_offset::int as next from ingest.kafka_offsets where consumer_group = ${group}`;
      return r?.next as number | undefined;
    };
    const a = admin(brokers);
    try {
      await a.connect();
      await a.createTopics({ topics: [{ topic, numPartitions: 1 }] });
      await producer.connect();
      await txn(5); // offsets 0-4, marker 5
      await txn(3, false); // 6-8 aborted, marker 9
      await txn(4); // 10-13, marker 14
      const start = (name: string) =>
        startConsumer({ url: db.url, brokers, group, topics: [topic], dir, name });
      // waits until n messages are loaded; the consumer's log tells why when they are not
      const loadedAll = (c: ConsumerProcess, n: number) =>
        waitFor(async () => await loaded(db.sql) === n, 60_000, `${n} messages`).catch(
          async (e) => {
            throw new Error(`${e.message}; consumer log:\n${await c.output()}`);
          },
        );
      const c = start("c");
      try {
        await loadedAll(c, 9);
        assertEquals(await stored(), 14);
        // the next fetch starts at 14 (a marker): its first message is 15, which follows
        await txn(3); // 15-17, marker 18
        await loadedAll(c, 12);
        assertEquals(await stored(), 18);
      } finally {
        await c.stop();
      }

      // while the consumer is stopped, 2 more transactions, and Kafka deletes everything
      // before offset 24 (as retention would): 19-22 are gone before they were loaded
      await txn(4); // 19-22, marker 23
      await txn(4); // 24-27, marker 28
      await a.fetchTopicOffsets(topic); // kafkajs finds the partition's leader from this
      await a.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: "24" }] });
      const c2 = start("c2");
      try {
        await loadedAll(c2, 16); // the 4 retained
        assertEquals(await stored(), 28);
      } finally {
        await c2.stop();
      }
      const log = await c2.output();
      assert(
        /offsets deleted by Kafka \(retention\) before they were loaded.*partition=tx-[^ ]*\/0 offsets=18-23/
          .test(log),
        `the loss is reported:\n${log}`,
      );
      const got = await counts(db.sql);
      assertEquals([got.rows, got.valid, got.events, got.ids], [16, 16, 16, 16]);
      const [o] = await db.sql`
        select messages::int, batches::int from ingest.kafka_offsets where consumer_group = ${group}`;
      assertEquals(o.messages, 16);
    } finally {
      await producer.disconnect().catch(() => {});
      await a.disconnect().catch(() => {});
      await db.drop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "kill -9 of the consumer 20 times (mid-batch, after COPY, after commit, at random): nothing lost or duplicated",
  opts,
  async () => {
    const brokers = await kafkaBroker();
    const db = await testDb("kafka_kill");
    const dir = await Deno.makeTempDir({ prefix: "kafka-kill-" });
    const topic = `k-${run}`, group = `gk-${run}`;
    try {
      const m = await produce(
        [
          "--files",
          "4",
          "--events",
          "2500",
          "--seed",
          "1802",
          "--kafka-brokers",
          brokers,
          "--kafka-topic",
          topic,
        ],
        dir,
      );
      const points = ["mid-batch", "after-copy", "after-commit", "random"];
      const reached: Record<string, number> = {};
      for (let i = 0; i < 20; i++) {
        const point = points[i % points.length];
        const c = await startConsumer({
          url: db.url,
          brokers,
          group,
          topics: [topic],
          args: ["--max-rows", "100"],
          // each batch holds its transaction open 300 ms, so a random kill often lands inside it
          env: point === "random"
            ? { PIPELINE_PAUSE_AT: "before-commit", PIPELINE_PAUSE_MS: "300" }
            : { PIPELINE_CRASH_AT: point },
          dir,
          name: `run-${i}`,
        });
        if (point === "random") {
          await new Promise((r) => setTimeout(r, 1500 + Math.random() * 2500));
          await c.kill();
          reached.random = (reached.random ?? 0) + 1;
        } else {
          const timer = setTimeout(() => c.kill(), 30_000);
          const status = await c.child.status;
          clearTimeout(timer);
          if (
            status.code === 137 && (await c.output()).includes(`crash point "${point}" reached`)
          ) {
            reached[point] = (reached[point] ?? 0) + 1;
          }
        }
      }
      assertEquals(reached, { "mid-batch": 5, "after-copy": 5, "after-commit": 5, random: 5 });
      assert(await loaded(db.sql) < m.totals.rows, "the kills left work for the last run");
      const c = await startConsumer({
        url: db.url,
        brokers,
        group,
        topics: [topic],
        dir,
        name: "final",
      });
      try {
        await waitFor(async () => await loaded(db.sql) === m.totals.rows, 90_000, "every message");
      } finally {
        await c.stop();
      }
      assertEquals(await counts(db.sql), expected(m));
      await assertPositionsAtEnd(db.sql, brokers, group, [topic]);
    } finally {
      await db.drop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "two consumers share the partitions; one killed: the other resumes from PostgreSQL",
  opts,
  async () => {
    const brokers = await kafkaBroker();
    const db = await testDb("kafka_rebalance");
    const dir = await Deno.makeTempDir({ prefix: "kafka-rebalance-" });
    const topic = `r-${run}`, group = `gr-${run}`;
    const slow = { PIPELINE_PAUSE_AT: "before-commit", PIPELINE_PAUSE_MS: "200" };
    try {
      const m = await produce(
        [
          "--files",
          "3",
          "--events",
          "2000",
          "--seed",
          "1803",
          "--kafka-brokers",
          brokers,
          "--kafka-topic",
          topic,
        ],
        dir,
      );
      const args = ["--max-rows", "100"];
      const a = await startConsumer({
        url: db.url,
        brokers,
        group,
        topics: [topic],
        args,
        env: slow,
        dir,
        name: "a",
      });
      await waitFor(async () => await loaded(db.sql) > 0, 30_000, "consumer a to load");
      const b = await startConsumer({
        url: db.url,
        brokers,
        group,
        topics: [topic],
        args,
        env: slow,
        dir,
        name: "b",
      });
      try {
        // b joined: the four partitions are split between a and b
        await waitFor(
          async () => /partitions assigned.*partitions=[^ ]*\/\d/.test(await b.output()),
          30_000,
          "b's assignment",
        );
        // a drops from hand what it fetched of the partitions b now holds (b reads them from
        // the positions in PostgreSQL)
        await waitFor(
          async () => /dropped from hand.*messages=[1-9]/.test(await a.output()),
          10_000,
          "a to drop the messages of b's partitions:\n" + (await a.output()),
        );
        const before = await loaded(db.sql);
        await a.kill();
        assert(before < m.totals.rows, "a was killed before the end");
        await waitFor(async () => await loaded(db.sql) === m.totals.rows, 90_000, "every message");
        const out = await b.output();
        assert(
          /partitions=r-[^ ]*\/0,r-[^ ]*\/1,r-[^ ]*\/2,r-[^ ]*\/3/.test(out),
          `b took over all partitions:\n${out}`,
        );
      } finally {
        await a.kill();
        await b.stop();
      }
      assertEquals(await counts(db.sql), expected(m));
      await assertPositionsAtEnd(db.sql, brokers, group, [topic]);
    } finally {
      await db.drop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "the broker restarted mid-run: the consumer reconnects, nothing lost or duplicated",
  opts,
  async () => {
    let brokers = await kafkaBroker();
    const db = await testDb("kafka_broker_restart");
    const dir = await Deno.makeTempDir({ prefix: "kafka-restart-" });
    const topic = `b-${run}`, group = `gb-${run}`;
    try {
      const m1 = await produce(
        [
          "--files",
          "2",
          "--events",
          "2000",
          "--seed",
          "1804",
          "--kafka-brokers",
          brokers,
          "--kafka-topic",
          topic,
        ],
        dir,
      );
      const c = await startConsumer({
        url: db.url,
        brokers,
        group,
        topics: [topic],
        args: ["--max-rows", "100"],
        env: { PIPELINE_PAUSE_AT: "before-commit", PIPELINE_PAUSE_MS: "100" },
        dir,
        name: "c",
      });
      try {
        await waitFor(async () => await loaded(db.sql) > 0, 30_000, "a first batch");
        await stopBroker();
        await new Promise((r) => setTimeout(r, 2000));
        brokers = await kafkaBroker();
        const m2 = await produce(
          [
            "--files",
            "1",
            "--events",
            "1000",
            "--seed",
            "1805",
            "--kafka-brokers",
            brokers,
            "--kafka-topic",
            topic,
          ],
          dir,
        );
        const rows = m1.totals.rows + m2.totals.rows;
        await waitFor(async () => await loaded(db.sql) === rows, 120_000, "every message").catch(
          async (e) => {
            const log = (await c.output()).split("\n").filter((l) => !l.includes("pause point"));
            throw new Error(
              `${e.message} (${rows} sent); ${await standing(db.sql, group)}; consumer log:\n${
                log.join("\n")
              }`,
            );
          },
        );
        const got = await counts(db.sql);
        assertEquals(got.rows, rows);
        assertEquals(got.valid, m1.totals.valid + m2.totals.valid);
        assertEquals(got.duplicates, m1.totals.duplicates + m2.totals.duplicates);
        assertEquals(got.invalid, m1.totals.invalid + m2.totals.invalid);
        assertEquals(got.events, got.valid);
        assertEquals(got.ids, got.valid);
      } finally {
        await c.stop();
      }
      await assertPositionsAtEnd(db.sql, brokers, group, [topic]);
    } finally {
      await db.drop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "PostgreSQL down mid-run: the consumer pauses, retries and resumes; nothing lost",
  opts,
  async () => {
    const brokers = await kafkaBroker();
    const cluster = await startCluster("kafka-outage");
    const dir = await Deno.makeTempDir({ prefix: "kafka-outage-" });
    const topic = `o-${run}`, group = `go-${run}`;
    const sql = connect({ url: cluster.url, max: 1, connectTimeout: 2 });
    try {
      const m = await produce(
        [
          "--files",
          "2",
          "--events",
          "2000",
          "--seed",
          "1806",
          "--kafka-brokers",
          brokers,
          "--kafka-topic",
          topic,
        ],
        dir,
      );
      const c = await startConsumer({
        url: cluster.url,
        brokers,
        group,
        topics: [topic],
        args: ["--max-rows", "100"],
        env: {
          PIPELINE_PAUSE_AT: "before-commit",
          PIPELINE_PAUSE_MS: "100",
          DB_RETRY_MAX_SECONDS: "1",
        },
        dir,
        name: "c",
      });
      try {
        await waitFor(async () => await loaded(sql) > 0, 30_000, "a first batch");
        await cluster.stop("immediate");
        await new Promise((r) => setTimeout(r, 3000));
        await cluster.start();
        await waitFor(async () => await loaded(sql) === m.totals.rows, 90_000, "every message")
          .catch(
            async (e) => {
              throw new Error(`${e.message}; consumer log:\n${await c.output()}`);
            },
          );
        assert(
          (await c.output()).includes("batch not loaded, nothing committed: retrying"),
          "it retried",
        );
      } finally {
        await c.stop();
      }
      assertEquals(await counts(sql), expected(m));
      await assertPositionsAtEnd(sql, brokers, group, [topic]);
    } finally {
      await sql.end({ timeout: 1 });
      await cluster.destroy();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
