import { assertEquals } from "../scripts/lib/testing/assert.ts";
import { testDb } from "../scripts/lib/testing/testdb.ts";

Deno.test("core.to_reporting: the day's rate, else the latest earlier, else the earliest later", async () => {
  const db = await testDb("money_convert");
  try {
    await db.sql`
      insert into core.exchange_rates (currency, day, usd_per_unit) values
        ('EUR', '2026-01-10', 1.10), ('EUR', '2026-01-20', 1.20), ('GBP', '2026-01-10', 1.25)`;
    const rows = await db.sql`
      select
        round(core.to_reporting(100, 'EUR', '2026-01-10'), 6)::text as same_day,
        round(core.to_reporting(100, 'EUR', '2026-01-15'), 6)::text as earlier,
        round(core.to_reporting(100, 'EUR', '2026-01-25'), 6)::text as latest,
        round(core.to_reporting(100, 'USD', '2026-01-25'), 6)::text as usd,
        core.to_reporting(100, 'JPY', '2026-01-25') as unknown`;
    assertEquals(rows[0], {
      same_day: "110.000000",
      earlier: "110.000000",
      latest: "120.000000",
      usd: "100.000000",
      unknown: null,
    });
    // a day before every non-default rate: the shipped default of 2025-01-02 is earlier
    const [{ early }] = await db.sql`
      select round(core.to_reporting(100, 'EUR', '2020-01-01'), 6)::text as early`;
    assertEquals(early, "103.500000");
    await db.sql`update core.settings set reporting_currency = 'GBP'`;
    const [{ gbp }] = await db.sql`
      select round(core.to_reporting(100, 'EUR', '2026-01-10'), 6)::text as gbp`;
    assertEquals(gbp, "88.000000"); // 100 EUR = 110 USD = 110 / 1.25 GBP
    // the analyst cannot use schema core, but reads converted figures through a view
    await db.sql.unsafe(`set role pipeline_owner;
      create view analytics.money_probe as
      select round(core.to_reporting(10, 'EUR', '2026-01-20'), 6)::text as v;
      reset role`);
    await db.sql.begin(async (tx) => {
      await tx.unsafe("set local role pipeline_analyst");
      const [{ v }] = await tx`select v from analytics.money_probe`;
      assertEquals(v, "9.600000"); // 10 EUR = 12 USD = 12 / 1.25 GBP
    });
  } finally {
    await db.drop();
  }
});
