import { assertEquals, assertRejects } from "../testing/assert.ts";
import { connect } from "./db.ts";
import { testDb } from "../testing/testdb.ts";

async function sqlstate(fn: () => Promise<unknown>): Promise<string> {
  const error = await assertRejects(fn);
  return (error as unknown as { code: string }).code;
}

Deno.test("pipeline_ingest may load but not read core.events nor run DDL", async () => {
  const db = await testDb("roles_ingest");
  const ingest = connect({ url: db.url, role: "pipeline_ingest", max: 1 });
  try {
    assertEquals(await sqlstate(() => ingest`select * from core.events`), "42501");
    assertEquals(await sqlstate(() => ingest`select * from quality.dead_letter`), "42501");
    assertEquals(await sqlstate(() => ingest`select * from ingest.files`), "42501");
    assertEquals(await sqlstate(() => ingest`create table ingest.x (a int)`), "42501");
    assertEquals(await sqlstate(() => ingest`create table public.x (a int)`), "42501");
    assertEquals(await sqlstate(() => ingest`delete from core.events`), "42501");
    // the loading procedures are its way in
    const [{ opened }] = await ingest`
      select ingest.open_batch('http', 'b', 0, array['event_id']) as opened`;
    assertEquals(opened.status, "rejected");
  } finally {
    await ingest.end();
    await db.drop();
  }
});

Deno.test("pipeline_analyst is refused on core, quality and ingest", async () => {
  const db = await testDb("roles_analyst");
  const analyst = connect({ url: db.url, role: "pipeline_analyst", max: 1 });
  try {
    for (
      const table of [
        "core.events",
        "core.event_ids",
        "quality.dead_letter",
        "quality.batch_metrics",
        "ingest.files",
      ]
    ) {
      assertEquals(await sqlstate(() => analyst.unsafe(`select * from ${table}`)), "42501", table);
    }
    assertEquals(
      await sqlstate(() => analyst`select ingest.open_batch('http', 'b', 0, null)`),
      "42501",
    );
    assertEquals(await sqlstate(() => analyst`select quality.replay(null, null, '{}')`), "42501");
  } finally {
    await analyst.end();
    await db.drop();
  }
});
