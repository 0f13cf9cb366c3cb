// Emails in the dead letter: sealed, readable and reversible by pipeline_owner only; replay
// still re-validates them; the migration seals rows that were stored in clear.
import { stringify } from "csv-stringify/sync";
import { assert, assertEquals } from "../scripts/lib/testing/assert.ts";
import { loadConfig } from "../scripts/lib/common/config.ts";
import { connect } from "../scripts/lib/common/db.ts";
import { bytesSource, loadSource, settings } from "../scripts/lib/batch/mod.ts";
import { testDb } from "../scripts/lib/testing/testdb.ts";
import { applyDefinitions } from "../scripts/lib/migrate/migrate.ts";

const root = new URL("..", import.meta.url).pathname;
const t = new Date(Date.now() - 60_000).toISOString();
const HEADER = [
  "event_id",
  "event_time",
  "event_type",
  "user_id",
  "session_id",
  "product_id",
  "category",
  "price",
  "quantity",
  "user_email",
];
const row = (n: number, price: string, email: string) => [
  `0190f000-0000-7000-8000-${String(n).padStart(12, "0")}`,
  t,
  "purchase",
  "3",
  "s",
  "4",
  "toys",
  price,
  "1",
  email,
];
const csv = (rows: string[][]) => new TextEncoder().encode(stringify([HEADER, ...rows]));

Deno.test("dead letter emails are sealed: only pipeline_owner unseals them, replay still works", async () => {
  const db = await testDb("dead_letter_email");
  const ingest = connect({ url: db.url, role: "pipeline_ingest", max: 1 });
  try {
    const cfg = settings(loadConfig({}));
    const r = await loadSource(
      ingest,
      bytesSource(csv([
        row(1, "20000.00", "Buyer.One@Example.com"), // extreme_price: dead letter
        row(2, "5.00", "buyer.one@example.com"), // valid: keyed hash only
        row(3, "-1", ""), // no email
      ])),
      "emails.csv",
      cfg,
    );
    assertEquals([r.result!.valid, r.result!.invalid], [1, 2]);
    const cols = await db.sql`
      select column_name from information_schema.columns
      where table_schema = 'quality' and table_name = 'dead_letter' and column_name like 'user_email%'`;
    assertEquals(cols.map((c) => c.column_name), ["user_email_sealed"]);
    const dead = await db.sql`
      select line_no, user_email_sealed as sealed, core.unseal_email(user_email_sealed) as email
      from quality.dead_letter order by line_no`;
    assertEquals(dead.map((d) => [d.line_no, d.email]), [[2, "Buyer.One@Example.com"], [4, null]]);
    assertEquals(dead[1].sealed, null);
    const bytes = new TextDecoder("latin1").decode(dead[0].sealed);
    assert(!/example/i.test(bytes), "the sealed form holds the email in clear");

    // nobody but the owner reads the key or unseals
    for (const role of ["pipeline_ingest", "pipeline_analyst"]) {
      for (const q of ["select key from core.dead_letter_key", "select core.unseal_email(null)"]) {
        const e = await db.sql.begin(async (tx) => {
          await tx.unsafe(`set local role ${role}`);
          return await tx.unsafe(q);
        }).then(() => undefined, (err: Error) => err.message);
        assert(/permission denied/.test(e ?? ""), `${role} ran "${q}": ${e}`);
      }
    }

    // replay with a higher MAX_PRICE: the row moves to core.events with the same keyed hash
    // as the valid row that carried the same address (lower-cased, trimmed)
    const [{ result }] = await db.sql`
      select quality.replay(array['extreme_price'], null,
        ${db.sql.json(settings(loadConfig({ MAX_PRICE: "50000" })))}::jsonb) as result`;
    assertEquals([result.rows, result.moved], [1, 1]);
    const hashes = await db.sql`
      select encode(email_hash, 'hex') as h from core.events order by line_no`;
    assertEquals(hashes.length, 2);
    assertEquals(hashes[0].h, hashes[1].h);
    assert(hashes[0].h !== null);
  } finally {
    await ingest.end({ timeout: 5 });
    await db.drop();
  }
});

Deno.test("migration 20261130001410 seals emails stored in clear, and its down section unseals them", async () => {
  const db = await testDb("dead_letter_email_migration");
  try {
    const text = await Deno.readTextFile(
      `${root}db/migrations/20261130001410_dead_letter_email_sealed.sql`,
    );
    const [up, down] = text.split("-- migrate:down");
    // back to the layout before the migration (functions that use the column stay as they are)
    await db.sql.begin((tx) => tx.unsafe(down));
    await db.sql`
      insert into quality.dead_letter (batch_id, source, reasons, user_email)
      values (1, 'old.csv', array['zero_price'], 'old@example.com'),
             (1, 'old.csv', array['zero_price'], null)`;
    await db.sql.begin((tx) => tx.unsafe(up.replace("-- migrate:up", "")));
    await applyDefinitions(db.sql);
    const rows = await db.sql`
      select core.unseal_email(user_email_sealed) as email, user_email_sealed is null as empty
      from quality.dead_letter order by dead_letter_id`;
    assertEquals(rows.map((r) => [r.email, r.empty]), [["old@example.com", false], [null, true]]);
  } finally {
    await db.drop();
  }
});
