// The two-phase commit of a batch in slices (db/functions/ingest/slices.sql): prepared slices
// take effect exactly when their batch's transaction commits the decision, whoever commits
// them (the loader, or recovery after a crash); a slice needs its batch's open transaction.
import { assertEquals, assertRejects } from "../testing/assert.ts";
import { loadConfig } from "../common/config.ts";
import { HEADER } from "../testing/fixtures.ts";
import { testDb } from "../testing/testdb.ts";
import type postgres from "postgres";
import type { Sql } from "../common/db.ts";
import { settings } from "./mod.ts";
import { commitPrepared, recoverPrepared, runSlices, runSlicesRollingUp } from "./slices.ts";

const cfg = settings(loadConfig({}));
const header = HEADER.trimEnd().split(",");

/** A batch of 1 chunk holding `rows` (CSV lines without header), staged and checked. */
async function stagedBatch(
  sql: Sql,
  tx: postgres.TransactionSql,
  name: string,
  rows: string[],
): Promise<number> {
  const [{ opened }] = await tx`
    select ingest.open_batch('file', ${name}, 100, ${header}::text[], 1) as opened`;
  const batch = Number(opened.batch_id);
  await sql.begin(async (c) => {
    const [{ plan }] = await c`select ingest.open_chunk(${batch}, 1, ${header}::text[]) as plan`;
    for (const [i, row] of rows.entries()) {
      await c.unsafe(
        `insert into ${plan.copy_table} (${plan.copy_columns}) values (${i + 2}, ${
          row.split(",").map((v) => v === "" ? "null" : `'${v}'`).join(", ")
        })`,
      );
    }
    await c`select ingest.check_chunk(${batch}, 1, ${c.json(cfg)})`;
  });
  return batch;
}

async function counts(sql: Sql) {
  const [n] = await sql`
    select (select count(*)::int from core.events) as events,
      (select count(*)::int from core.event_ids) as ids,
      (select count(*)::int from quality.dead_letter) as dead,
      (select count(*)::int from quality.batch_metrics) as batches,
      (select coalesce(sum(events), 0)::int from analytics.rollup_daily) as rolled_up,
      (select count(*)::int from pg_prepared_xacts where database = current_database())
        as prepared`;
  return n;
}

Deno.test("prepared slices commit with their batch's decision, or roll back without it", async () => {
  const db = await testDb("slices_2pc");
  try {
    const t = new Date(Date.now() - 60_000).toISOString();
    const rows = [1, 2, 3, 4, 5].map((i) =>
      `0190f000-0000-7000-8000-00000000000${i},${t},view,,s-${i},5,toys,,`
    );
    rows.push(`not-a-uuid,${t},view,,s-9,5,toys,,`); // invalid: dead letter
    rows.push(rows[0]); // an exact re-send: a duplicate

    // 1. the batch's transaction ends without deciding: its slices wait, then roll back
    await assertRejects(
      () =>
        db.sql.begin(async (tx) => {
          const batch = await stagedBatch(db.sql, tx, "a.csv", rows);
          const { gids } = await runSlices(db.sql, batch, 1, 2, "a.csv", undefined);
          assertEquals(gids.length, 2);
          const waits = await db.sql`select action from ingest.prepared_decisions()`;
          assertEquals(waits.map((w) => w.action), ["wait", "wait"]);
          assertEquals(await recoverPrepared(db.sql), { committed: 0, rolled_back: 0, waiting: 2 });
          throw new Error("the batch's transaction dies");
        }),
      Error,
      "dies",
    );
    assertEquals(
      (await db.sql`select action from ingest.prepared_decisions()`).map((w) => w.action),
      ["rollback", "rollback"],
    );
    assertEquals(await recoverPrepared(db.sql), { committed: 0, rolled_back: 2, waiting: 0 });
    assertEquals(await counts(db.sql), {
      events: 0,
      ids: 0,
      dead: 0,
      batches: 0,
      rolled_up: 0,
      prepared: 0,
    });

    // 2. the batch commits its decision and dies before committing the slices: recovery
    // commits them, and everything of the batch is there once
    let gids: string[] = [];
    await db.sql.begin(async (tx) => {
      const batch = await stagedBatch(db.sql, tx, "b.csv", rows);
      // as the ingest role: only it (or a superuser) may finish them
      const s = await runSlices(db.sql, batch, 1, 2, "b.csv", "pipeline_ingest");
      gids = s.gids;
      const [{ result }] = await tx`
        select ingest.finish_slices(${batch}, 1, ${rows.length}, '[]', ${tx.json(cfg)}, 1,
          ${tx.json(s.results as never)}) as result`;
      assertEquals(
        [result.rows, result.valid, result.invalid, result.duplicates],
        [7, 5, 1, 1],
      );
      assertEquals(result.reasons, { invalid_event_id: 1 });
    });
    // decided, not yet committed: the events are not visible, the rollups already are
    assertEquals((await counts(db.sql)).events, 0);
    assertEquals(
      (await db.sql`select action from ingest.prepared_decisions()`).map((w) => w.action),
      ["commit", "commit"],
    );
    // one slice committed by the loader, the other by recovery; committing again is no error
    assertEquals(
      (await db.sql`select distinct owner from ingest.prepared_decisions()`).map((r) => r.owner),
      ["pipeline_ingest"],
    );
    await commitPrepared(db.sql, [gids[0]], "pipeline_ingest");
    assertEquals(await recoverPrepared(db.sql), { committed: 1, rolled_back: 0, waiting: 0 });
    await commitPrepared(db.sql, gids);
    assertEquals(await counts(db.sql), {
      events: 5,
      ids: 5,
      dead: 1,
      batches: 1,
      rolled_up: 5,
      prepared: 0,
    });
  } finally {
    await db.drop();
  }
});

Deno.test("a slice needs its batch's open transaction and a valid number", async () => {
  const db = await testDb("slices_refused");
  try {
    await assertRejects(
      () => db.sql`select ingest.process_slice(999999, 1, 0, 2, 'x.csv')`,
      Error,
      "batch 999999 is not open for chunks",
    );
    for (
      const call of ["roll_up_ahead(999999, 1)", "finish_slices(999999, 1, 0, '[]', '{}', 0, '[]')"]
    ) {
      await assertRejects(
        () => db.sql.unsafe(`select ingest.${call}`),
        Error,
        "batch 999999 was not opened in this transaction",
      );
    }
    await assertRejects(
      () =>
        db.sql.begin(async (tx) => {
          const batch = await stagedBatch(db.sql, tx, "c.csv", []);
          await db.sql`select ingest.process_slice(${batch}, 1, 2, 2, 'c.csv')`;
        }),
      Error,
      "slice 2 of 2 is not valid",
    );
  } finally {
    await db.drop();
  }
});

Deno.test("rollups run beside the slices, and after them when another load took an id meanwhile", async () => {
  const db = await testDb("slices_ahead");
  try {
    const t = new Date(Date.now() - 60_000).toISOString();
    const id = (i: number) => `0190f000-0000-7000-8000-0000000001${String(i).padStart(2, "0")}`;
    const rows = [1, 2, 3, 4, 5].map((i) => `${id(i)},${t},view,,s-${i},5,toys,,`);
    rows.push(rows[1]); // a duplicate in the file: predicted
    const finish = async (
      tx: postgres.TransactionSql,
      batch: number,
      sent: number,
      results: unknown,
    ) => {
      const [{ result }] = await tx`
        select ingest.finish_slices(${batch}, 1, ${sent}, '[]', ${tx.json(cfg)}, 1,
          ${tx.json(results as never)}) as result`;
      return result;
    };
    const rolledUp = async () =>
      (await db.sql`select coalesce(sum(events), 0)::int as n from analytics.rollup_daily`)[0].n;

    // 1. predicted: the slices reject the file's second copy, as the rollups assumed
    let gids: string[] = [];
    await db.sql.begin(async (tx) => {
      const batch = await stagedBatch(db.sql, tx, "a.csv", rows);
      const s = await runSlicesRollingUp(tx, db.sql, batch, 1, 2, "a.csv", undefined);
      assertEquals(s.rolledUp, "ahead");
      gids = s.gids;
      const result = await finish(tx, batch, rows.length, s.results);
      assertEquals([result.valid, result.duplicates], [5, 1]);
    });
    await commitPrepared(db.sql, gids);
    assertEquals(await rolledUp(), 5);

    // 2. another load stores one of the batch's ids after the prediction (it held the id
    // uncommitted, so the prediction did not see it; a slice waits for it): the rollups made
    // ahead are rolled back and made again after the slices, without that line
    const rows2 = [6, 7, 8].map((i) => `${id(i)},${t},view,,s-${i},5,toys,,`);
    const other = await db.sql.reserve();
    try {
      await other`begin`;
      await other`
        insert into core.event_ids (event_id, payload_hash, batch_id, line_no)
        values (${id(7)}, 1, 999999, 1)`;
      await db.sql.begin(async (tx) => {
        const batch = await stagedBatch(db.sql, tx, "b.csv", rows2);
        const [{ pid }] = await tx`select pg_backend_pid() as pid`;
        const running = runSlicesRollingUp(tx, db.sql, batch, 1, 2, "b.csv", undefined);
        // once the rollups ahead are done and a slice waits for the id, the other load commits
        for (let i = 0;; i++) {
          const [w] = await db.sql`
            select count(*) filter (where wait_event_type = 'Lock')::int as waiting,
              count(*) filter (where pid = ${pid} and state = 'active')::int as ahead
            from pg_stat_activity where datname = current_database()`;
          if (w.waiting > 0 && w.ahead === 0) break;
          if (i > 200) throw new Error(`no slice waited for the id: ${JSON.stringify(w)}`);
          await new Promise((r) => setTimeout(r, 50));
        }
        await other`commit`;
        const s = await running;
        assertEquals(s.rolledUp, "after");
        gids = s.gids;
        const result = await finish(tx, batch, rows2.length, s.results);
        assertEquals([result.valid, result.duplicates, result.invalid], [2, 0, 1]);
        assertEquals(result.reasons, { conflicting_duplicate: 1 });
      });
    } finally {
      other.release();
    }
    await commitPrepared(db.sql, gids);
    assertEquals(await rolledUp(), 7, "the rollups count each stored event once");
    assertEquals((await counts(db.sql)).events, 7);
  } finally {
    await db.drop();
  }
});
