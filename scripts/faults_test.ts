// Fault injection: the ingester dies at named stages, is SIGKILLed at random, loses its
// database mid-load or at commit. After recovery every row of every file is in exactly one
// place. Short forms run in `make test`; SOAK=1 (`make soak`) runs the long ones.
import { join } from "node:path";
import { assert, assertEquals } from "./lib/testing/assert.ts";
import { connect, type Sql } from "./lib/common/db.ts";
import { mixedCsv, type MixedFile } from "./lib/testing/fixtures.ts";
import { type Dirs, dirsFor, ensureDirs } from "./lib/common/inbox.ts";
import { testDb } from "./lib/testing/testdb.ts";
import { startCluster } from "./lib/testing/testpg.ts";

const SOAK = Deno.env.get("SOAK") === "1";
const ingestScript = new URL("./ingest.ts", import.meta.url).pathname;

interface Run {
  dirs: Dirs;
  base: string;
  files: Map<string, MixedFile>;
}

async function newRun(): Promise<Run> {
  const base = await Deno.makeTempDir({ prefix: "faults-" });
  const dirs = dirsFor(join(base, "incoming"));
  await ensureDirs(dirs);
  return { dirs, base, files: new Map() };
}

/** Writes a file the way producers must: .tmp, then rename. */
async function drop(run: Run, name: string, file: MixedFile) {
  await Deno.writeTextFile(join(run.dirs.inbox, `${name}.tmp`), file.text);
  await Deno.rename(join(run.dirs.inbox, `${name}.tmp`), join(run.dirs.inbox, name));
  run.files.set(name, file);
}

/** An ingester process. Spawned ones must not pipe stderr unread: a full pipe blocks them. */
function ingest(
  url: string,
  run: Run,
  args: string[],
  env: Record<string, string> = {},
  stderr: "piped" | "null" = "null",
) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", ingestScript, "--dir", run.dirs.inbox, ...args],
    env: {
      DATABASE_URL: url,
      LOG_DIR: join(run.base, "logs"),
      LOG_LEVEL: Deno.env.get("TEST_LOG_LEVEL") ?? "warn",
      DB_RETRY_MAX_SECONDS: "1",
      BREAKER_THRESHOLD: "3",
      SCAN_INTERVAL_SECONDS: "1",
      ...env,
    },
    stdout: "null",
    stderr: Deno.env.get("TEST_LOG_LEVEL") ? "inherit" : stderr,
  });
}

async function once(
  url: string,
  run: Run,
  env: Record<string, string> = {},
  args: string[] = [],
) {
  const out = await ingest(url, run, ["--once", ...args], env, "piped").output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

/** The promise of the product, checked after any fault. */
async function assertInvariants(sql: Sql, run: Run) {
  const expected = { rows: 0, valid: 0, invalid: 0, duplicates: 0 };
  for (const f of run.files.values()) {
    expected.rows += f.rows;
    expected.valid += f.valid;
    expected.invalid += f.invalid;
    expected.duplicates += f.duplicates;
  }
  const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assertEquals(names(run.dirs.inbox).filter((n) => !n.endsWith(".tmp")), [], "inbox drained");
  assertEquals(
    [...names(run.dirs.processed), ...names(run.dirs.rejected)].sort(),
    [...run.files.keys()].sort(),
    "every file ended in processed/ or rejected/",
  );
  const [m] = await sql`
    select coalesce(sum(rows), 0)::int as rows, coalesce(sum(valid), 0)::int as valid,
           coalesce(sum(invalid), 0)::int as invalid,
           coalesce(sum(duplicates), 0)::int as duplicates
    from quality.batch_metrics`;
  assertEquals(m, expected, "metrics: rows = valid + invalid + duplicates, as built");
  const [c] = await sql`
    select (select count(*)::int from core.events) as events,
           (select count(distinct event_id)::int from core.events) as distinct_ids,
           (select count(*)::int from core.event_ids) as ids,
           (select count(*)::int from quality.dead_letter) as dead,
           (select count(*)::int from ingest.files) as ledger,
           (select count(*)::int from ingest.files where status <> 'done') as not_done,
           -- staging tables live as long as their session (ingest.session_staging): none
           -- may outlive it (pg_temp_N belongs to the backend numbered N)
           (select count(*)::int from pg_class as c
             join pg_namespace as n on n.oid = c.relnamespace
             where c.relpersistence = 't' and c.relname in ('stage', 'checked', 'rejected')
               and substring(n.nspname from '^pg_temp_([0-9]+)$')::int
                 not in (select pg_stat_get_backend_idset()))
             as stages,
           (select count(*)::int from pg_class
             where relnamespace = 'ingest_scratch'::regnamespace) as scratch,
           (select count(*)::int from pg_prepared_xacts
             where database = current_database()) as prepared`;
  assertEquals(c, {
    events: expected.valid,
    distinct_ids: expected.valid,
    ids: expected.valid,
    dead: expected.invalid,
    ledger: run.files.size,
    not_done: 0,
    stages: 0,
    scratch: 0,
    prepared: 0,
  });
}

for (
  const [stage, workers] of ["mid-copy", "after-copy", "after-procedure", "after-commit"]
    .flatMap((s) => [[s, "1"], [s, "2"]])
) {
  Deno.test(`ingest killed at ${stage} (${workers} workers), restarted: every row in exactly one place`, async () => {
    const db = await testDb(`crash_${stage}_${workers}`);
    const run = await newRun();
    try {
      await drop(run, "a.csv", mixedCsv(12_000, 1)); // > 1 MiB, so mid-copy is reached
      await drop(run, "b.csv", mixedCsv(500, 2));
      const crashed = await once(db.url, run, { PIPELINE_CRASH_AT: stage }, [
        "--workers",
        workers,
      ]);
      assertEquals(crashed.code, 137, crashed.stderr);
      assert(crashed.stderr.includes(`crash point "${stage}"`));
      const again = await once(db.url, run);
      assertEquals(again.code, 0, again.stderr);
      await assertInvariants(db.sql, run);
    } finally {
      await Deno.remove(run.base, { recursive: true });
      await db.drop();
    }
  });
}

// One file on both cores (--chunks 2, every file chunked): the chunk sessions commit their
// scratch tables before the batch's own transaction; two slice sessions then do the batch's
// work and PREPARE; the batch's transaction commits the decision; then each slice is committed.
// A crash at any point of it loses and duplicates nothing: the restarted ingester commits or
// rolls back the prepared slices by the decision, and sweeps what the dead batch left.
const CHUNKED = { PARALLEL_FILE_MIN_MB: "0" };
for (
  const stage of [
    "mid-copy",
    "after-chunks",
    "after-slices",
    "after-procedure",
    "before-prepared-commits",
    "between-prepared-commits",
    "after-commit",
  ]
) {
  Deno.test(`ingest in chunks killed at ${stage}, restarted: every row in exactly one place`, async () => {
    const db = await testDb(`crash_chunks_${stage}`);
    const run = await newRun();
    try {
      await drop(run, "a.csv", mixedCsv(20_000, 1)); // 3 reads of 1 MiB: both chunks get rows
      await drop(run, "b.csv", mixedCsv(500, 2));
      const args = ["--workers", "1", "--chunks", "2"];
      const crashed = await once(db.url, run, { ...CHUNKED, PIPELINE_CRASH_AT: stage }, args);
      assertEquals(crashed.code, 137, crashed.stderr);
      assert(crashed.stderr.includes(`crash point "${stage}"`));
      if (stage === "after-chunks") {
        // the dead batch's chunks committed: their tables wait for the sweep
        const [{ n }] = await db.sql`
          select count(*)::int as n from pg_class
          where relnamespace = 'ingest_scratch'::regnamespace`;
        assertEquals(n, 4, "2 chunks x (stage, checked)");
      }
      // the slices that were prepared when the process died, and what recovery must do
      const [{ prepared, decided }] = await db.sql`
        select (select count(*)::int from pg_prepared_xacts
                where database = current_database()) as prepared,
               (select count(*)::int from ingest.prepared_slices) as decided`;
      const expectPrepared: Record<string, [number, number]> = {
        "after-slices": [2, 0], // rolled back: no decision
        "after-procedure": [2, 0],
        "before-prepared-commits": [2, 2], // committed: decided
        "between-prepared-commits": [1, 2],
      };
      assertEquals(
        [prepared, decided],
        expectPrepared[stage] ?? [0, stage === "after-commit" ? 2 : 0],
      );
      const again = await once(db.url, run, CHUNKED, args);
      assertEquals(again.code, 0, again.stderr);
      await assertInvariants(db.sql, run);
    } finally {
      await Deno.remove(run.base, { recursive: true });
      await db.drop();
    }
  });
}

Deno.test(`ingest SIGKILLed ${SOAK ? 100 : 20} times during a multi-file run loses and duplicates nothing`, async () => {
  const db = await testDb("crash_sigkill_loop");
  const run = await newRun();
  try {
    const kills = SOAK ? 100 : 20;
    let dropped = 0;
    for (let k = 0; k < kills; k++) {
      // every third run loads each file in 2 chunks
      const child = k % 3 === 2
        ? ingest(db.url, run, ["--workers", "1", "--chunks", "2"], CHUNKED).spawn()
        : ingest(db.url, run, ["--workers", String(1 + (k % 2))]).spawn();
      // keep files arriving while the ingester lives
      await drop(
        run,
        `f-${String(dropped++).padStart(4, "0")}.csv`,
        mixedCsv(1_500 + (k % 5) * 700, 100 + k),
      );
      await new Promise((r) => setTimeout(r, 150 + Math.floor(Math.random() * 900)));
      child.kill("SIGKILL");
      await child.status;
    }
    // the last run loads in chunks too, so its sweep drops what killed chunked runs left
    const last = await once(db.url, run, CHUNKED, ["--chunks", "2"]);
    assertEquals(last.code, 0, last.stderr);
    await assertInvariants(db.sql, run);
  } finally {
    await Deno.remove(run.base, { recursive: true });
    await db.drop();
  }
});

Deno.test("PostgreSQL stopped immediately during a load: the ingester recovers by itself", async () => {
  const cluster = await startCluster("immediate");
  const run = await newRun();
  const sql = connect({ url: cluster.url, max: 1 });
  try {
    for (let i = 0; i < 3; i++) await drop(run, `big-${i}.csv`, mixedCsv(40_000, 200 + i));
    const child = ingest(cluster.url, run, [], { LOG_LEVEL: "info" }).spawn();
    // stop the server while the first file is in flight
    await waitFor(async () => {
      try {
        const [{ n }] = await sql`
          select count(*)::int as n from pg_stat_activity where query ilike 'copy pg_temp.stage%'`;
        return n > 0;
      } catch {
        return false;
      }
    });
    await cluster.stop("immediate");
    await new Promise((r) => setTimeout(r, 2000));
    await cluster.start();
    await waitFor(
      () => Promise.resolve([...Deno.readDirSync(run.dirs.inbox)].length === 0),
      90_000,
    ).catch(async (e) => {
      throw new Error(`${(e as Error).message}: ${await ingesterState(run)}`);
    });
    child.kill("SIGTERM");
    await child.status;
    await assertInvariants(sql, run);
  } finally {
    await sql.end({ timeout: 1 });
    await Deno.remove(run.base, { recursive: true });
    await cluster.destroy();
  }
});

for (const chunked of [false, true]) {
  // in slices: the batch's transaction is cut while its slices are prepared; the decision was
  // never committed, so recovery rolls them back and the file loads again
  Deno.test(`a connection dropped at commit time${chunked ? " (in slices)" : ""}: the file is loaded again, once`, async () => {
    const db = await testDb(`crash_commit_drop${chunked ? "_slices" : ""}`);
    const run = await newRun();
    try {
      await drop(run, "a.csv", mixedCsv(3_000, 300));
      const child = ingest(db.url, run, ["--once", ...(chunked ? ["--chunks", "2"] : [])], {
        PIPELINE_PAUSE_AT: "before-commit",
        PIPELINE_PAUSE_MS: "1500",
        ...(chunked ? CHUNKED : {}),
      }).spawn();
      // the batch's transaction is idle, waiting to commit: cut it
      await waitFor(async () => {
        const rows = await db.sql`
          select pid from pg_stat_activity
          where datname = current_database() and state = 'idle in transaction'
            and application_name = 'ecommerce-pipeline'`;
        for (const r of rows) await db.sql`select pg_terminate_backend(${r.pid})`;
        return rows.length > 0;
      });
      const status = await child.status;
      assert(status.code === 0 || status.code === 1, `exit ${status.code}`);
      const again = await once(
        db.url,
        run,
        chunked ? CHUNKED : {},
        chunked ? ["--chunks", "2"] : [],
      );
      assertEquals(again.code, 0, again.stderr);
      await assertInvariants(db.sql, run);
    } finally {
      await Deno.remove(run.base, { recursive: true });
      await db.drop();
    }
  });
}

Deno.test("a file growing without being renamed is never loaded half", async () => {
  const db = await testDb("slow_writer");
  const run = await newRun();
  const child = ingest(db.url, run, []).spawn();
  try {
    const file = mixedCsv(20_000, 400);
    const tmp = join(run.dirs.inbox, "slow.csv.tmp");
    using f = await Deno.open(tmp, { write: true, create: true });
    const bytes = new TextEncoder().encode(file.text);
    for (let i = 0; i < bytes.length; i += 64 * 1024) {
      await f.write(bytes.subarray(i, i + 64 * 1024));
      await new Promise((r) => setTimeout(r, 20));
    }
    const [{ n }] = await db.sql`select count(*)::int as n from quality.batch_metrics`;
    assertEquals(n, 0, "nothing loaded while the producer writes");
    await Deno.rename(tmp, join(run.dirs.inbox, "slow.csv"));
    run.files.set("slow.csv", file);
    await waitFor(() => Promise.resolve([...Deno.readDirSync(run.dirs.processed)].length === 1));
    await assertInvariants(db.sql, run);
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(run.base, { recursive: true });
    await db.drop();
  }
});

/** What a stuck ingester left: the files in each directory and the end of its log. */
async function ingesterState(run: Run): Promise<string> {
  const lines: string[] = [];
  for (const [name, dir] of Object.entries(run.dirs)) {
    const files = [...Deno.readDirSync(dir)].map((f) => f.name).sort();
    lines.push(`${name}: ${files.join(" ") || "(empty)"}`);
  }
  const logs = join(run.base, "logs");
  const names = (() => {
    try {
      return [...Deno.readDirSync(logs)].map((f) => f.name).sort();
    } catch {
      return [];
    }
  })();
  for (const f of names) {
    const text = await Deno.readTextFile(join(logs, f));
    lines.push(`${f}:`, ...text.trimEnd().split("\n").slice(-40));
  }
  return lines.join("\n");
}

async function waitFor(check: () => Promise<boolean>, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert(false, `condition not met within ${ms} ms`);
}
