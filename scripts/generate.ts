// `deno task generate`: CSV event files from a simulated shop, with anomalies, duplicates and late
// events at known rates, and a manifest of what each file must yield once ingested.
//
// The story: flags -> generate() (lib/generator/generate.ts: plan -> files -> manifest) ->
// progress lines, and optionally every event to Kafka.
import { HELP, parseFlags } from "./lib/generator/flags.ts";
import { generate } from "./lib/generator/generate.ts";
import { OptionError, type Plan } from "./lib/generator/plan.ts";
import { EventProducer, topicsOf } from "./lib/kafka/producer.ts";

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
