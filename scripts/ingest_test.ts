import { join } from "node:path";
import { assert, assertEquals } from "./lib/testing/assert.ts";
import { loadConfig } from "./lib/common/config.ts";
import { connect } from "./lib/common/db.ts";
import { eventsCsv, HEADER } from "./lib/testing/fixtures.ts";
import { dirsFor, ensureDirs } from "./lib/common/inbox.ts";
import { logger } from "./lib/common/log.ts";
import { testDb } from "./lib/testing/testdb.ts";
import { startCluster } from "./lib/testing/testpg.ts";
import { Ingester } from "./lib/ingest/ingester.ts";
import { generate } from "./lib/generator/generate.ts";

const quietLog = (dir: string) => logger("ingest-test", { level: "error", dir, quiet: true });

async function setup(url: string) {
  const base = await Deno.makeTempDir({ prefix: "inbox-" });
  const dirs = dirsFor(join(base, "incoming"));
  await ensureDirs(dirs);
  const cfg = loadConfig({ DATABASE_URL: url, BREAKER_THRESHOLD: "3", DB_RETRY_MAX_SECONDS: "1" });
  return { base, dirs, cfg, log: quietLog(join(base, "logs")) };
}

const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

Deno.test("ingest drains the inbox once: processed, rejected, .tmp/dotfiles untouched, symlink refused", async () => {
  const db = await testDb("ingest_drain");
  const { base, dirs, cfg, log } = await setup(db.url);
  try {
    const a = eventsCsv(3);
    await Deno.writeTextFile(join(dirs.inbox, "a.csv"), a);
    await Deno.writeTextFile(join(dirs.inbox, "a copy.csv"), a); // same content, other name
    await Deno.writeTextFile(
      join(dirs.inbox, "noheader.csv"),
      eventsCsv(2).split("\n").slice(1).join("\n"),
    );
    await Deno.writeTextFile(join(dirs.inbox, "b.csv.tmp"), eventsCsv(2));
    await Deno.writeTextFile(join(dirs.inbox, ".c.csv"), eventsCsv(2));
    await Deno.writeTextFile(join(base, "outside.csv"), eventsCsv(2));
    await Deno.symlink(join(base, "outside.csv"), join(dirs.inbox, "link.csv"));

    const ing = new Ingester({ dirs, sql: db.sql, cfg, log });
    const s = await ing.drain();
    assertEquals([s.handled, s.failed], [3, 0]);
    assertEquals(names(dirs.inbox), [".c.csv", "b.csv.tmp"]);
    assertEquals(names(dirs.processed), ["a copy.csv", "a.csv"]);
    assertEquals(names(dirs.rejected), ["link.csv", "noheader.csv"]);
    const [c] = await db.sql`
      select (select count(*)::int from core.events) as events,
             (select count(*)::int from ingest.files) as files,
             (select count(*)::int from ingest.files where status = 'rejected') as rejected`;
    assertEquals(c, { events: 3, files: 2, rejected: 1 });
    // the symlink's target was never read and is still where it was
    assertEquals((await Deno.readTextFile(join(base, "outside.csv"))).startsWith(HEADER), true);

    // the same files dropped again change nothing
    await Deno.writeTextFile(join(dirs.inbox, "again.csv"), a);
    await ing.drain();
    const [{ n }] = await db.sql`select count(*)::int as n from core.events`;
    assertEquals(n, 3);
  } finally {
    await Deno.remove(base, { recursive: true });
    await db.drop();
  }
});

Deno.test("two concurrent ingesters load each file exactly once", async () => {
  const db = await testDb("ingest_concurrent");
  const { base, dirs, cfg, log } = await setup(db.url);
  const sqlA = connect({ url: db.url, max: 2 });
  const sqlB = connect({ url: db.url, max: 2 });
  try {
    const overlap = eventsCsv(50, { tag: 99 }); // dropped twice, under two names
    for (let i = 0; i < 12; i++) {
      await Deno.writeTextFile(
        join(dirs.inbox, `f${String(i).padStart(2, "0")}.csv`),
        eventsCsv(200, { tag: i }),
      );
    }
    await Deno.writeTextFile(join(dirs.inbox, "dup-1.csv"), overlap);
    await Deno.writeTextFile(join(dirs.inbox, "dup-2.csv"), overlap);
    const a = new Ingester({ dirs, sql: sqlA, cfg, log });
    const b = new Ingester({ dirs, sql: sqlB, cfg, log });
    // two passes each, as watch mode would, so files one skipped as busy get picked up
    await Promise.all([a.drain().then(() => a.drain()), b.drain().then(() => b.drain())]);
    assertEquals(names(dirs.inbox), []);
    assertEquals(names(dirs.processed).length, 14);
    const [c] = await db.sql`
      select (select count(*)::int from core.events) as events,
             (select count(distinct event_id)::int from core.events) as ids,
             (select count(*)::int from ingest.files) as files,
             (select count(*)::int from quality.batch_metrics) as batches`;
    assertEquals(c, { events: 12 * 200 + 50, ids: 12 * 200 + 50, files: 13, batches: 13 });
  } finally {
    await sqlA.end();
    await sqlB.end();
    await Deno.remove(base, { recursive: true });
    await db.drop();
  }
});

Deno.test("a backlog loaded by 4 workers equals its manifest, file by file", async () => {
  const db = await testDb("ingest_workers");
  const { base, dirs, cfg, log } = await setup(db.url);
  try {
    // no duplicates across files: then each file's counts do not depend on commit order
    const m = await generate({
      files: 8,
      events: 2000,
      seed: 16,
      startTime: new Date(Date.now() - 8 * 300_000 - 60_000),
      intervalSeconds: 300,
      anomalyRate: 0.05,
      duplicateRate: 0,
      outDir: dirs.inbox,
    });
    const sql = connect({ url: db.url, max: 5 });
    try {
      const ing = new Ingester({ dirs, sql, cfg, log, workers: 4 });
      const s = await ing.drain();
      assertEquals([s.handled, s.failed, s.rows], [8, 0, 8 * 2000]);
      // the four worked at the same time: batches overlapped in time
      const [o] = await db.sql`
        select count(*)::int as n from quality.batch_metrics as a
        join quality.batch_metrics as b on a.batch_id < b.batch_id
          and a.started_at < b.finished_at and b.started_at < a.finished_at`;
      assert(o.n > 0, "no two batches overlapped");
    } finally {
      await sql.end();
    }
    const metrics = await db.sql`
      select source_name, rows::int, valid::int, duplicates::int, invalid::int, reason_counts
      from quality.batch_metrics order by source_name`;
    assertEquals(
      metrics.map((
        r,
      ) => [r.source_name, r.rows, r.valid, r.duplicates, r.invalid, r.reason_counts]),
      m.files.map((f) => [f.name, f.rows, f.valid, f.duplicates, f.invalid, f.reasons]),
    );
    assertEquals(names(dirs.processed), m.files.map((f) => f.name).sort());
    const [c] = await db.sql`
      select (select count(*)::int from core.events) as events,
             (select count(*)::int from core.event_ids) as ids,
             (select count(*)::int from ingest.files where status = 'done') as files`;
    const valid = m.files.reduce((a, f) => a + f.valid, 0);
    assertEquals(c, { events: valid, ids: valid, files: 8 });
  } finally {
    await Deno.remove(base, { recursive: true });
    await db.drop();
  }
});

Deno.test("4 workers on files sharing event ids: each id stored once, every row in one place", async () => {
  const db = await testDb("ingest_workers_shared");
  const { base, dirs, cfg, log } = await setup(db.url);
  try {
    const m = await generate({
      files: 6,
      events: 2000,
      seed: 17,
      startTime: new Date(Date.now() - 6 * 300_000 - 60_000),
      intervalSeconds: 300,
      anomalyRate: 0.02,
      duplicateRate: 0.1,
      outDir: dirs.inbox,
    });
    // and the same content twice under two names, loaded at the same time
    const first = m.files[0].name;
    await Deno.copyFile(join(dirs.inbox, first), join(dirs.inbox, `copy-${first}`));
    const sql = connect({ url: db.url, max: 5 });
    try {
      const s = await new Ingester({ dirs, sql, cfg, log, workers: 4 }).drain();
      assertEquals([s.handled, s.failed], [7, 0]);
    } finally {
      await sql.end();
    }
    const [c] = await db.sql`
      select (select count(*)::int from core.events) as events,
             (select count(distinct event_id)::int from core.events) as distinct_ids,
             (select count(*)::int from core.event_ids) as ids,
             (select sum(valid)::int from quality.batch_metrics) as valid,
             (select sum(rows - valid - duplicates - invalid)::int from quality.batch_metrics)
               as unplaced,
             (select sum(rows)::int from quality.batch_metrics) as rows,
             (select sum(invalid)::int from quality.batch_metrics) as invalid,
             (select count(*)::int from quality.dead_letter) as dead,
             (select count(*)::int from ingest.files) as files`;
    assertEquals(c, {
      events: c.valid,
      distinct_ids: c.valid,
      ids: c.valid,
      valid: c.valid,
      unplaced: 0,
      rows: 6 * 2000,
      invalid: c.dead,
      dead: c.dead,
      files: 6,
    });
    // exact re-sends and conflicts together: as many as the manifest says, whatever the order
    const expected = m.files.reduce((a, f) => a + f.duplicates + f.invalid, 0);
    const [d] = await db.sql`
      select sum(duplicates + invalid)::int as n from quality.batch_metrics`;
    assertEquals(d.n, expected);
    assert(names(dirs.processed).includes(`copy-${first}`));
  } finally {
    await Deno.remove(base, { recursive: true });
    await db.drop();
  }
});

Deno.test("ingest survives PostgreSQL stopped mid-run: every file ends loaded once", async () => {
  const cluster = await startCluster("outage");
  const { base, dirs, cfg, log } = await setup(cluster.url);
  const sql = connect({ url: cluster.url, max: 2, connectTimeout: 2 });
  const stop = new AbortController();
  try {
    const ing = new Ingester({ dirs, sql, cfg, log, signal: stop.signal });
    const watching = ing.watch();
    for (let i = 0; i < 4; i++) {
      await Deno.writeTextFile(join(dirs.inbox, `before-${i}.csv`), eventsCsv(500, { tag: i }));
    }
    await waitFor(() => Promise.resolve(names(dirs.processed).length === 4));
    await cluster.stop("immediate");
    for (let i = 0; i < 4; i++) {
      await Deno.writeTextFile(
        join(dirs.inbox, `during-${i}.csv`),
        eventsCsv(500, { tag: 10 + i }),
      );
    }
    await new Promise((r) => setTimeout(r, 3000));
    // nothing is lost while the database is down: the files wait in the inbox
    assertEquals(names(dirs.inbox).length, 4);
    assertEquals(ing.breaker.state, "open");
    await cluster.start();
    await waitFor(() => Promise.resolve(names(dirs.processed).length === 8), 30_000);
    stop.abort();
    await watching;
    const [c] = await sql`
      select (select count(*)::int from core.events) as events,
             (select count(distinct event_id)::int from core.events) as ids,
             (select count(*)::int from ingest.files where status = 'done') as files`;
    assertEquals(c, { events: 4000, ids: 4000, files: 8 });
  } finally {
    stop.abort();
    await sql.end({ timeout: 1 });
    await Deno.remove(base, { recursive: true });
    await cluster.destroy();
  }
});

async function waitFor(check: () => Promise<boolean>, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert(false, `condition not met within ${ms} ms`);
}
