// The session's staging tables (db/functions/ingest/stage.sql, ingest.session_staging): a
// batch of one session creates no table once the session has them; they are empty after every
// commit and at the start of every batch (two batches in one transaction, a rolled back
// batch); a header of another shape makes them again; a file in chunks in the same session
// replaces them with its views and the next batch makes them again; every count stays exact.
import { assert, assertEquals } from "../scripts/lib/testing/assert.ts";
import { loadConfig } from "../scripts/lib/common/config.ts";
import { connect } from "../scripts/lib/common/db.ts";
import {
  bytesSource,
  CsvScanner,
  loadSource,
  settings,
  stageBatch,
} from "../scripts/lib/batch/mod.ts";
import { testDb } from "../scripts/lib/testing/testdb.ts";
import { purchaseFields } from "../scripts/lib/testing/fixtures.ts";
import type postgres from "postgres";

const cfg = loadConfig({});
const HEADER =
  "event_id,event_time,event_type,user_id,session_id,product_id,category,price,quantity";
const at = new Date(Date.now() - 60_000).toISOString();
const id = (n: number) => `0190d000-0000-7000-8000-${String(n).padStart(12, "0")}`;
const row = (n: number, over: Record<string, string> = {}) =>
  Object.values(purchaseFields(id(n), at, over)).join(",");

/** One batch through stageBatch in `tx`, as an HTTP request is loaded. */
async function batch(
  tx: postgres.TransactionSql,
  name: string,
  header: string,
  rows: string[],
  analytics: "inline" | "deferred" = "inline",
) {
  const body = new TextEncoder().encode([header, ...rows].join("\n") + "\n");
  const scanner = new CsvScanner();
  const head = scanner.push(body);
  const tail = scanner.end();
  const staged = await stageBatch(tx, {
    kind: "http",
    name,
    bytes: body.length,
    header: scanner.header!,
    records: (async function* () {
      yield head;
      yield tail;
    })(),
    counted: () => ({ rows: scanner.rows, malformed: scanner.malformed }),
    settings: settings(cfg),
    analytics,
  });
  const r = staged.result!;
  return {
    batch_id: r.batch_id,
    counts: [r.rows, r.valid, r.duplicates, r.invalid],
    reasons: r.reasons,
  };
}

Deno.test("a session's staging tables are made once, empty after every batch, remade when needed", async () => {
  const db = await testDb("session_staging");
  // one connection: every batch below runs in the same session, as the ingest role
  const sql = connect({ url: db.url, role: cfg.INGEST_ROLE, max: 1 });
  const owner = connect({ url: db.url, max: 1 });
  /** the oids of the session's staging tables and the rows each holds, read in the session */
  const tables = async (tx: postgres.TransactionSql | postgres.Sql) => {
    const [t] = await tx`select public.ingest_test_staging() as t`;
    return t.t;
  };
  try {
    // a reader of the session's own temp tables, as their owner (the ingest role may only
    // insert into pg_temp.stage)
    await owner.unsafe(`
      create function public.ingest_test_staging() returns jsonb language plpgsql
      security definer set search_path = pg_catalog, pg_temp as $$
      declare v jsonb := '{}';
      begin
        v := jsonb_build_object(
          'oids', ingest.session_staging_oids(),
          'view', to_regclass('pg_temp.batch_events')::oid,
          'intact', ingest.session_staging_intact());
        if to_regclass('pg_temp.stage') is not null then
          v := v || jsonb_build_object('stage', (select count(*) from pg_temp.stage));
        end if;
        if to_regclass('pg_temp.checked') is not null then
          v := v || jsonb_build_object('checked', (select count(*) from pg_temp.checked));
        end if;
        if to_regclass('pg_temp.rejected') is not null then
          v := v || jsonb_build_object('rejected', (select count(*) from pg_temp.rejected));
        end if;
        return v;
      end $$;
      alter function public.ingest_test_staging() owner to pipeline_owner;
      grant execute on function public.ingest_test_staging() to pipeline_ingest;`);

    // batch 1: the session makes its tables
    const b1 = await sql.begin((tx) =>
      batch(tx, "http:1", HEADER, [row(1), row(2), row(2), row(3, { price: "-1" })])
    );
    assertEquals(b1.counts, [4, 2, 1, 1]);
    const after1 = await tables(sql);
    assertEquals(after1.intact, true);
    assertEquals([after1.stage, after1.checked, after1.rejected], [0, 0, 0], "empty at commit");

    // batch 2, same header: the same tables (no DDL), exact counts, its own batch id on its
    // events (the view reads it from the transaction)
    const b2 = await sql.begin((tx) =>
      batch(tx, "http:2", HEADER, [row(1), row(1, { price: "99.00" }), row(4), row(5)])
    );
    assertEquals(b2.counts, [4, 2, 1, 1]);
    assertEquals(b2.reasons, { conflicting_duplicate: 1 });
    const after2 = await tables(sql);
    assertEquals(after2.oids, after1.oids, "no table made again for the same header");
    assertEquals([after2.stage, after2.checked, after2.rejected], [0, 0, 0]);
    const byBatch = await owner`
      select batch_id, array_agg(line_no order by line_no) as lines
      from core.events group by batch_id order by batch_id`;
    assertEquals(byBatch.map((r) => [r.batch_id, r.lines]), [
      [b1.batch_id, [2, 3]],
      [b2.batch_id, [4, 5]],
    ]);

    // a deferred batch, then a deferred analytics round in this session (it puts its own
    // batch_events in place and drops it): the tables stay, the view is made again
    const b2d = await sql.begin((tx) =>
      batch(tx, "http:2d", HEADER, [row(13), row(14)], "deferred")
    );
    assertEquals(b2d.counts, [2, 2, 0, 0]);
    // a round in a session that never loaded a batch (no staging tables) takes the old path
    const lone = connect({ url: db.url, role: cfg.INGEST_ROLE, max: 1 });
    try {
      const [{ round: r0 }] = await lone`select analytics.apply_deferred() as round`;
      assertEquals([r0.batches, r0.events], [1, 2]);
    } finally {
      await lone.end();
    }
    const b2dd = await sql.begin((tx) => batch(tx, "http:2dd", HEADER, [row(17)], "deferred"));
    assertEquals(b2dd.counts, [1, 1, 0, 0]);
    const view = (await tables(sql)).view;
    const [{ round }] = await sql`select analytics.apply_deferred() as round`;
    assertEquals([round.batches, round.events], [1, 1]);
    assertEquals((await tables(sql)).view, view, "the round read the session's view");
    // a round in the transaction of a batch (pg_temp.checked holds it) puts a view of its own
    const [b2r, inTx] = await sql.begin(async (tx) => [
      await batch(tx, "http:2r", HEADER, [row(16)], "deferred"),
      (await tx`select analytics.apply_deferred() as round`)[0].round,
    ]);
    assertEquals([b2r.counts, inTx.batches, inTx.events], [[1, 1, 0, 0], 1, 1]);
    const b2e = await sql.begin((tx) => batch(tx, "http:2e", HEADER, [row(15), row(13)]));
    assertEquals(b2e.counts, [2, 1, 1, 0]);
    const [{ daily }] = await owner`select sum(events)::int as daily from analytics.rollup_daily`;
    assertEquals(daily, 2 + 2 + 2 + 1 + 1 + 1, "every accepted event in the rollups once");
    assertEquals((await tables(sql)).oids, after1.oids, "the tables outlived the round");

    // two batches in one transaction: the second starts from empty tables
    const [b3, b4] = await sql.begin(async (tx) => [
      await batch(tx, "http:3", HEADER, [row(6), row(7, { quantity: "x" })]),
      await batch(tx, "http:4", HEADER, [row(8)]),
    ]);
    assertEquals([b3.counts, b4.counts], [[2, 1, 0, 1], [1, 1, 0, 0]]);
    const [{ n4 }] = await owner`
      select count(*)::int as n4 from core.events where batch_id = ${b4.batch_id}`;
    assertEquals(n4, 1);

    // a batch rolled back after its check leaves the tables as they were, empty
    await sql.begin(async (tx) => {
      await batch(tx, "http:5", HEADER, [row(9), row(10)]);
      throw new Error("rollback");
    }).catch((e) => assertEquals(e.message, "rollback"));
    const after5 = await tables(sql);
    assertEquals(after5.oids, after1.oids);
    assertEquals([after5.stage, after5.checked, after5.rejected], [0, 0, 0]);
    const b6 = await sql.begin((tx) => batch(tx, "http:6", HEADER, [row(9), row(10)]));
    assertEquals(b6.counts, [2, 2, 0, 0], "the rolled back rows were never stored");

    // another header shape (an unknown column, kept in extra): the tables are made again
    const b7 = await sql.begin((tx) =>
      batch(tx, "http:7", HEADER + ",coupon", [row(11) + ",SAVE10"])
    );
    assertEquals(b7.counts, [1, 1, 0, 0]);
    const after7 = await tables(sql);
    assert(after7.oids !== after1.oids, "made again for another header");
    assertEquals(after7.intact, true);
    const [{ extra }] = await owner`select extra from core.events where event_id = ${id(11)}`;
    assertEquals(extra, { coupon: "SAVE10" });

    // a file in two chunks: its sessions (all three of a pool of three) put views in place
    // of the staging tables; then a batch in each of those sessions makes them again
    const pool = connect({ url: db.url, role: cfg.INGEST_ROLE, max: 3 });
    try {
      const reserve = () => Promise.all([pool.reserve(), pool.reserve(), pool.reserve()]);
      let sessions = await reserve();
      for (const [i, s] of sessions.entries()) {
        await s`begin`;
        const b = await batch(s as unknown as postgres.TransactionSql, `http:p${i}`, HEADER, [
          row(20 + i),
        ]);
        await s`commit`;
        assertEquals(b.counts, [1, 1, 0, 0]);
      }
      sessions.forEach((s) => s.release());
      const file = [HEADER, ...Array.from({ length: 40 }, (_, i) => row(100 + i))].join("\n") +
        "\n";
      const loaded = await loadSource(
        pool,
        bytesSource(new TextEncoder().encode(file)),
        "chunks.csv",
        settings(cfg),
        { chunks: 2 },
      );
      assertEquals([loaded.result!.rows, loaded.result!.valid], [40, 40]);
      assertEquals(loaded.chunks?.length, 2, "loaded in chunks");
      sessions = await reserve();
      for (const [i, s] of sessions.entries()) {
        assertEquals((await tables(s)).intact, false, "the chunk path replaced them");
        await s`begin`;
        const b = await batch(s as unknown as postgres.TransactionSql, `http:q${i}`, HEADER, [
          row(30 + i),
          row(100 + i),
        ]);
        await s`commit`;
        assertEquals(b.counts, [2, 1, 1, 0]);
        const t = await tables(s);
        assertEquals([t.intact, t.stage, t.checked, t.rejected], [true, 0, 0, 0]);
      }
      sessions.forEach((s) => s.release());
    } finally {
      await pool.end();
    }

    const [totals] = await owner`
      select (select count(*)::int from core.events) as events,
             (select count(distinct event_id)::int from core.events) as ids,
             (select count(*)::int from quality.dead_letter) as dead`;
    // events 1..17 less 3 and 7 (invalid) and 12 (not sent) = 14, 20..22 and 30..32, and the
    // file's 40
    assertEquals(totals, { events: 60, ids: 60, dead: 3 });
    assert(after1.oids.split(" ").filter(Boolean).length === 3, after1.oids);
  } finally {
    await sql.end();
    await owner.end();
    await db.drop();
  }
});

Deno.test("temp objects a session made under the staging names are refused, never used", async () => {
  const db = await testDb("session_staging_decoys");
  const sql = connect({ url: db.url, role: cfg.INGEST_ROLE, max: 1 });
  const fresh = connect({ url: db.url, role: cfg.INGEST_ROLE, max: 1 });
  const refused = (e: Error) =>
    assert(/was not made by the pipeline|must be owner/.test(e.message), e.message);
  try {
    // a session with its staging tables, whose batch_events view a deferred round inside a
    // batch's transaction dropped: the session puts a view of its own, with a forged event
    const b1 = await sql.begin((tx) => batch(tx, "http:d1", HEADER, [row(1)], "deferred"));
    assertEquals(b1.counts, [1, 1, 0, 0]);
    await sql.begin(async (tx) => {
      await batch(tx, "http:d2", HEADER, [row(2)], "deferred");
      await tx`select analytics.apply_deferred()`;
      await tx.unsafe(`create temp view batch_events as select * from (values (
        '0190d000-0000-7000-8000-00000000beef'::uuid, now(), 'purchase', 1::bigint, 'forged',
        1::bigint, 'books', 1::numeric, 1, 1::numeric, 'USD', null::text, null::text,
        null::text, null::text, null::bytea, false, 1::bigint, 1::bigint, now(),
        null::jsonb)) as v`);
    });
    const e1 = await sql.begin((tx) => batch(tx, "http:d3", HEADER, [row(3)])).catch((e) =>
      e as Error
    );
    assert(e1 instanceof Error, "the batch refused the session's view");
    refused(e1);

    // a new session that made its own claimed_events before its first batch
    await fresh.unsafe(`create temp table claimed_events (like ingest.deferred_events)`).catch(
      () => fresh.unsafe(`create temp table claimed_events (batch_id bigint)`),
    );
    const e2 = await fresh.begin((tx) => batch(tx, "http:d4", HEADER, [row(4)])).catch((e) =>
      e as Error
    );
    assert(e2 instanceof Error, "the batch refused the session's table");
    refused(e2);

    const ids = await db.sql`select session_id from core.events order by line_no, session_id`;
    assertEquals(ids.map((r) => r.session_id), ["s-1", "s-1"], "rows 1 and 2 only, nothing forged");
  } finally {
    await sql.end();
    await fresh.end();
    await db.drop();
  }
});
