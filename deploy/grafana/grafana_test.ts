// The provisioned Grafana dashboard (deploy/grafana/dashboards/*.json), checked without Grafana:
// well-formed, every SQL query runs as the analyst on a migrated database with data (Grafana's
// time macros replaced by a wide window) and reads only analytics views that exist, every
// PromQL metric is one /metrics exposes, and the provisioning points at those data sources.
import { assert, assertEquals } from "../../scripts/lib/testing/assert.ts";
import { loadConfig } from "../../scripts/lib/common/config.ts";
import { connect } from "../../scripts/lib/common/db.ts";
import { logger } from "../../scripts/lib/common/log.ts";
import { createApp } from "../../scripts/lib/collector/app.ts";
import { bytesSource, loadSource, settings } from "../../scripts/lib/batch/mod.ts";
import { testDb } from "../../scripts/lib/testing/testdb.ts";

const here = new URL(".", import.meta.url).pathname;

interface Target {
  refId: string;
  datasource: { type: string; uid: string };
  rawSql?: string;
  expr?: string;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  targets?: Target[];
}

async function dashboards() {
  const out: { file: string; json: { uid: string; title: string; panels: Panel[] } }[] = [];
  for await (const e of Deno.readDir(`${here}dashboards`)) {
    if (!e.name.endsWith(".json")) continue;
    const text = await Deno.readTextFile(`${here}dashboards/${e.name}`);
    out.push({ file: e.name, json: JSON.parse(text) });
  }
  assert(out.length > 0, "no dashboard JSON in deploy/grafana/dashboards");
  return out;
}

const targets = (panels: Panel[]) =>
  panels.flatMap((p) => (p.targets ?? []).map((t) => ({ p, t })));

/** Grafana's macros as PostgreSQL: a window wide enough to include the test data. */
export function expand(
  sql: string,
  vars: Record<string, string> = { affinity_min_sessions: "1" },
): string {
  for (const [name, value] of Object.entries(vars)) sql = sql.replaceAll(`$${name}`, value);
  return sql
    .replaceAll(
      /\$__timeFilter\(([^()]*(?:\([^()]*\))?[^()]*)\)/g,
      "($1 between now() - interval '30 days' and now() + interval '1 day')",
    )
    .replaceAll("$__timeFrom()", "(now() - interval '30 days')")
    .replaceAll("$__timeTo()", "(now() + interval '1 day')");
}

Deno.test("Grafana dashboard: well-formed, unique ids, data sources the provisioning defines", async () => {
  const ds = await Deno.readTextFile(`${here}provisioning/datasources/datasources.yml`);
  for (const { file, json } of await dashboards()) {
    assert(json.uid && json.title, `${file}: uid and title`);
    const ids = json.panels.map((p) => p.id);
    assertEquals(new Set(ids).size, ids.length, `${file}: panel ids are unique`);
    const ts = targets(json.panels);
    assert(ts.some(({ t }) => t.rawSql) && ts.some(({ t }) => t.expr), `${file}: SQL and PromQL`);
    for (const { p, t } of ts) {
      assert(
        ds.includes(`uid: ${t.datasource.uid}`),
        `${file} "${p.title}": data source ${t.datasource.uid}`,
      );
      assert(t.rawSql || t.expr, `${file} "${p.title}" ${t.refId}: a query`);
    }
  }
});

Deno.test("Grafana dashboard: every SQL query runs as the analyst and reads existing analytics views", async () => {
  const db = await testDb("grafana_sql");
  const analyst = connect({ url: db.url, role: "pipeline_analyst", max: 1 });
  try {
    const t = new Date(Date.now() - 3_600_000).toISOString();
    const id = (n: number) => `0190e000-0000-7000-8000-${String(n).padStart(12, "0")}`;
    const csv =
      "event_id,event_time,event_type,user_id,session_id,product_id,category,price,quantity\n" +
      `${id(1)},${t},view,7,s1,1,books,,\n${id(2)},${t},purchase,7,s1,1,books,5.00,1\n` +
      `${id(3)},${t},purchase,7,s1,2,toys,6.00,1\n${id(4)},${t},purchase,7,s1,3,toys,-1,1\n` +
      `${id(5)},${t},add_to_cart,7,s1,4,beauty,3.00,1\n`;
    await loadSource(
      db.sql,
      bytesSource(new TextEncoder().encode(csv)),
      "g.csv",
      settings(loadConfig({})),
    );
    // the views and functions of the analytics schema the analyst may use
    const views = new Set(
      (await db.sql`
        select table_name as name from information_schema.views where table_schema = 'analytics'
        union
        select p.proname from pg_proc as p join pg_namespace as n on n.oid = p.pronamespace
        where n.nspname = 'analytics'
            and has_function_privilege('pipeline_analyst', p.oid, 'execute')`)
        .map((r) => r.name as string),
    );
    let ran = 0;
    for (const { file, json } of await dashboards()) {
      for (const { p, t } of targets(json.panels)) {
        if (!t.rawSql) continue;
        const at = `${file} "${p.title}" ${t.refId}`;
        const read = [...t.rawSql.matchAll(/\b([a-z_]+)\.([a-z_]+)\b/g)].map((m) => [m[1], m[2]]);
        assert(read.length > 0, `${at}: reads a view`);
        for (const [schema, name] of read) {
          assertEquals(schema, "analytics", `${at}: reads only the analytics schema`);
          assert(
            views.has(name),
            `${at}: analytics.${name} is not a view or function of a migrated database`,
          );
        }
        const rows = await analyst.unsafe(expand(t.rawSql));
        assert(rows.length > 0, `${at}: no rows on a database with data`);
        ran++;
      }
    }
    assert(ran >= 10, `only ${ran} SQL queries`);
  } finally {
    await analyst.end({ timeout: 2 });
    await db.drop();
  }
});

Deno.test("Grafana data quality panel: an hour without batches is a gap in validity and 0 rows", async () => {
  const db = await testDb("grafana_quality_gap");
  const analyst = connect({ url: db.url, role: "pipeline_analyst", max: 1 });
  try {
    const [{ json }] = (await dashboards()).filter((d) => d.file === "ecommerce-pipeline.json");
    const p = json.panels.find((x) => x.title.startsWith("Data quality: validity")) as
      & Panel
      & {
        fieldConfig: {
          defaults: { custom?: { spanNulls?: boolean } };
          overrides: { matcher: { options: string } }[];
        };
      };
    assert(p, "the data quality panel");
    // a NULL validity breaks the line (Grafana joins across nulls only with spanNulls)
    assertEquals(p.fieldConfig.defaults.custom?.spanNulls, false);
    const t = Date.now() - 3_600_000;
    const id = (n: number) => `0190e000-0000-7000-8000-${String(n).padStart(12, "0")}`;
    const header =
      "event_id,event_time,event_type,user_id,session_id,product_id,category,price,quantity\n";
    for (const [n, price] of [[1, "5.00"], [2, "-1"]] as const) {
      await loadSource(
        db.sql,
        bytesSource(new TextEncoder().encode(
          header + `${id(n)},${new Date(t).toISOString()},purchase,7,s1,1,books,${price},1\n`,
        )),
        `q${n}.csv`,
        settings(loadConfig({})),
      );
    }
    // the first batch was ingested 3 hours before the second: two hours without batches
    await db.sql`
      update quality.batch_metrics set finished_at = finished_at - interval '3 hours'
      where batch_id = (select min(batch_id) from quality.batch_metrics)`;
    await db.sql`select analytics.rebuild_rollups()`;
    const rows = await analyst.unsafe(expand(p.targets![0].rawSql!));
    assertEquals(rows.map((r) => [r.validity, r.rows]), [
      ["1.000000", 1],
      [null, 0],
      [null, 0],
      ["0.000000", 1],
    ]);
    assertEquals(rows[3].time.getTime() - rows[0].time.getTime(), 3 * 3_600_000);
  } finally {
    await analyst.end({ timeout: 2 });
    await db.drop();
  }
});

Deno.test("Grafana dashboard: every PromQL metric is one /metrics exposes", async () => {
  const db = await testDb("grafana_metrics");
  const dir = await Deno.makeTempDir({ prefix: "grafana_test_" });
  const cfg = loadConfig({
    DATABASE_URL: db.url,
    API_KEYS: "k",
    DATA_DIR: dir,
    LOG_DIR: `${dir}/logs`,
  });
  const ingest = connect({ url: db.url, role: "pipeline_ingest", max: 1 });
  const analyst = connect({ url: db.url, role: "pipeline_analyst", max: 1 });
  try {
    const app = createApp({
      cfg,
      ingest,
      analyst,
      log: logger("g", { level: "error", dir: `${dir}/logs`, quiet: true }),
    });
    // one request first, so the per-route series exist
    await (await app.fetch(new Request("http://g.test/health"))).body?.cancel();
    const text = await (await app.fetch(new Request("http://g.test/metrics"))).text();
    const exposed = new Set<string>();
    for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      exposed.add(m[1]);
      if (m[2] === "histogram") {
        for (const s of ["_bucket", "_sum", "_count"]) exposed.add(m[1] + s);
      }
    }
    assert(exposed.size > 10, "metrics exposition");
    let checked = 0;
    for (const { file, json } of await dashboards()) {
      for (const { p, t } of targets(json.panels)) {
        if (!t.expr) continue;
        const names = [...t.expr.matchAll(/\b(pipeline_[a-z0-9_]+)\b/g)].map((m) => m[1]);
        assert(names.length > 0, `${file} "${p.title}": names a pipeline metric`);
        for (const n of names) {
          assert(exposed.has(n), `${file} "${p.title}": ${n} is not exposed by /metrics`);
          checked++;
        }
      }
    }
    assert(checked >= 5);
  } finally {
    await Promise.all([ingest.end({ timeout: 2 }), analyst.end({ timeout: 2 })]);
    await db.drop();
    await Deno.remove(dir, { recursive: true });
  }
});
