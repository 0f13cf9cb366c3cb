// make demo-live (scripts/demo.ts --live): files at the demo's pace, ingested as they come, and
// Ctrl-C (SIGINT) finishes the file in hand, loads it and exits 0.
import { assert, assertEquals } from "./lib/testing/assert.ts";
import { testDb } from "./lib/testing/testdb.ts";

Deno.test("demo --live: a stream into the database that SIGINT stops cleanly, every file loaded", async () => {
  const db = await testDb("demo_live");
  const dir = await Deno.makeTempDir({ prefix: "demo_live_" });
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./demo.ts", import.meta.url).pathname,
        "--live",
        "--interval",
        "2",
        // a busy shop (about 9 rows a file at night, 40 at the evening peak): quick to see
        "--daily-events",
        "400000",
      ],
      env: { DATABASE_URL: db.url, DATA_DIR: dir, LOG_DIR: `${dir}/logs`, LOG_LEVEL: "warn" },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    let out = "";
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    // two files reported, then Ctrl-C
    while ((out.match(/ rows {2}\(/g) ?? []).length < 2) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    child.kill("SIGINT");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    const status = await child.status;
    assertEquals(status.code, 0, `${out}\n${await stderr}`);
    assert(out.includes("Live stream: a file every 2 s on the demo's daily curve"), out);
    assert(out.includes("stopping: finishing the file in hand and loading it"), out);
    const m = /stopped: (\d+) files, (\d+) rows written/.exec(out);
    assert(m, out);
    // every file written is in the database, the one in hand at the stop included
    const [loaded] = await db.sql`
      select count(*)::int as files, coalesce(sum(rows), 0)::int as rows
      from quality.batch_metrics`;
    assertEquals([loaded.files, loaded.rows], [Number(m[1]), Number(m[2])]);
    assert(Number(m[1]) >= 2, out);
    let inbox = 0;
    for await (const e of Deno.readDir(`${dir}/incoming`)) if (e.name.endsWith(".csv")) inbox++;
    assertEquals(inbox, 0, "files left in the inbox");
  } finally {
    await Deno.remove(dir, { recursive: true });
    await db.drop();
  }
});
