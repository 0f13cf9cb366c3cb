// docs/guide-add-a-rule.md, followed literally: its worked example (steps 2 and 3) is applied to
// the SQL files as the guide says, and the new rule must then reject a cleanly written row that
// breaks only it, with exactly its code, while rows that keep it stay valid.
import { stringify } from "csv-stringify/sync";
import { assertEquals } from "../scripts/lib/testing/assert.ts";
import { loadConfig } from "../scripts/lib/common/config.ts";
import { bytesSource, loadSource, settings } from "../scripts/lib/batch/mod.ts";
import { COLUMNS_V2 as COLUMNS } from "../scripts/lib/common/contract.ts";
import { testDb } from "../scripts/lib/testing/testdb.ts";
import { fullPurchase } from "../scripts/lib/testing/fixtures.ts";

const root = new URL("..", import.meta.url).pathname;
const guide = Deno.readTextFileSync(`${root}docs/guide-add-a-rule.md`);

/** The SQL block after `<!-- guide-example: name -->`, without its indentation. */
function example(name: string): string {
  const at = guide.indexOf(`<!-- guide-example: ${name} -->`);
  if (at < 0) throw new Error(`docs/guide-add-a-rule.md has no example "${name}"`);
  const m = guide.slice(at).match(/```sql\n([\s\S]*?)\n\s*```/);
  const lines = m![1].split("\n");
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => l.search(/\S/)));
  return lines.map((l) => l.slice(indent)).join("\n");
}

const sqlFile = (name: string) =>
  Deno.readTextFileSync(`${root}db/functions/ingest/${name}.sql`)
    .replaceAll("create function", "create or replace function");

Deno.test("the guide's example rule, added as the guide says, rejects exactly the rows that break it", async () => {
  // step 2: the code appended after 'invalid_search_query'
  const codes = sqlFile("reason_codes");
  const codesAfter = codes.replace("'invalid_search_query'", example("reason_codes").trim());
  // step 3: the term just before `as mask`
  const check = sqlFile("check_stage");
  const maskAt = check.indexOf("as mask");
  const lineStart = check.lastIndexOf("\n", maskAt) + 1;
  const indent = " ".repeat(maskAt - lineStart);
  const checkAfter = check.slice(0, lineStart) +
    example("check_stage").split("\n").map((l) => indent + l).join("\n") + "\n" +
    check.slice(lineStart);
  assertEquals([codesAfter !== codes, maskAt > 0], [true, true]);

  const db = await testDb("guide_example");
  const cfg = settings(loadConfig({}));
  const id = (i: number) => `0190b000-0000-7000-8000-${String(i).padStart(12, "0")}`;
  const t = new Date(Date.now() - 60_000).toISOString();
  const csv = (emails: string[], from: number) =>
    new TextEncoder().encode(stringify(
      emails.map((e, i) => {
        const r = fullPurchase({ event_id: id(from + i), event_time: t, user_email: e });
        return COLUMNS.map((c) => (r as Record<string, string>)[c] ?? "");
      }),
      { header: true, columns: [...COLUMNS] },
    ));
  const reasons = async () =>
    (await db.sql`select reasons from quality.dead_letter order by line_no`).map((d) => d.reasons);
  try {
    // before: the row is valid (the rule does not exist yet)
    await loadSource(db.sql, bytesSource(csv(["nobody"], 1)), "before.csv", cfg);
    assertEquals(await reasons(), []);

    await db.sql.begin(async (tx) => {
      await tx.unsafe("set local role pipeline_owner");
      await tx.unsafe(codesAfter);
      await tx.unsafe(checkAfter);
    });
    const r = await loadSource(
      db.sql,
      bytesSource(csv(["nobody", "a@example.com", "", "x@y"], 2)),
      "after.csv",
      cfg,
    );
    assertEquals([r.result!.valid, r.result!.invalid], [3, 1]);
    assertEquals(await reasons(), [["invalid_user_email"]]);
  } finally {
    await db.drop();
  }
});
