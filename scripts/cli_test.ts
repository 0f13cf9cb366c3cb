// Command-line contracts: usage errors exit 2 with one line saying what to do, and create
// nothing; the Makefile declares only real targets phony.
import { join } from "node:path";
import { assert, assertEquals } from "./lib/testing/assert.ts";
import { testDb } from "./lib/testing/testdb.ts";

const root = new URL("..", import.meta.url).pathname;

async function deno(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...args],
    env,
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("ingest --dir that does not exist: exit 2, nothing created", async () => {
  const base = await Deno.makeTempDir({ prefix: "cli-" });
  try {
    const dir = join(base, "nonexistent", "x");
    const r = await deno(["scripts/ingest.ts", "--once", "--dir", dir]);
    assertEquals(r.code, 2);
    assertEquals(
      r.stderr.trim(),
      `error: --dir "${dir}" is not an existing directory: create it (mkdir -p) or fix the path`,
    );
    assertEquals([...Deno.readDirSync(base)].map((e) => e.name), []);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("replay --reason with an unknown code lists the valid ones, exit 2", async () => {
  const db = await testDb("cli_replay");
  try {
    const r = await deno(
      ["scripts/replay.ts", "--reason", "bogus_code", "--reason", "zero_price"],
      {
        DATABASE_URL: db.url,
      },
    );
    assertEquals(r.code, 2);
    const [{ codes }] = await db.sql`
      select array_to_string(ingest.reason_codes() || array['conflicting_duplicate'], ', ')
        as codes`;
    assertEquals(
      r.stderr.trim(),
      `error: unknown reason code(s): bogus_code; valid codes: ${codes}`,
    );
    assert(codes.startsWith("missing_event_id, invalid_event_id"));
    const ok = await deno(["scripts/replay.ts", "--reason", "zero_price", "--json"], {
      DATABASE_URL: db.url,
    });
    assertEquals(ok.code, 0, ok.stderr);
    assertEquals(JSON.parse(ok.stdout).rows, 0);
  } finally {
    await db.drop();
  }
});

Deno.test("Makefile: .PHONY lists exactly the targets it defines", async () => {
  const text = await Deno.readTextFile(join(root, "Makefile"));
  const phony = /^\.PHONY:(.*)$/m.exec(text)![1].trim().split(/\s+/).sort();
  const targets = [...text.matchAll(/^([a-z][a-z-]*):/gm)].map((m) => m[1]).sort();
  assertEquals(phony, targets);
});
