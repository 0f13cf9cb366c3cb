// deno task ingest as a process: its own /metrics, and a graceful stop on SIGTERM.
import { join } from "node:path";
import { assert, assertEquals } from "./lib/testing/assert.ts";
import { eventsCsv } from "./lib/testing/fixtures.ts";
import { testDb } from "./lib/testing/testdb.ts";
import { promtoolPath } from "./lib/testing/tools.ts";

const root = new URL("..", import.meta.url).pathname;
/** a port of this project's test range (19140-19149); override with TEST_INGEST_METRICS_PORT */
const PORT = Number(Deno.env.get("TEST_INGEST_METRICS_PORT") ?? 19141);

async function until(check: () => Promise<boolean> | boolean, what: string) {
  for (let i = 0; i < 600; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`gave up waiting for ${what}`);
}

function parse(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

Deno.test("ingest --metrics-port serves its counters; SIGTERM stops it cleanly (exit 0)", async () => {
  const db = await testDb("ingest_process");
  const base = await Deno.makeTempDir({ prefix: "ingest-proc-" });
  const inbox = join(base, "incoming");
  await Deno.mkdir(inbox);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}scripts/ingest.ts`, "--dir", inbox, "--metrics-port", String(PORT)],
    env: {
      DATABASE_URL: db.url,
      LOG_DIR: join(base, "logs"),
      MAINTAIN_INTERVAL_MINUTES: "0",
      SCAN_INTERVAL_SECONDS: "1",
    },
    cwd: base,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let log = "";
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  const pump = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      log += value;
    }
  })();
  let stopped = false;
  try {
    await until(() => /metrics listening/.test(log) && /watching inbox/.test(log), "the ingester");
    // three rows, the last one with a price that is not a number
    const lines = eventsCsv(3).split("\n");
    lines[3] = lines[3].replace(",books,9.99,", ",books,abc,");
    await Deno.writeTextFile(join(inbox, "a.csv.tmp"), lines.join("\n"));
    await Deno.rename(join(inbox, "a.csv.tmp"), join(inbox, "a.csv"));
    await Deno.writeTextFile(join(inbox, "b.csv"), "no,header,here\n1,2,3\n");
    await until(() => [...Deno.readDirSync(inbox)].length === 0, "the inbox to drain");

    const res = await fetch(`http://127.0.0.1:${PORT}/metrics`);
    assertEquals(res.status, 200);
    assertEquals(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    const text = await res.text();
    const m = parse(text);
    for (
      const [k, v] of Object.entries({
        'pipeline_ingest_files_total{outcome="loaded"}': 1,
        'pipeline_ingest_files_total{outcome="rejected"}': 1,
        'pipeline_ingest_files_total{outcome="failed"}': 0,
        'pipeline_ingest_rows_total{outcome="valid"}': 2,
        'pipeline_ingest_rows_total{outcome="invalid"}': 1,
        'pipeline_ingest_rows_total{outcome="duplicate"}': 0,
        "pipeline_ingest_file_duration_seconds_count": 1,
        "pipeline_inbox_files": 0,
        "pipeline_database_up": 1,
      })
    ) assertEquals(m[k], v, k);
    assert(m.pipeline_ingest_last_file_timestamp_seconds > 1.7e9);
    const [{ n }] = await db.sql`select count(*)::int as n from core.events`;
    assertEquals(n, 2);
    const promtool = new Deno.Command(promtoolPath(), {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = promtool.stdin.getWriter();
    await w.write(new TextEncoder().encode(text));
    await w.close();
    const checked = await promtool.output();
    const said = new TextDecoder().decode(checked.stdout) +
      new TextDecoder().decode(checked.stderr);
    assert(checked.success && said.trim() === "", `promtool check metrics: ${said}`);

    child.kill("SIGTERM");
    const status = await child.status;
    stopped = true;
    await pump;
    assertEquals(status.code, 0, log);
    assert(/SIGTERM: finishing the file in hand, then exiting/.test(log), log);
    assert(/stopped/.test(log), log);
    // the metrics listener is gone with it
    const after = await fetch(`http://127.0.0.1:${PORT}/metrics`).then(
      () => "answered",
      () => "refused",
    );
    assertEquals(after, "refused");
  } finally {
    if (!stopped) {
      child.kill("SIGKILL");
      await child.status;
      await pump;
    }
    await db.drop();
    await Deno.remove(base, { recursive: true });
  }
});
