// What the collector benches share (bench/http.ts, load/browser.ts): whether a collector answers,
// and the file path's CPU a row on generated rows, the yardstick an HTTP event is held to.
import { join } from "node:path";
import type { Config } from "../scripts/lib/common/config.ts";
import { connect } from "../scripts/lib/common/db.ts";
import { loadFile, settings } from "../scripts/lib/batch/mod.ts";
import { testDb } from "../scripts/lib/testing/testdb.ts";
import { generate } from "../scripts/lib/generator/generate.ts";
import { cpuOf, localDataDir, postgresCpu } from "./cpu.ts";

/** Whether something answers GET /health at `base` with 2xx. */
export async function healthy(base: string): Promise<boolean> {
  try {
    const r = await fetch(`${base}/health`);
    await r.body?.cancel();
    return r.ok;
  } catch {
    return false;
  }
}

/** The file path's cost on `rows` generated rows. */
export interface FilePathCost {
  rows: number;
  seconds: number;
  rows_per_s: number;
  cpu_us_per_row: { loader: number; postgres: number; total: number };
}

/**
 * Loads `rows` generated rows (`seed`) as one file with loadFile, in this process, into a
 * database of its own (`dbName`, dropped after) on this clone's cluster, and measures the CPU
 * of this process and of the cluster a row.
 */
export async function filePathCost(
  cfg: Config,
  rows: number,
  seed: number,
  dbName: string,
): Promise<FilePathCost> {
  const dir = await Deno.makeTempDir({ prefix: "file_path_cost_" });
  const manifest = await generate({ files: 1, events: rows, seed, outDir: dir });
  const db = await testDb(dbName);
  const ingest = connect({ url: db.url, role: cfg.INGEST_ROLE, max: 2 });
  try {
    const c0 = { self: cpuOf(Deno.pid), postgres: postgresCpu(localDataDir) };
    const t0 = performance.now();
    await loadFile(ingest, join(dir, manifest.files[0].name), settings(cfg));
    const seconds = (performance.now() - t0) / 1000;
    const c1 = { self: cpuOf(Deno.pid), postgres: postgresCpu(localDataDir) };
    const n = manifest.totals.rows;
    const us = (ms: number) => Math.round(ms * 1000 / Math.max(1, n) * 10) / 10;
    return {
      rows: n,
      seconds: Math.round(seconds * 10) / 10,
      rows_per_s: Math.round(n / seconds),
      cpu_us_per_row: {
        loader: us(c1.self - c0.self),
        postgres: us(c1.postgres - c0.postgres),
        total: us(c1.self - c0.self + c1.postgres - c0.postgres),
      },
    };
  } finally {
    await ingest.end();
    await db.drop();
    await Deno.remove(dir, { recursive: true });
  }
}
