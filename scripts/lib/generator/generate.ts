// `deno task generate`: CSV event files from a simulated shop, with anomalies, duplicates and late
// events at known rates, and a manifest of what each file must yield once ingested.
//
// The story: flags -> plan -> write the files one by one -> manifest. The shop, the anomalies
// and the CSV writing live in scripts/lib/generator/.
import { type Run, startRun, writeEventFile } from "./lib/generator/file.ts";
import { HELP, parseFlags } from "./lib/generator/flags.ts";
import { type FileManifest, type Manifest, totalsOf } from "./lib/generator/manifest.ts";
import {
  fileName,
  filePath,
  type GenerateOptions,
  makePlan,
  OptionError,
  type Plan,
  windowOf,
} from "./lib/generator/plan.ts";
import { LIMITS } from "./lib/common/contract.ts";
import { writeTextAtomic } from "./lib/generator/writer.ts";
import { EventProducer, topicsOf } from "./lib/kafka/producer.ts";

export type { Counts, FileManifest, Manifest, ReasonCounts } from "./lib/generator/manifest.ts";
export { type GenerateOptions, OptionError, type Plan } from "./lib/generator/plan.ts";

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

// ---------------------------------------------------------------------------------------------
// Command line

const rate = (rows: number, ms: number) => Math.round(rows / Math.max(ms, 1) * 1000);

/** Runs the command; returns the exit status (0 done, 1 failed, 2 bad flags). */
export async function main(args: string[]): Promise<number> {
  let cli;
  try {
    cli = parseFlags(args);
  } catch (error) {
    if (!(error instanceof OptionError)) throw error;
    console.error(`error: ${error.message}`);
    return 2;
  }
  if (cli.help) {
    console.log(HELP);
    return 0;
  }
  const { quiet } = cli;
  const controller = new AbortController();
  const stop = () => {
    if (!controller.signal.aborted && !quiet) console.error("generate: stopping after this file");
    controller.abort();
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, stop);

  const producer = cli.kafka
    ? new EventProducer({
      client: { brokers: cli.kafka.brokers },
      topic: cli.kafka.topic,
      routeByType: cli.kafka.routeByType,
      format: cli.kafka.format,
    })
    : undefined;
  let producing = producer?.connect() ?? Promise.resolve();
  producing.catch(() => {}); // awaited after the run: the failure is reported there
  const started = performance.now();
  let total = 0;
  let lastReport = started;
  let plan: Plan | undefined;
  try {
    const manifest = await generate({
      ...cli.options,
      signal: controller.signal,
      onStart(p) {
        plan = p;
        if (quiet) return;
        const size = p.dailyEvents === null
          ? `${p.events} rows`
          : `rows following the daily cycle (${p.dailyEvents} a day)`;
        const what = p.continuous
          ? `a file of ${size} every ${p.intervalMs / 1000} s until stopped`
          : `${p.files} file(s) x ${size}`;
        console.error(
          `generate: seed ${p.seed}${p.seedDrawn ? " (random)" : ""}, start ${
            new Date(p.startMs).toISOString()
          }, ${what}, schema v${p.schemaVersion} -> ${p.outDir}`,
        );
      },
      onFile(file, totals) {
        if (producer) {
          producing = producing.then(() => producer.sendFile(`${plan!.outDir}/${file.name}`));
          producing.catch(() => {});
        }
        if (quiet || !plan?.continuous) return;
        const ms = performance.now() - started;
        console.log(
          `${file.name} rows=${file.rows} total=${totals.rows} rate=${rate(totals.rows, ms)}/s`,
        );
      },
      onProgress(rows) {
        total = rows;
        const now = performance.now();
        if (quiet || plan?.continuous || now - lastReport < 1000) return;
        lastReport = now;
        const all = plan!.dailyEvents === null
          ? plan!.files * plan!.events
          : Math.round(plan!.dailyEvents * plan!.files * plan!.intervalMs / 86_400_000);
        console.error(
          `generate: ${rows}/${all} rows (${Math.floor(rows / all * 100)}%), ${
            rate(rows, now - started)
          } rows/s`,
        );
      },
    });
    await producing;
    if (producer) {
      await producer.disconnect();
      if (!quiet) {
        console.error(
          `generate: produced ${producer.sent} messages to ${
            topicsOf({ topic: cli.kafka!.topic, routeByType: cli.kafka!.routeByType }).join(",")
          } (${cli.kafka!.format})`,
        );
      }
    }
    if (!quiet) {
      const ms = performance.now() - started;
      const t = manifest.totals;
      console.log(
        `generate: wrote ${t.files} file(s), ${t.rows} rows (${t.valid} valid, ${t.duplicates} duplicate, ${t.invalid} invalid) to ${
          plan!.outDir
        } in ${(ms / 1000).toFixed(2)} s, ${rate(t.rows, ms)} rows/s; seed ${manifest.seed}${
          plan!.manifestPath ? `, manifest ${plan!.manifestPath}` : ""
        }`,
      );
    }
    return 0;
  } catch (error) {
    if (error instanceof OptionError) {
      console.error(`error: ${error.message}`);
      return 2;
    }
    const cause = error instanceof Error && error.cause instanceof Error
      ? `: ${error.cause.message}`
      : "";
    console.error(`error: ${error instanceof Error ? error.message : String(error)}${cause}`);
    if (total > 0 && !quiet) {
      console.error(`generate: ${total} rows were written before the failure`);
    }
    return 1;
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, stop);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
