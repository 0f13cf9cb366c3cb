// Backup and restore as docs/operations.md describes them: pg_dump -Fc of a loaded database,
// pg_restore into an empty one, then migrate (a no-op) and keep loading. Needs pg_dump and
// pg_restore of PostgreSQL 18 (an older pg_dump refuses the server): from PATH, else the
// PostgreSQL 18 that scripts/citus.sh builds against (CI builds it before the tests).
import { assert, assertEquals } from "./lib/testing/assert.ts";
import { catalog } from "./lib/testing/catalog.ts";
import { testDb } from "./lib/testing/testdb.ts";
import { loadConfig } from "./lib/common/config.ts";
import { bytesSource, loadSource, settings } from "./lib/batch/mod.ts";
import { applyDefinitions, dbmate } from "./lib/migrate/migrate.ts";
import { dbmatePath } from "./lib/testing/testdb.ts";

const root = new URL("..", import.meta.url).pathname;

async function output(cmd: string, args: string[]): Promise<string | null> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch {
    return null;
  }
}

/** The directory of a PostgreSQL 18 pg_dump, or null. */
async function pg18Bin(): Promise<string | null> {
  const onPath = await output("bash", ["-c", 'dirname "$(command -v pg_dump)"']);
  for (const dir of [onPath, await output("bash", [`${root}scripts/citus.sh`, "pgbin"])]) {
    if (!dir) continue;
    const v = await output(`${dir}/pg_dump`, ["--version"]);
    if (v && Number(/(\d+)\.\d+/.exec(v)?.[1]) >= 18) return dir;
  }
  return null;
}

const bin = await pg18Bin();
if (!bin) {
  const why =
    "backup_test: no pg_dump of PostgreSQL 18 (PATH, or scripts/citus.sh build with CITUS_TARBALL)";
  if (Deno.env.get("CI")) throw new Error(`${why}: CI must provide one`);
  console.error(`${why}: skipped`);
}

const csv = (tag: string) =>
  new TextEncoder().encode(
    "event_id,event_time,event_type,user_id,session_id,product_id,category,price,quantity,user_email\n" +
      `0190e000-0000-7000-8000-${tag}00000001,2026-11-29T10:00:00Z,view,1,s1,10,books,,,a@example.com\n` +
      `0190e000-0000-7000-8000-${tag}00000002,2026-11-29T10:01:00Z,purchase,1,s1,10,books,12.50,2,a@example.com\n` +
      `0190e000-0000-7000-8000-${tag}00000003,2026-11-29T10:02:00Z,purchase,1,s1,10,books,-1,2,b@example.com\n`,
  );

Deno.test({
  name: "pg_dump -Fc + pg_restore: same catalog and data, migrate is a no-op, loading goes on",
  ignore: !bin,
  async fn() {
    const cfg = settings(loadConfig({}));
    const src = await testDb("backup_src");
    const dst = await testDb("backup_dst", { empty: true });
    const dir = await Deno.makeTempDir({ prefix: "backup-" });
    try {
      await loadSource(src.sql, bytesSource(csv("0000")), "a.csv", cfg);
      const file = `${dir}/ecommerce.dump`;
      for (
        const [tool, args] of [
          ["pg_dump", ["-Fc", "-d", src.url, "-f", file]],
          ["pg_restore", ["--exit-on-error", "-d", dst.url, file]],
        ] as const
      ) {
        const out = await new Deno.Command(`${bin}/${tool}`, { args: [...args], stderr: "piped" })
          .output();
        assert(out.success, `${tool}: ${new TextDecoder().decode(out.stderr)}`);
      }
      const counts = (sql: typeof src.sql) =>
        sql`
        select (select count(*)::int from core.events) as events,
               (select count(*)::int from core.event_ids) as ids,
               (select count(*)::int from quality.dead_letter) as dead,
               (select count(*)::int from quality.batch_metrics) as batches,
               (select sum(events)::int from analytics.daily_sales) as analytics,
               (select string_agg(version, ',' order by version) from public.schema_migrations)
                 as migrations`;
      assertEquals(await counts(dst.sql), await counts(src.sql));
      assertEquals((await counts(dst.sql))[0].events, 2);
      // an ACL that only spells out the owner's default rights is restored as the default, and
      // column numbers close the gaps of dropped columns (the order stays)
      const same = (lines: string[]) =>
        lines.map((l) =>
          l.replace("acl={pipeline_owner=arwdDxtm/pipeline_owner}", "acl=default")
            .replace(/ #\d+$/, "")
        );
      const [a, b] = [same(await catalog(src.sql)), same(await catalog(dst.sql))];
      assertEquals(b.filter((l) => !a.includes(l)), [], "only in the restored database");
      assertEquals(a.filter((l) => !b.includes(l)), [], "only in the dumped database");
      // the sealed dead-letter email came along with its key: the owner still reads it
      const [{ email }] = await dst.sql`
        select core.unseal_email(user_email_sealed) as email from quality.dead_letter`;
      assertEquals(email, "b@example.com");

      // migrate on the restored database changes nothing, and it keeps loading
      const before = await catalog(dst.sql);
      const up = await dbmate(await dbmatePath(), dst.url, "up");
      assert(!/Applying/.test(up), up);
      await applyDefinitions(dst.sql);
      assertEquals(await catalog(dst.sql), before);
      const r = await loadSource(dst.sql, bytesSource(csv("0001")), "b.csv", cfg);
      assertEquals([r.result!.valid, r.result!.invalid], [2, 1]);
      const again = await loadSource(dst.sql, bytesSource(csv("0000")), "a-again.csv", cfg);
      assertEquals(again.outcome, "duplicate_file"); // the ledger came along too
    } finally {
      await Deno.remove(dir, { recursive: true });
      await src.drop();
      await dst.drop();
    }
  },
});
