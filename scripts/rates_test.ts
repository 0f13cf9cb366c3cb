// deno task rates and the reporting currency against a real database.
import { assert, assertEquals, assertRejects } from "./lib/testing/assert.ts";
import { testDb } from "./lib/testing/testdb.ts";

const script = new URL("./rates.ts", import.meta.url).pathname;

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

Deno.test("deno task rates: bad rows named by line and reason, nothing loaded; then a good file", async () => {
  const db = await testDb("rates_cli");
  const dir = await Deno.makeTempDir();
  try {
    const env = { DATABASE_URL: db.url };
    const rates = () =>
      db.sql`select currency, day::text, usd_per_unit::float8 as r, source
        from core.exchange_rates where source <> 'default' order by currency, day`;
    const bad = `${dir}/bad.csv`;
    await Deno.writeTextFile(
      bad,
      "day,currency,usd_per_unit\n" +
        "2026-11-01,EUR,1.05\n" + // fine, but the file has bad rows: not loaded
        "2026-11-31,EUR,1.05\n" +
        "2026-11-02,EURO,1.05\n" +
        "2026-11-02,GBP,-1.2\n" +
        "2026-11-02,GBP,0\n" +
        "2026-11-02,USD,1.1\n" +
        "\n" +
        "2026-11-01,eur,1.06\n", // line 9: a second EUR rate for the 1st (currency uppercased)
    );
    const r = await run(["--file", bad], env);
    assertEquals(r.code, 1, r.stderr);
    assertEquals(r.stderr.trim().split("\n"), [
      `${bad}:2: EUR on 2026-11-01 appears more than once in the file`,
      `${bad}:3: day "2026-11-31" is not a date YYYY-MM-DD`,
      `${bad}:4: currency "EURO" is not a three-letter code`,
      `${bad}:5: usd_per_unit "-1.2" is not a positive decimal number`,
      `${bad}:6: usd_per_unit must be greater than 0`,
      `${bad}:7: USD is the base: its usd_per_unit is always 1`,
      `${bad}:9: EUR on 2026-11-01 appears more than once in the file`,
      "error: 7 bad row(s), nothing loaded: fix them and run again",
    ]);
    assertEquals((await rates()).length, 0);

    const good = `${dir}/ecb.csv`;
    await Deno.writeTextFile(
      good,
      "currency,day,usd_per_unit\nEUR,2026-11-01,1.05\nGBP,2026-11-01,1.27\n",
    );
    const ok = await run(["--file", good], env);
    assertEquals([ok.code, ok.stdout.trim()], [0, "rates: 2 loaded (2 new, 0 replaced)"]);
    await Deno.writeTextFile(good, "currency,day,usd_per_unit\nEUR,2026-11-01,1.07\n");
    const again = await run(["--file", good, "--source", "ecb"], env);
    assertEquals([again.code, again.stdout.trim()], [0, "rates: 1 loaded (0 new, 1 replaced)"]);
    assertEquals((await rates()).map((x) => [x.currency, x.day, x.r, x.source]), [
      ["EUR", "2026-11-01", 1.07, "ecb"],
      ["GBP", "2026-11-01", 1.27, "ecb.csv"],
    ]);

    const header = `${dir}/header.csv`;
    await Deno.writeTextFile(header, "currency,date,rate\nEUR,2026-11-01,1.05\n");
    const h = await run(["--file", header], env);
    assertEquals(h.code, 2);
    assert(h.stderr.includes("the header lacks day, usd_per_unit"), h.stderr);
    assertEquals((await run([], env)).code, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await db.drop();
  }
});

Deno.test("the reporting currency: set from REPORTING_CURRENCY, refused without rates", async () => {
  const db = await testDb("rates_reporting");
  try {
    const set = (c: string) =>
      db.sql.begin(async (tx) => {
        await tx.unsafe("set local role pipeline_owner");
        const [{ c: out }] = await tx`select core.set_reporting_currency(${c}) as c`;
        return out;
      });
    assertEquals(await set("eur"), "EUR");
    const [{ reporting_currency }] = await db.sql`select * from analytics.reporting_currency`;
    assertEquals(reporting_currency, "EUR");
    await assertRejects(() => set("JPY"), Error, 'REPORTING_CURRENCY "JPY" has no exchange rate');
    await assertRejects(() => set("Euro"), Error, "not a three-letter currency code");
    const [{ c }] = await db.sql`select reporting_currency as c from core.settings`;
    assertEquals(c, "EUR");
  } finally {
    await db.drop();
  }
});
