// generate(): CSV event files from a simulated shop, with anomalies, duplicates and late events
// at known rates, and a manifest of what each file must yield once ingested (deno task
// generate, scripts/generate.ts, is its command line).
//
// The story: plan -> write the files one by one -> manifest. The shop, the anomalies and the
// CSV writing live beside this file.
import { type Run, startRun, writeEventFile } from "./file.ts";
import { type FileManifest, type Manifest, totalsOf } from "./manifest.ts";
import { fileName, filePath, type GenerateOptions, makePlan, type Plan, windowOf } from "./plan.ts";
import { LIMITS } from "../common/contract.ts";
import { writeTextAtomic } from "./writer.ts";

export type { Counts, FileManifest, Manifest, ReasonCounts } from "./manifest.ts";
export { type GenerateOptions, OptionError, type Plan } from "./plan.ts";

/** Ways to watch or stop a run (the CLI prints from these). */
export interface GenerateHooks {
  /** Stops the run after the file in hand (a continuous run ends only this way). */
  signal?: AbortSignal;
  /** Called once the options are checked, before anything is written. */
  onStart?: (plan: Plan) => void;
  /** Called after each file is complete under its final name. */
  onFile?: (file: FileManifest, totals: Manifest["totals"]) => void;
  /** Rows written so far in the run (every few thousand rows). */
  onProgress?: (rows: number) => void;
}

const DAY = 86_400_000;

/** Writes the files of a run and returns (and with `manifestPath`, writes) its manifest. */
export async function generate(options: GenerateOptions & GenerateHooks = {}): Promise<Manifest> {
  const { signal, onStart, onFile, onProgress } = options;

  // 1. The plan: options checked, defaults filled in, a seed drawn if none was given.
  const startedAt = Date.now();
  const plan = makePlan(options, startedAt);
  onStart?.(plan);

  // 2. The output directory. A fixed run refuses to start if any of its files exists.
  await Deno.mkdir(plan.outDir, { recursive: true });
  if (!plan.continuous) await assertAbsent(plan);

  // 3. The files, one at a time. A continuous run writes one every interval of real time, and
  //    never before its window is over (with the default start both are the same instant).
  const run = startRun(plan);
  const files: FileManifest[] = [];
  let rowsBefore = 0;
  for (let k = 0; k < plan.files && !signal?.aborted; k++) {
    if (plan.continuous) {
      const due = Math.max(startedAt + (k + 1) * plan.intervalMs, windowOf(plan, k)[1]);
      if (!await sleepUntil(due, signal)) break;
    }
    const file = await writeEventFile(run, k, (rows) => onProgress?.(rowsBefore + rows));
    rowsBefore += file.rows;
    files.push(file);
    onFile?.(file, totalsOf(files));
    if (plan.continuous && plan.manifestPath) {
      await writeManifest(plan.manifestPath, manifestOf(plan, run, files));
    }
  }

  // 4. The manifest: what the pipeline must report for these files.
  const manifest = manifestOf(plan, run, files);
  if (plan.manifestPath) await writeManifest(plan.manifestPath, manifest);
  return manifest;
}

function manifestOf(plan: Plan, run: Run, files: FileManifest[]): Manifest {
  // every row dated inside a window is at most its end: from then on none of them is future
  const from = windowOf(plan, Math.max(0, files.length - 1))[1];
  const to = Math.min(
    from + DAY,
    run.anomalies.ctx.firstFutureMs - LIMITS.futureToleranceMs - 1,
  );
  return {
    seed: plan.seed,
    start_time: new Date(plan.startMs).toISOString(),
    schema_version: plan.schemaVersion,
    id_version: plan.idVersion,
    events_per_file: plan.dailyEvents === null ? plan.events : null,
    daily_events: plan.dailyEvents,
    shop_seed: plan.shopSeed,
    interval_seconds: plan.intervalMs / 1000,
    rates: { anomaly: plan.anomalyRate, duplicate: plan.duplicateRate, late: plan.lateRate },
    valid_for_ingestion: { from: new Date(from).toISOString(), to: new Date(to).toISOString() },
    files,
    totals: totalsOf(files),
  };
}

async function writeManifest(path: string, manifest: Manifest): Promise<void> {
  const dir = path.replace(/[/\\][^/\\]*$/, "");
  if (dir !== path && dir !== "") await Deno.mkdir(dir, { recursive: true });
  await writeTextAtomic(path, JSON.stringify(manifest, null, 2) + "\n");
}

/** Fails if any file of a fixed run (or its .tmp) is already in the output directory. */
async function assertAbsent(plan: Plan): Promise<void> {
  const present = new Set<string>();
  for await (const entry of Deno.readDir(plan.outDir)) present.add(entry.name);
  for (let k = 0; k < plan.files; k++) {
    const name = fileName(plan, k);
    if (present.has(name) || present.has(`${name}.tmp`)) {
      throw new Error(
        `File "${
          filePath(plan, k)
        }" already exists; use another --seed or --start-time, or another --out`,
      );
    }
  }
}

/** Resolves true at wall-clock time `ms`, or false as soon as `signal` aborts. */
function sleepUntil(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, Math.max(0, ms - Date.now()));
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
