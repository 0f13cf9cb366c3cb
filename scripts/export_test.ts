// deno task export as a user runs it: flags, --show, --watch exporting on its own and stopping
// on SIGTERM, --disable. What it exports is tested in scripts/lib/lake/lake_test.ts.
import { config } from "./lib/common/config.ts";
import { loadFile, settings } from "./lib/batch/mod.ts";
import { assert, assertEquals, assertRejects } from "./lib/testing/assert.ts";
import { HEADER } from "./lib/testing/fixtures.ts";
import { duckdbDays } from "./lib/testing/lake.ts";
import { testDb } from "./lib/testing/testdb.ts";
import { currentFiles, ExportError, runExport } from "./lib/lake/mod.ts";

const script = new URL("./export.ts", import.meta.url).pathname;

function exportCli(args: string[], env: Record<string, string>) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  });
}

Deno.test("deno task export: flags, --show, --watch stops on SIGTERM, --files for DuckDB, a gold column added without a rewrite, a type change refused, --disable; bronze has no e-mail of a raw line", async () => {
  const db = await testDb("export_cli");
  const work = await Deno.makeTempDir({ prefix: "export-cli-" });
  const env = { DATABASE_URL: db.url, LAKE_WAREHOUSE: `${work}/lake`, LOG_DIR: `${work}/logs` };
  try {
    const bad = await exportCli(["--watch", "--now", "2026-12-01T00:00:00Z"], env).output();
    assertEquals(bad.code, 2);
    assert(new TextDecoder().decode(bad.stderr).includes("--now cannot be used with --watch"));
    const both = await exportCli(["--show", "--disable"], env).output();
    assertEquals(both.code, 2);

    const unknown = await exportCli(["--table", "nope"], env).output();
    assertEquals(unknown.code, 1);
    assert(
      new TextDecoder().decode(unknown.stderr).includes(
        'lake table "nope" is not in lake.tables (there are: channel_performance,',
      ),
    );

    const empty = await exportCli(["--show"], env).output();
    assertEquals(
      new TextDecoder().decode(empty.stdout).trim(),
      "nothing to export: the ledger holds every closed day",
    );

    const lines = [HEADER];
    for (let i = 1; i <= 12; i++) {
      lines.push(
        `0190d000-0001-7000-8000-${
          i.toString(16).padStart(12, "0")
        },2026-11-20T10:00:00Z,view,${i},s-${i},3,books,5.00,1`,
      );
    }
    // a malformed line carrying an address: the dead letter keeps it raw, the lake does not
    lines.push("not,a,valid,line,someone.private@example.com");
    await Deno.writeTextFile(`${work}/e.csv`, lines.join("\n") + "\n");
    await loadFile(db.sql, `${work}/e.csv`, settings(config()));
    const show = await exportCli(["--show", "--json", "--table", "events"], env).output();
    const pending = JSON.parse(new TextDecoder().decode(show.stdout));
    assertEquals(
      pending.map((r: { day: string; row_count: string }) => [r.day, Number(r.row_count)]),
      [["2026-11-20", 12]],
    );

    const watch = exportCli(["--watch"], env).spawn();
    const deadline = Date.now() + 120_000;
    let exported = 0;
    while (Date.now() < deadline) {
      [{ exported }] = await db
        .sql`select count(*)::int as exported from lake.exports where table_name = 'events'`;
      if (exported > 0) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    watch.kill("SIGTERM");
    const out = await watch.output();
    assertEquals(exported, 1, "the watch exported the closed day");
    assertEquals(out.code, 0);
    assert(new TextDecoder().decode(out.stderr).includes("stopped"));

    // DuckDB (no Iceberg extension here) reads exactly the current snapshot's files
    const files = await currentFiles(
      { ...config(), DATABASE_URL: db.url, LAKE_WAREHOUSE: env.LAKE_WAREHOUSE },
      "silver.events",
    );
    assertEquals(await duckdbDays(files), [["2026-11-20", 12]]);
    const listed = await exportCli(["--files", "silver.events"], env).output();
    assertEquals(new TextDecoder().decode(listed.stdout).trim().split("\n"), files);

    const [raw] = await db.sql`
      select d.raw_line, b.raw_line as lake_line
      from quality.dead_letter as d
      join lake.bronze_dead_letter as b using (dead_letter_id)`;
    assert(raw.raw_line.includes("someone.private@example.com"));
    assertEquals(raw.lake_line, "not,a,valid,line,[email removed]");

    // deno task maintain keeps a month with a day not in the ledger, and says so
    const late = [
      HEADER,
      "0190d000-0002-7000-8000-000000000001,2026-11-21T10:00:00Z,view,1,s-1,3,books,5.00,1",
    ];
    await Deno.writeTextFile(`${work}/late.csv`, late.join("\n") + "\n");
    await loadFile(db.sql, `${work}/late.csv`, settings(config()));
    const maintain = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./maintain.ts", import.meta.url).pathname,
        "--now",
        "2029-06-01T00:00:00Z",
        "--dir",
        work,
      ],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(maintain.code, 0);
    const said = new TextDecoder().decode(maintain.stderr);
    assert(
      said.includes("partition kept") && said.includes("partition=events_2026_11") &&
        said.includes("first=2026-11-21"),
      said,
    );
    const [{ kept }] = await db
      .sql`select count(*)::int as kept from core.events where event_time < '2026-12-01'`;
    assertEquals(kept, 13);

    // a gold table gains a column: a new Iceberg column, the old day's file stays as written
    await db.sql.unsafe(`
      create table public.gold_probe (day date not null, orders bigint);
      insert into public.gold_probe values ('2026-11-20', 3);
      grant select on public.gold_probe to pipeline_owner;
      insert into lake.tables (table_name, layer, source, note)
      values ('gold_probe', 'gold', 'public.gold_probe', 'test')`);
    const probe = { ...config(), DATABASE_URL: db.url, LAKE_WAREHOUSE: env.LAKE_WAREHOUSE };
    const now = new Date();
    const first = await runExport(probe, { now, table: "gold_probe" });
    assertEquals(first.tables["gold.gold_probe"].columns_added, []);
    const before = await currentFiles(probe, "gold.gold_probe");
    await db.sql.unsafe(`
      alter table public.gold_probe add column revenue numeric;
      insert into public.gold_probe values ('2026-11-21', 4, 12.5)`);
    const evolved = await runExport(probe, { now, table: "gold_probe" });
    assertEquals(evolved.tables["gold.gold_probe"].columns_added, ["revenue"]);
    assertEquals(evolved.tables["gold.gold_probe"].days, 1);
    const after = await currentFiles(probe, "gold.gold_probe");
    assertEquals(after.filter((f) => before.includes(f)), before, "no file rewritten");
    // a type change Iceberg cannot take: the export of that table stops, naming the column
    await db.sql.unsafe(`
      alter table public.gold_probe alter column orders type text;
      insert into public.gold_probe values ('2026-11-22', 'x', 1)`);
    const refused = await assertRejects(
      () => runExport(probe, { now, table: "gold_probe" }),
      ExportError,
    );
    assert(refused.message.includes("orders"), refused.message);

    // a second export at the same time stops, saying why
    const held = await db.sql.reserve();
    await held`select pg_advisory_lock(hashtextextended('lake.export', 0))`;
    const busy = await exportCli([], env).output();
    await held`select pg_advisory_unlock_all()`;
    held.release();
    assertEquals(busy.code, 1);
    assert(new TextDecoder().decode(busy.stderr).includes("another deno task export is running"));

    const [{ on }] = await db.sql`select is_enabled as on from lake.settings`;
    assertEquals(on, true, "exporting turned the export on");
    const off = await exportCli(["--disable"], env).output();
    assertEquals(off.code, 0);
    const [{ enabled }] = await db.sql`select is_enabled as enabled from lake.settings`;
    assertEquals(enabled, false);
  } finally {
    await db.drop();
    await Deno.remove(work, { recursive: true });
  }
});
