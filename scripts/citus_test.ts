// Distributed mode (docs/citus.md): the same seeded workload on a single node and on a Citus
// cluster (coordinator + 2 workers) gives identical per-batch counts, core.events, dead letter,
// analytics views and report. Needs a Citus build (cached, or CITUS_TARBALL): CI builds one and
// these tests fail there without it; elsewhere they are skipped, saying why.
import { join } from "node:path";
import { assert, assertEquals } from "./lib/testing/assert.ts";
import { loadConfig } from "./lib/common/config.ts";
import { connect, type Sql } from "./lib/common/db.ts";
import { testDb } from "./lib/testing/testdb.ts";
import { FACTS, facts } from "./lib/testing/facts.ts";
import { type CitusCluster, citusTestsEnabled, startCitus } from "./lib/testing/citus.ts";
import { generate } from "./lib/generator/generate.ts";
import { bytesSource, loadFile, loadSource, settings } from "./lib/batch/mod.ts";
import { applyDeferred } from "./lib/analytics/deferred.ts";
import { rebuildRollups } from "./lib/analytics/analytics.ts";
import { fetchReport } from "./lib/analytics/report.ts";

const enabled = await citusTestsEnabled();

/** Both databases, driven step by step with the same input, so now() moves the same. */
interface Pair {
  single: Sql;
  citus: Sql;
}

async function both<T>(p: Pair, fn: (sql: Sql) => Promise<T>): Promise<[T, T]> {
  return [await fn(p.single), await fn(p.citus)];
}

async function report(sql: Sql) {
  const r = await fetchReport(sql, { limit: 1000 });
  // pipeline_health is about the clock and the processes (latency, lag): not a stored fact
  return r.sections.filter((s) => s.key !== "pipeline_health").map((s) => [s.key, s.rows]);
}

async function assertSame(p: Pair, label: string) {
  const [a, b] = await both(p, facts);
  for (const name of Object.keys(FACTS)) {
    assertEquals(b[name], a[name], `${label}: ${name} differs between Citus and the single node`);
  }
  const [ra, rb] = await both(p, report);
  assertEquals(rb, ra, `${label}: the report differs`);
  return a;
}

Deno.test({
  name: "Citus and a single node store and report exactly the same for the same workload",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const single = await testDb("citus_equivalence");
    let cluster: CitusCluster | undefined;
    let citus: Sql | undefined;
    const base = await Deno.makeTempDir({ prefix: "citus-eq-" });
    try {
      cluster = await startCitus("equivalence");
      citus = connect({ url: cluster.url, max: 4 });
      const p: Pair = { single: single.sql, citus };

      // the distribution step ran: events and ids distributed by event_id, co-located
      const dist = await citus`
        select logicalrelid::text as t, partmethod, colocationid from pg_dist_partition
        where logicalrelid in ('core.events'::regclass, 'core.event_ids'::regclass)
        order by 1`;
      assertEquals(dist.map((d) => [d.t, d.partmethod]), [
        ["core.event_ids", "h"],
        ["core.events", "h"],
      ]);
      assertEquals(dist[0].colocationid, dist[1].colocationid);

      // events end 5-9 minutes ago; late ones are 15 min - 6 h earlier: none sits near the
      // LATE_AFTER_SECONDS=600 boundary while both databases load the same file
      const cfg = settings(loadConfig({ MAX_PRICE: "5000" }));
      const v2 = await generate({
        files: 4,
        events: 1500,
        intervalSeconds: 60,
        seed: 17,
        startTime: new Date(Date.now() - 9 * 60_000),
        anomalyRate: 0.06,
        duplicateRate: 0.05,
        lateRate: 0.03,
        outDir: join(base, "files"),
      });
      const v1 = await generate({
        files: 1,
        events: 600,
        intervalSeconds: 60,
        seed: 18,
        schemaVersion: 1,
        startTime: new Date(Date.now() - 7 * 60_000),
        anomalyRate: 0.05,
        outDir: join(base, "files"),
      });
      const http = await generate({
        files: 3,
        events: 400,
        intervalSeconds: 60,
        seed: 19,
        startTime: new Date(Date.now() - 8 * 60_000),
        anomalyRate: 0.05,
        duplicateRate: 0.05,
        outDir: join(base, "http"),
      });

      const files = [...v2.files, ...v1.files].map((f) => join(base, "files", f.name));
      for (const path of files) {
        // the cluster loads each file in 2 chunks (db/functions/ingest/chunks.sql), the single
        // node in one session: the same facts either way
        const [a, b] = await both(
          p,
          (sql) => loadFile(sql, path, cfg, { chunks: sql === p.citus ? 2 : 1 }),
        );
        assertEquals(b.outcome, "loaded", path);
        assertEquals(b.chunks?.length, 2);
        // on the cluster the chunks were checked on the workers (ingest.check_shard per shard)
        assertEquals([a.chunksCheckedOn, b.chunksCheckedOn], [undefined, "workers"]);
        assertEquals(b.result, a.result && { ...a.result, process_ms: b.result!.process_ms });
      }
      // the same file again: a duplicate file on both
      const [da, db] = await both(p, (sql) => loadFile(sql, files[0], cfg));
      assertEquals([da.outcome, db.outcome], ["duplicate_file", "duplicate_file"]);

      // HTTP batches with deferred analytics, one re-sending rows of the first file
      const bodies = http.files.map((f) => Deno.readFileSync(join(base, "http", f.name)));
      const first = Deno.readTextFileSync(files[0]).split("\n");
      bodies.push(new TextEncoder().encode(first.slice(0, 80).join("\n") + "\n"));
      for (const [i, body] of bodies.entries()) {
        const [a, b] = await both(
          p,
          (sql) =>
            loadSource(sql, bytesSource(body), `http-${i}`, cfg, {
              kind: "http",
              analytics: "deferred",
            }),
        );
        assertEquals(b.result, a.result && { ...a.result, process_ms: b.result!.process_ms });
      }
      const [qa, qb] = await both(p, applyDeferred);
      assertEquals([qb.batches, qb.events], [qa.batches, qa.events]);
      assert(qa.events > 0, "the HTTP batches queued events");
      const loaded = await assertSame(p, "after files and HTTP batches");
      assert(
        (loaded.events as unknown[]).length > 6000,
        `events were stored: ${(loaded.events as unknown[]).length}`,
      );
      assert((loaded.dead_letter as unknown[]).length > 300, "rows were dead-lettered");
      const dupes = (loaded.batch_metrics as { duplicates: number }[])
        .reduce((s, m) => s + m.duplicates, 0);
      assert(dupes > 100, `duplicates within and across files and sources: ${dupes}`);
      const late = (loaded.batch_metrics as { late: number }[]).reduce((s, m) => s + m.late, 0);
      assert(late > 50, `late events: ${late}`);

      // replay after raising the price ceiling: extreme prices move, the rest stays
      const replayCfg = { ...cfg, max_price: 1_000_000 };
      const [ra, rb] = await both(p, async (sql) => {
        const [{ result }] = await sql`
          select quality.replay(null, null, ${sql.json(replayCfg)}::jsonb) as result`;
        return result;
      });
      assertEquals(rb, ra);
      assert(ra.moved > 0, "the replay moved rows");
      await assertSame(p, "after the replay");

      // refresh: rebuilding the rollups from core.events changes no view
      await both(p, rebuildRollups);
      await assertSame(p, "after a refresh");

      // every batch's commit dropped its chunks' distributed scratch tables and their shards
      const [left] = await citus`
        select (select count(*)::int from pg_class
                where relnamespace = 'ingest_scratch'::regnamespace) as tables,
               (select count(*)::int from pg_dist_partition
                where logicalrelid::text like 'ingest_scratch.%') as distributed`;
      assertEquals(left, { tables: 0, distributed: 0 });
    } finally {
      await citus?.end({ timeout: 5 });
      await cluster?.destroy();
      await single.drop();
      await Deno.remove(base, { recursive: true });
    }
  },
});

const ingestScript = new URL("./ingest.ts", import.meta.url).pathname;

function ingester(url: string, dir: string, env: Record<string, string> = {}) {
  return new Deno.Command(Deno.execPath(), {
    // every file in 2 chunks, checked on the workers, as the ingest role
    args: [
      "run",
      "--allow-all",
      ingestScript,
      "--once",
      "--dir",
      dir,
      "--give-up-after",
      "60",
      "--chunks",
      "2",
    ],
    env: {
      DATABASE_URL: url,
      PARALLEL_FILE_MIN_MB: "0",
      LOG_DIR: join(dir, "..", "logs"),
      LOG_LEVEL: Deno.env.get("CITUS_DEBUG") ? "info" : "error",
      DB_RETRY_MAX_SECONDS: "1",
      ...env,
    },
    stdout: "null",
    stderr: "piped",
  });
}

/** Spawns an ingester; `paused` resolves when it reports its pause point (stderr is drained). */
function spawnIngester(url: string, dir: string, env: Record<string, string> = {}) {
  const child = ingester(url, dir, env).spawn();
  let resolve!: () => void;
  const paused = new Promise<void>((r) => resolve = r);
  const pauses = { count: 0 };
  (async () => {
    const dec = new TextDecoder();
    for await (const chunk of child.stderr) {
      const text = dec.decode(chunk);
      if (Deno.env.get("CITUS_DEBUG")) console.log(`[ingester ${child.pid}] ${text.trimEnd()}`);
      const n = text.split("pause point").length - 1;
      if (n > 0) {
        pauses.count += n;
        resolve();
      }
    }
  })();
  return { child, paused, pauses };
}

Deno.test({
  name: "Citus: kill -9 of the ingester and a worker stopped mid-batch lose and duplicate nothing",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const base = await Deno.makeTempDir({ prefix: "citus-faults-" });
    const cluster = await startCitus("faults");
    const sql = connect({ url: cluster.url, max: 2 });
    try {
      const inbox = join(base, "incoming");
      const manifest = await generate({
        files: 3,
        events: 4000,
        intervalSeconds: 60,
        seed: 23,
        startTime: new Date(Date.now() - 6 * 60_000),
        anomalyRate: 0.05,
        duplicateRate: 0.05,
        outDir: inbox,
      });
      const stored = async () => {
        const [c] = await sql`
          select (select count(*)::int from core.events) as events,
                 (select count(*)::int from core.event_ids) as ids,
                 (select count(distinct event_id)::int from core.events) as distinct_ids,
                 (select count(*)::int from quality.batch_metrics) as batches`;
        return c;
      };

      // 1. kill -9 while the first file's distributed transaction is open (its rows written on
      // the shards, waiting to commit): nothing of it stays
      const killed = spawnIngester(cluster.url, inbox, {
        PIPELINE_PAUSE_AT: "before-commit",
        PIPELINE_PAUSE_MS: "60000",
      });
      await killed.paused;
      // (core.events itself is locked: the batch created its first monthly partition)
      const [open] = await sql`
        select (select count(*)::int from core.event_ids) as ids,
               (select count(*)::int from quality.batch_metrics) as batches`;
      assertEquals(open, { ids: 0, batches: 0 }, "nothing visible before the commit");
      killed.child.kill("SIGKILL");
      await killed.child.status;
      assertEquals(
        await stored(),
        { events: 0, ids: 0, distinct_ids: 0, batches: 0 },
        "nothing of the killed batch stays",
      );

      // 2. a worker stops (crash) while the batch waits to commit: the commit fails on every
      // node; with the worker back, the retry loads the file once
      const second = spawnIngester(cluster.url, inbox, {
        PIPELINE_PAUSE_AT: "before-commit",
        PIPELINE_PAUSE_MS: "3000",
      });
      await second.paused;
      await cluster.stopNode("w2", "immediate");
      await new Promise((r) => setTimeout(r, 4000)); // the pause ends, the commit fails
      const [down] = await sql`select count(*)::int as n from quality.batch_metrics`;
      assertEquals(down.n, 0, "no batch committed without its worker");
      await cluster.startNode("w2");
      const status = await second.child.status;
      if (status.code !== 0) {
        const again = await ingester(cluster.url, inbox).output();
        assertEquals(
          again.code,
          0,
          `the inbox drains once the worker is back: ${new TextDecoder().decode(again.stderr)}`,
        );
      }

      // exactly once: every file loaded once, the totals of the manifest (a file that failed is
      // retried after the others, so duplicates across files may be counted in another file
      // than the manifest's), no id twice, no prepared transaction left on a worker
      const metrics = await sql`
        select source_name, rows from quality.batch_metrics order by source_name`;
      assertEquals(
        metrics.map((m) => ({ ...m })),
        manifest.files.map((f) => ({ source_name: f.name, rows: f.rows })),
      );
      const [totals] = await sql`
        select sum(valid)::int as valid, sum(invalid)::int as invalid,
            sum(duplicates)::int as duplicates
        from quality.batch_metrics`;
      if (Deno.env.get("CITUS_DEBUG")) {
        console.log(
          await sql`select batch_id, source_name, rows, valid, invalid, duplicates from quality.batch_metrics order by batch_id`,
        );
        console.log(await stored());
        console.log(
          await sql`select batch_id, count(*)::int, count(distinct event_id)::int as ids from core.events group by 1 order by 1`,
        );
      }
      const sum = (k: "valid" | "invalid" | "duplicates") =>
        manifest.files.reduce((s, f) => s + f[k], 0);
      // the order also decides which copy of an id wins, so whether a later copy is an exact
      // duplicate or a conflicting one (invalid): their sum is fixed, the split is not
      assertEquals(
        { valid: totals.valid, rejected: totals.invalid + totals.duplicates },
        { valid: sum("valid"), rejected: sum("invalid") + sum("duplicates") },
      );
      const valid = manifest.files.reduce((s, f) => s + f.valid, 0);
      assertEquals(await stored(), {
        events: valid,
        ids: valid,
        distinct_ids: valid,
        batches: manifest.files.length,
      });
      // the killed batch's chunks were swept by the next ingester
      const [scratch] = await sql`
        select count(*)::int as n from pg_class where relnamespace = 'ingest_scratch'::regnamespace`;
      assertEquals(scratch.n, 0, "no scratch table left");
      await sql`select recover_prepared_transactions()`;
      for (const w of cluster.workers) {
        const wsql = connect({ url: cluster.url.replace(/127\.0\.0\.1:\d+/, w), max: 1 });
        try {
          const [p] = await wsql`select count(*)::int as n from pg_prepared_xacts`;
          assertEquals(p.n, 0, `prepared transactions left on ${w}`);
        } finally {
          await wsql.end({ timeout: 1 });
        }
      }
    } finally {
      await sql.end({ timeout: 1 });
      await cluster.destroy();
      await Deno.remove(base, { recursive: true });
    }
  },
});
