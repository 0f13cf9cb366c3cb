// The contract's enumerated domains are written once in SQL (ingest.domain, db/functions/ingest/
// domains.sql), which the validation reads. The table CHECKs of core.events (a migration) and
// the generator (scripts/lib/common/contract.ts) cannot read it: this test fails when they differ.
import { assertEquals } from "../scripts/lib/testing/assert.ts";
import {
  CATEGORIES,
  CURRENCIES,
  DEVICES,
  EVENT_TYPES,
  PAYMENT_METHODS,
  TRAFFIC_SOURCES,
} from "../scripts/lib/common/contract.ts";
import { testDb } from "../scripts/lib/testing/testdb.ts";

const GENERATOR: Record<string, readonly string[]> = {
  event_type: EVENT_TYPES,
  category: CATEGORIES,
  currency: CURRENCIES,
  device: DEVICES,
  traffic_source: TRAFFIC_SOURCES,
  payment_method: PAYMENT_METHODS,
};

Deno.test("ingest.domain, the CHECKs of core.events and the generator's constants name the same values", async () => {
  const db = await testDb("domains");
  try {
    const checks = new Map<string, string[]>();
    for (
      const { def } of await db.sql`
        select pg_get_constraintdef(oid) as def from pg_constraint
        where conrelid = 'core.events'::regclass and contype = 'c'`
    ) {
      const m = (def as string).match(/\((\w+) = ANY \(ARRAY\[(.*)\]\)\)/);
      if (m) checks.set(m[1], [...m[2].matchAll(/'([^']*)'::text/g)].map((v) => v[1]));
    }
    for (const [column, values] of Object.entries(GENERATOR)) {
      const [{ domain }] = await db.sql`select ingest.domain(${column}) as domain`;
      assertEquals(domain, [...values], `ingest.domain('${column}') and contract.ts`);
      assertEquals(checks.get(column), [...values], `the CHECK of core.events.${column}`);
    }
    // every enumerated CHECK of core.events is one of them
    assertEquals([...checks.keys()].sort(), Object.keys(GENERATOR).sort());
  } finally {
    await db.drop();
  }
});
