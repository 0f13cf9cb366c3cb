// make demo's history and live stretch, generated and loaded into a test database (at a pace
// the test chooses): what the generator and dashboard tests look at "after a demo".
import type { Sql } from "../common/db.ts";
import { loadConfig } from "../common/config.ts";
import { fileSource, loadSource, settings } from "../batch/mod.ts";
import { generate, type Manifest } from "../generator/generate.ts";
import { type DemoOptions, historyRuns, liveRun } from "../generator/demo.ts";

/** Generates the demo's runs into `dir` and loads them (history as a backfill); the live manifest. */
export async function loadDemo(
  sql: Sql,
  o: DemoOptions,
  now: number,
  dir: string,
): Promise<Manifest> {
  const backfill = settings(loadConfig({ LATE_AFTER_SECONDS: String(400 * 86_400) }));
  const load = async (d: string, m: Manifest, cfg: typeof backfill) => {
    for (const f of m.files) {
      const r = await loadSource(sql, await fileSource(`${d}/${f.name}`), f.name, cfg);
      // at night a minute may hold nothing (a file of its header alone: empty) or a single
      // re-sent event whose file has the same bytes as the one it was first sent in (a
      // duplicate file): the ingester files both so, and they add no event
      const repeated = (f.rows === 0 && r.outcome === "empty") || r.outcome === "duplicate_file";
      if (r.outcome !== "loaded" && !repeated) {
        throw new Error(`${f.name} was not loaded: ${r.outcome} (${f.rows} rows)`);
      }
    }
  };
  for (const run of historyRuns(o, now, `${dir}/history`)) {
    await load(`${dir}/history`, await generate(run), backfill);
  }
  const live = await generate(liveRun(o, now, `${dir}/live`));
  await load(`${dir}/live`, live, settings(loadConfig({})));
  return live;
}
