// A file loaded in parallel chunks (db/functions/ingest/chunks.sql) stores exactly what one
// session stores; a missing or late chunk refuses the batch; scratch tables never outlive it.
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "../testing/assert.ts";
import { loadConfig } from "../common/config.ts";
import { generate } from "../generator/generate.ts";
import { HEADER } from "../testing/fixtures.ts";
import { FACTS, facts } from "../testing/facts.ts";
import { testDb } from "../testing/testdb.ts";
import type { Sql } from "../common/db.ts";
import { bytesSource, loadFile, loadSource, settings } from "./mod.ts";

const cfg = settings(loadConfig({ MAX_PRICE: "5000" }));

async function scratchTables(sql: Sql): Promise<string[]> {
  const rows = await sql`
    select relname from pg_class where relnamespace = 'ingest_scratch'::regnamespace
    order by relname`;
  return rows.map((r) => r.relname);
}

Deno.test("a file loaded in 3 chunks stores and reports exactly what one session stores", async () => {
  const one = await testDb("chunks_one");
  const three = await testDb("chunks_three");
  const base = await Deno.makeTempDir({ prefix: "chunks-" });
  try {
    // events end 5-9 minutes ago, late ones well before LATE_AFTER_SECONDS: no row sits near
    // a boundary while the two databases load the same file a moment apart
    const big = await generate({
      files: 2,
      events: 20_000, // ~3.5 MB a file: several 1 MiB reads, shared by the chunks
      intervalSeconds: 60,
      seed: 41,
      startTime: new Date(Date.now() - 9 * 60_000),
      anomalyRate: 0.06,
      duplicateRate: 0.05,
      lateRate: 0.03,
      outDir: join(base, "files"),
    });
    const v1 = await generate({
      files: 1,
      events: 3_000,
      intervalSeconds: 60,
      seed: 42,
      schemaVersion: 1,
      startTime: new Date(Date.now() - 7 * 60_000),
      anomalyRate: 0.05,
      outDir: join(base, "files"),
    });
    // a column outside the contract (kept in extra), and ids repeated from the first file
    const firstIds = (await Deno.readTextFile(join(base, "files", big.files[0].name)))
      .split("\n").slice(1, 4).map((l) => l.split(",")[0]);
    const t = new Date(Date.now() - 6 * 60_000).toISOString();
    const extra = HEADER.trimEnd() + ",coupon_code\n" +
      firstIds.map((id, i) =>
        `${id},${t},purchase,${7 + i},s-x,${3 + i},toys,${10 + i}.00,1,C-${i}`
      ).join("\n") + "\n" +
      `0190c000-0000-7000-8000-000000000001,${t},purchase,9,s-y,4,toys,12.50,2,SPRING\n`;
    await Deno.writeTextFile(join(base, "files", "extra.csv"), extra);

    const names = [...big.files.map((f) => f.name), ...v1.files.map((f) => f.name), "extra.csv"];
    for (const name of names) {
      const path = join(base, "files", name);
      const a = await loadFile(one.sql, path, cfg, { chunks: 1 });
      const b = await loadFile(three.sql, path, cfg, { chunks: 3 });
      assertEquals(a.outcome, "loaded", name);
      assertEquals(b.outcome, "loaded", name);
      assertEquals(a.chunks, undefined);
      assertEquals(b.chunks!.length, 3);
      assertEquals([a.slices, b.slices], [undefined, 3], "3 slice sessions finished the batch");
      // duplicates in the file and of stored ids (extra.csv) predicted: rolled up beside them
      assertEquals([a.rolledUp, b.rolledUp], [undefined, "ahead"], name);
      assertEquals(
        b.chunks!.reduce((x, y) => x + y, 0) + (b.result!.reasons.malformed_row ?? 0),
        b.result!.rows,
      );
      if (big.files.some((f) => f.name === name)) {
        // whichever session asks first takes the next MiB: at least two shared the file
        assert(
          b.chunks!.filter((n) => n > 0).length >= 2,
          `the chunks shared the rows of ${name}: ${b.chunks}`,
        );
      }
      const { process_ms: _p1, ...ra } = a.result!;
      const { process_ms: _p2, ...rb } = b.result!;
      assertEquals(rb, ra, `${name}: the batch result differs`);
    }
    const [fa, fb] = [await facts(one.sql), await facts(three.sql)];
    for (const name of Object.keys(FACTS)) {
      assertEquals(fb[name], fa[name], `${name} differs between 3 chunks and one session`);
    }
    // the workload had what it must: duplicates, conflicts, invalid rows, late rows, extra
    const [m] = await three.sql`
      select sum(duplicates)::int as dups, sum(invalid)::int as invalid, sum(late)::int as late,
        (select count(*)::int from core.events where extra ? 'coupon_code') as extra,
        (select count(*)::int from quality.dead_letter
          where source = 'extra.csv' and reasons = '{conflicting_duplicate}') as conflicts
      from quality.batch_metrics`;
    assert(
      m.dups > 0 && m.invalid > 0 && m.late > 0 && m.extra === 1 && m.conflicts === 3,
      JSON.stringify(m),
    );
    assertEquals(
      await scratchTables(three.sql),
      [],
      "the batch's commit dropped its scratch tables",
    );
  } finally {
    await Deno.remove(base, { recursive: true });
    await one.drop();
    await three.drop();
  }
});

Deno.test("chunks need their batch's open transaction, and every chunk, or nothing is loaded", async () => {
  const db = await testDb("chunks_refused");
  try {
    const header = HEADER.trimEnd().split(",");
    // no transaction holds batch 999999: a chunk for it is refused
    await assertRejects(
      () => db.sql`select ingest.open_chunk(999999, 1, ${header}::text[])`,
      Error,
      "batch 999999 is not open for chunks",
    );

    // T opens a batch in 2 chunks; only chunk 1 is staged; T asks for both: refused whole
    const row = `0190d000-0000-7000-8000-000000000001,${
      new Date().toISOString()
    },view,,s-1,5,toys,,`;
    await assertRejects(
      () =>
        db.sql.begin(async (tx) => {
          const [{ opened }] = await tx`
            select ingest.open_batch('file', 'two.csv', 100, ${header}::text[], 2) as opened`;
          const batch = opened.batch_id;
          await db.sql.begin(async (c) => {
            const [{ plan }] =
              await c`select ingest.open_chunk(${batch}, 1, ${header}::text[]) as plan`;
            await c.unsafe(
              `insert into ${plan.copy_table} (${plan.copy_columns}) values (2, ${
                row.split(",").map((v) => v === "" ? "null" : `'${v}'`).join(", ")
              })`,
            );
            assertEquals(
              Number((await c`select ingest.check_chunk(${batch}, 1, ${c.json(cfg)}) as n`)[0].n),
              1,
            );
          });
          assertEquals((await scratchTables(db.sql)).length, 2);
          await tx`select ingest.process_chunks(${batch}, 2, 1, '[]', ${tx.json(cfg)})`;
        }),
      Error,
      "chunk 2 of batch",
    );
    const [n] = await db.sql`
      select (select count(*)::int from core.events) as events,
        (select count(*)::int from quality.batch_metrics) as batches`;
    assertEquals(n, { events: 0, batches: 0 });
    // T is gone: its chunk's tables are orphans, and the sweep drops them
    assertEquals((await scratchTables(db.sql)).length, 2);
    assertEquals((await db.sql`select ingest.sweep_scratch() as n`)[0].n, 2);
    assertEquals(await scratchTables(db.sql), []);

    // the ingest role may COPY into a chunk's table but not create its own
    await assertRejects(
      () =>
        db.sql.begin(async (tx) => {
          await tx.unsafe("set local role pipeline_ingest");
          await tx.unsafe("create table ingest_scratch.checked_1_1 (x int)");
        }),
      Error,
      "permission denied",
    );
  } finally {
    await db.drop();
  }
});

Deno.test("a chunked load that ends as a duplicate file leaves no scratch tables", async () => {
  const db = await testDb("chunks_duplicate");
  try {
    const t = new Date(Date.now() - 60_000).toISOString();
    const text = HEADER + "\n" + `0190e000-0000-7000-8000-000000000001,${t},view,,s-1,5,toys,,\n`;
    const src = bytesSource(new TextEncoder().encode(text));
    const first = await loadSource(db.sql, src, "d.csv", cfg, { chunks: 2 });
    assertEquals([first.outcome, first.result!.valid], ["loaded", 1]);
    const again = await loadSource(db.sql, src, "d-again.csv", cfg, { chunks: 2 });
    assertEquals([again.outcome, again.reason], ["duplicate_file", "d.csv"]);
    assertEquals(await scratchTables(db.sql), []);
    assertEquals((await db.sql`select count(*)::int as n from core.events`)[0].n, 1);
  } finally {
    await db.drop();
  }
});
