// `deno bench --allow-all scripts/generate_bench.ts`: generator throughput. Each benchmark writes
// 1,000,000 rows (default rates); rows/s = 1,000,000 / the time per iteration.
import { generate, type GenerateOptions } from "./lib/generator/generate.ts";

const ROWS = 1_000_000;
const dir = await Deno.makeTempDir({ prefix: "generate_bench_" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

let run = 0;

function bench(name: string, options: GenerateOptions) {
  Deno.bench({
    name,
    n: 3,
    warmup: 1,
    async fn(b) {
      const outDir = `${dir}/${run++}`;
      b.start();
      await generate({ seed: 1, startTime: "2026-11-21T10:00:00Z", ...options, outDir });
      b.end();
      await Deno.remove(outDir, { recursive: true });
    },
  });
}

bench("1M rows: 1 file, schema v2, UUIDv7", { events: ROWS });
bench("1M rows: 10 files of 100k, schema v2, UUIDv7", { files: 10, events: ROWS / 10 });
bench("1M rows: 1 file, schema v1, UUIDv4", { events: ROWS, schemaVersion: 1, idVersion: 4 });
