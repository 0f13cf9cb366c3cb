// Retention with a fake clock: core.apply_retention and the file cutoffs, against the real
// database; the ingester's periodic run.
import { join } from "node:path";
import { assertEquals } from "../testing/assert.ts";
import { loadConfig } from "../common/config.ts";
import { logger } from "../common/log.ts";
import { dirsFor, ensureDirs } from "../common/inbox.ts";
import { testDb } from "../testing/testdb.ts";
import { Ingester } from "../ingest/ingester.ts";
import { maintain } from "./maintain.ts";

const NOW = new Date("2026-11-30T12:00:00Z");
const id = (n: number) => `0190e000-0000-7000-8000-${String(n).padStart(12, "0")}`;

Deno.test("retention at a fake clock: whole old months, old rows and old files go; the rest stays", async () => {
  const db = await testDb("retention");
  const base = await Deno.makeTempDir({ prefix: "retention-" });
  const dirs = dirsFor(join(base, "incoming"));
  await ensureDirs(dirs);
  const sql = db.sql;
  try {
    const times = [
      "2024-01-05T00:00:00Z",
      "2024-01-20T00:00:00Z",
      "2024-09-30T23:59:59Z",
      "2024-10-01T00:00:00Z",
      "2026-11-29T00:00:00Z",
    ];
    await sql`select core.ensure_partitions(${times[0]}::timestamptz, ${times[4]}::timestamptz)`;
    for (const [i, t] of times.entries()) {
      await sql`
        insert into core.events (event_id, event_time, event_type, session_id, quantity, currency,
          is_late, batch_id, line_no, ingested_at)
        values (${id(i)}, ${t}, 'view', 's1', 1, 'USD', false, 1, ${i + 2}, ${t})`;
      await sql`
        insert into core.event_ids (event_id, payload_hash, batch_id, line_no)
        values (${id(i)}, 0, 1, ${i + 2})`;
    }
    for (const t of ["2026-08-01T00:00:00Z", "2026-11-01T00:00:00Z"]) {
      await sql`
        insert into quality.dead_letter (batch_id, source, reasons, created_at)
        values (1, 'f.csv', array['zero_price'], ${t})`;
    }
    for (const [b, t] of [[1, "2025-01-01T00:00:00Z"], [2, "2026-11-01T00:00:00Z"]] as const) {
      await sql`
        insert into quality.batch_metrics (batch_id, source_kind, source_name, rows, valid,
          invalid, duplicates, late, started_at, finished_at)
        values (${b}, 'file', 'f.csv', 0, 0, 0, 0, 0, ${t}, ${t})`;
    }
    for (
      const [sha, status, t] of [
        ["a", "done", "2025-01-01T00:00:00Z"],
        ["b", "loading", "2025-01-01T00:00:00Z"],
        ["c", "done", "2026-11-01T00:00:00Z"],
      ]
    ) {
      await sql`
        insert into ingest.files (sha256, file_name, bytes, status, received_at, finished_at)
        values (${sha.repeat(64)}, ${sha}, 1, ${status}, ${t},
          ${status === "done" ? t : null})`;
    }
    const file = async (dir: string, name: string, mtime: string) => {
      await Deno.writeTextFile(join(dir, name), "x");
      await Deno.utime(join(dir, name), new Date(mtime), new Date(mtime));
    };
    await file(dirs.processed, "old.csv", "2026-10-30T11:00:00Z"); // 31 days: goes
    await file(dirs.processed, "new.csv", "2026-11-01T00:00:00Z"); // 29 days: stays
    await file(dirs.rejected, "old.csv", "2026-08-01T00:00:00Z"); // > 90 days: goes
    await file(dirs.rejected, "new.csv", "2026-09-15T00:00:00Z");
    await file(dirs.inbox, "waiting.csv", "2020-01-01T00:00:00Z"); // the inbox is never touched

    const r = await maintain(sql, dirs, NOW);
    // events: 25 months -> cutoff 2024-10-30T12:00Z: months ending by then go (2024-01..09)
    const dropped = Array.from({ length: 9 }, (_, i) => `events_2024_0${i + 1}`);
    assertEquals(r.partitions_dropped, dropped);
    assertEquals(r.partitions_detached, []);
    assertEquals(r.partitions_created, ["events_2026_12", "events_2027_01", "events_2027_02"]);
    assertEquals(r.rows_deleted, {
      event_ids: 3,
      dead_letter: 1,
      batch_metrics: 1,
      alerts: 0,
      replays: 0,
      ledger: 1,
      seen_day_visitors: 0,
      seen_day_sessions: 0,
    });
    assertEquals(r.files_deleted, { processed: 1, rejected: 1 });
    const left = await sql`
      select (select array_agg(event_time order by event_time)::text from core.events) as events,
             (select count(*)::int from core.event_ids) as ids,
             (select array_agg(created_at)::text from quality.dead_letter) as dead,
             (select array_agg(batch_id)::text from quality.batch_metrics) as metrics,
             (select array_agg(file_name order by file_name)::text from ingest.files) as files,
             (select count(*)::int from core.maintenance_runs) as runs`;
    assertEquals(left[0], {
      events: '{"2024-10-01 00:00:00+00","2026-11-29 00:00:00+00"}',
      ids: 2,
      dead: '{"2026-11-01 00:00:00+00"}',
      metrics: "{2}",
      files: "{b,c}",
      runs: 1,
    });
    const names = (d: string) => [...Deno.readDirSync(d)].map((e) => e.name).sort();
    assertEquals(names(dirs.processed), ["new.csv"]);
    assertEquals(names(dirs.rejected), ["new.csv"]);
    assertEquals(names(dirs.inbox), ["waiting.csv"]);

    // the same clock again changes nothing
    const again = await maintain(sql, dirs, NOW);
    assertEquals(
      [again.partitions_dropped, again.partitions_created, again.rows_deleted.dead_letter],
      [[], [], 0],
    );

    // detach keeps a month as a standalone table (for pg_dump) and out of core.events
    await sql`update core.retention set keep = interval '12 months', action = 'detach'
      where kind = 'events'`;
    const detached = await maintain(sql, dirs, NOW);
    assertEquals(detached.partitions_detached.slice(0, 2), [
      "events_2024_10_detached",
      "events_2024_11_detached",
    ]);
    assertEquals(detached.partitions_detached.at(-1), "events_2025_10_detached");
    const [{ kept, inEvents }] = await sql`
      select (select count(*)::int from core.events_2024_10_detached) as kept,
             (select count(*)::int from core.events) as "inEvents"`;
    assertEquals([kept, inEvents], [1, 1]);

    // keep = null: forever
    await sql`update core.retention set keep = null where kind = 'dead_letter'`;
    const forever = await maintain(sql, dirs, new Date("2030-01-01T00:00:00Z"));
    assertEquals(forever.rows_deleted.dead_letter, undefined);
    const [{ n }] = await sql`select count(*)::int as n from quality.dead_letter`;
    assertEquals(n, 1);
  } finally {
    await db.drop();
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("the ingester runs maintenance every MAINTAIN_INTERVAL_MINUTES of its clock (0: never)", async () => {
  const db = await testDb("retention_ingester");
  const base = await Deno.makeTempDir({ prefix: "retention-ing-" });
  const dirs = dirsFor(join(base, "incoming"));
  await ensureDirs(dirs);
  const log = logger("ingest-test", { level: "error", dir: join(base, "logs"), quiet: true });
  let clock = NOW;
  try {
    const cfg = loadConfig({ DATABASE_URL: db.url, MAINTAIN_INTERVAL_MINUTES: "60" });
    const ing = new Ingester({ dirs, sql: db.sql, cfg, log, clock: () => clock });
    const ran: (string | undefined)[] = [];
    for (const minutes of [0, 30, 59, 61, 100, 122]) {
      clock = new Date(NOW.getTime() + minutes * 60_000);
      ran.push((await ing.maintainIfDue())?.clock);
    }
    assertEquals(ran.map((c) => c === undefined ? null : new Date(c).toISOString()), [
      "2026-11-30T12:00:00.000Z",
      null,
      null,
      "2026-11-30T13:01:00.000Z",
      null,
      "2026-11-30T14:02:00.000Z",
    ]);
    const never = new Ingester({
      dirs,
      sql: db.sql,
      cfg: loadConfig({ DATABASE_URL: db.url, MAINTAIN_INTERVAL_MINUTES: "0" }),
      log,
      clock: () => clock,
    });
    assertEquals(await never.maintainIfDue(), undefined);
    const [{ runs }] = await db.sql`select count(*)::int as runs from core.maintenance_runs`;
    assertEquals(runs, 3);
  } finally {
    await db.drop();
    await Deno.remove(base, { recursive: true });
  }
});
