// What the consumer holds in hand, which needs no broker (the rest of the consumer:
// scripts/consume_test.ts).
import { assert, assertEquals } from "../testing/assert.ts";
import { Hand, keepAssigned } from "./hand.ts";

Deno.test("after a rebalance a member keeps, in fetch order, only its partitions' parts", () => {
  const part = (topic: string, partition: number, id: string) => ({
    part: { topic, partition },
    id,
  });
  const ready = [
    { batch: [part("t", 0, "r1"), part("t", 2, "r2")] },
    { batch: [part("t", 1, "r3")] },
  ];
  const buffer = [part("t", 2, "b1"), part("u", 0, "b2"), part("t", 0, "b3")];
  const { kept, dropped } = keepAssigned(ready, buffer, [
    { topic: "t", partition: 0 },
    { topic: "u", partition: 0 },
  ]);
  assertEquals(kept.map((p) => p.id), ["r1", "b2", "b3"]);
  assertEquals(dropped.map((p) => p.id), ["r2", "r3", "b1"]);
  // nothing revoked: nothing dropped
  assertEquals(
    keepAssigned(
      ready,
      buffer,
      [0, 1, 2].map((partition) => ({ topic: "t", partition })).concat(
        [{ topic: "u", partition: 0 }],
      ),
    ).dropped,
    [],
  );
});

Deno.test("micro-batches are cut at half the byte budget; bytes in hand are released as batches settle", async () => {
  // 12 messages of 100 bytes in two fetched parts; a budget of 1,000 bytes: batches of 500
  const message = (partition: number, offset: number) => ({
    topic: "t",
    partition,
    offset: BigInt(offset),
    value: new TextEncoder().encode(JSON.stringify({ event_id: "x".repeat(85) })),
  });
  assertEquals(message(0, 0).value.length, 100);
  const hand = new Hand(1_000, new Map([["t", { format: "json" as const }]]), 1_000);
  const part = (partition: number, n: number) => ({
    topic: "t",
    partition,
    messages: Array.from({ length: n }, (_, i) => message(partition, i)),
    highWatermark: BigInt(n),
  });
  const settled: number[] = [];
  const a = hand.add(part(0, 7), () => {}).then(() => settled.push(0));
  const b = hand.add(part(1, 5), () => {}).then(() => settled.push(1));
  assertEquals(hand.bytes, 12 * 100);
  assertEquals(hand.peakBytes, 12 * 100);
  assert(hand.full(1_000_000), "at the byte budget: fetching waits");
  // 5 messages (500 bytes) fill 500; the first part is split after 5, its rest starts the next
  assertEquals(hand.ready.map((t) => t.batch.map((p) => p.part.messages.length)), [[5], [2, 3]]);
  assertEquals(hand.ready.map((t) => t.prebuilt?.messages), [5, 5]);
  assertEquals([hand.rows, hand.bufferBytes], [2, 2 * 100]);
  assertEquals(hand.take(false).batch.map((p) => p.part.messages.length), [2]);
  // the first batch loaded: the first part is still in hand (its rest is not loaded)
  for (const p of hand.ready[0].batch) p.resolve();
  await Promise.resolve();
  assertEquals(settled, []);
  assertEquals(hand.bytes, 12 * 100);
  for (const p of hand.ready[1].batch) p.resolve();
  await a;
  assertEquals(settled, [0]);
  assertEquals(hand.bytes, 5 * 100);
  assert(!hand.full(1_000_000), "below the budget: fetching goes on");
  assertEquals(hand.peakBytes, 12 * 100);
  void b;
});

Deno.test("a message larger than half the budget is a micro-batch of its own", () => {
  const hand = new Hand(1_000, new Map([["t", { format: "json" as const }]]), 100);
  const big = new TextEncoder().encode(JSON.stringify({ event_id: "y".repeat(200) }));
  hand.add({
    topic: "t",
    partition: 0,
    messages: [0, 1, 2].map((o) => ({ topic: "t", partition: 0, offset: BigInt(o), value: big })),
    highWatermark: 3n,
  }, () => {});
  assertEquals(hand.ready.map((t) => t.batch[0].part.messages.length), [1, 1, 1]);
  assertEquals(hand.rows, 0);
});
