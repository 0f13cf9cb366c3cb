// What the consumer holds in hand, which needs no broker (the rest of the consumer:
// scripts/consume_test.ts).
import { assertEquals } from "../testing/assert.ts";
import { keepAssigned } from "./hand.ts";

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
