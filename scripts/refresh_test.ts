import { assert, assertEquals } from "./lib/testing/assert.ts";
import { loadConfig } from "./lib/common/config.ts";
import { bytesSource, loadSource, settings } from "./lib/batch/mod.ts";
import { testDb } from "./lib/testing/testdb.ts";

const script = new URL("./refresh.ts", import.meta.url).pathname;

async function run(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", script, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("deno task refresh rebuilds the rollups to the same figures", async () => {
  const db = await testDb("refresh_cli");
  try {
    const at = (m: number) => new Date(Date.now() - m * 60_000).toISOString();
    const id = (n: number) => `0190d000-0000-7000-8000-${String(n).padStart(12, "0")}`;
    const csv =
      "event_id,event_time,event_type,user_id,session_id,product_id,category,price,quantity\n" +
      `${id(1)},${at(90)},view,1,s1,5,beauty,,\n` +
      `${id(2)},${at(80)},purchase,1,s1,5,beauty,9.99,3\n` +
      `${id(3)},${at(70)},view,,g1,6,toys,,\n`;
    await loadSource(
      db.sql,
      bytesSource(new TextEncoder().encode(csv)),
      "f.csv",
      settings(loadConfig({})),
    );
    const before = [...await db.sql`select * from analytics.daily_sales`];
    // damage a rollup: the refresh must put it right
    await db.sql`update analytics.rollup_daily set orders = 99, visitors = 0`;
    const out = await run([], { DATABASE_URL: db.url });
    assertEquals(out.code, 0, out.stderr);
    assert(out.stdout.startsWith("refresh: rollups rebuilt from 3 events"), out.stdout);
    assertEquals([...await db.sql`select * from analytics.daily_sales`], before);

    const bad = await run(["--full"]);
    assertEquals(bad.code, 2);
    assert(bad.stderr.startsWith("error: ") && bad.stderr.includes("--full"), bad.stderr);
  } finally {
    await db.drop();
  }
});
