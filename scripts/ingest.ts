// deno task ingest: loads every CSV dropped into the inbox exactly once, one transaction per
// file, then moves it to processed/ (or rejected/). Watch mode by default; --once drains.
import { parseFlags } from "./lib/common/cli.ts";
import { config, INSECURE_DEFAULTS } from "./lib/common/config.ts";
import { absorbDriverCrashes, connect } from "./lib/common/db.ts";
import { dirsFor, ensureDirs } from "./lib/common/inbox.ts";
import { logger } from "./lib/common/log.ts";
import { createIngestTelemetry, renderIngestMetrics } from "./lib/ingest/telemetry.ts";
import { Ingester } from "./lib/ingest/ingester.ts";

const HELP = `Usage: deno task ingest [--once] [--dir DIR] [--workers N] [--chunks N]
                          [--give-up-after S] [--metrics-port N]

Loads CSV files from the inbox into PostgreSQL, exactly once per content (SHA-256).
Each file is one transaction: COPY, validation, dedupe, events, dead letter, metrics, ledger.
After commit the file moves to processed/ (or rejected/ when its header is unusable).

Options:
  --once               drain the inbox and exit (default: keep watching)
  --dir DIR            the inbox, an existing directory (default: $DATA_DIR/incoming, created);
                       processed/ and rejected/ are created beside it
  --workers N          files loaded in parallel, each its own transaction and connection
                       (default: the number of cores, ${navigator.hardwareConcurrency})
  --chunks N           a file of PARALLEL_FILE_MIN_MB or more (default 32) is staged and checked
                       by N sessions at once, then finished in one transaction (default: the
                       cores divided by the files being loaded at once, at least 1)
  --give-up-after S    with --once: exit 1 when the database stays unreachable this long (default 60)
  --metrics-port N     serve Prometheus metrics on http://INGEST_METRICS_HOST:N/metrics
                       (default: INGEST_METRICS_PORT, 0 = off)
  -h, --help           show this help

Exit code: 0 when every file was handled (bad rows are not failures), 1 when a file could not
be processed or the database stayed unreachable, 2 for bad flags or configuration.
In watch mode, maintenance (retention, partitions ahead: deno task maintain) runs every
MAINTAIN_INTERVAL_MINUTES (default 60; 0 = never).
SIGINT/SIGTERM: finish the file in hand (its transaction commits or rolls back), then exit 0.`;

async function main() {
  const values = parseFlags(Deno.args, {
    once: { type: "boolean", default: false },
    dir: { type: "string" },
    "give-up-after": { type: "string", default: "60" },
    "metrics-port": { type: "string" },
    workers: { type: "string", default: String(navigator.hardwareConcurrency) },
    chunks: { type: "string" },
  }, HELP);
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
    console.error(`error: --workers must be a whole number from 1 to 64 (got "${values.workers}")`);
    Deno.exit(2);
  }
  const chunks = values.chunks === undefined ? undefined : Number(values.chunks);
  if (chunks !== undefined && (!Number.isInteger(chunks) || chunks < 1 || chunks > 64)) {
    console.error(`error: --chunks must be a whole number from 1 to 64 (got "${values.chunks}")`);
    Deno.exit(2);
  }
  const giveUp = Number(values["give-up-after"]);
  if (!Number.isFinite(giveUp) || giveUp <= 0) {
    console.error(
      `error: --give-up-after must be a number of seconds > 0 (got "${values["give-up-after"]}")`,
    );
    Deno.exit(2);
  }
  const cfg = config();
  const log = logger("ingest");
  absorbDriverCrashes((e) =>
    log.warn("database driver failed on a lost connection: the batch will be retried", {
      error: e.message,
    })
  );
  if (values.dir !== undefined) {
    // an explicit inbox must exist: a typo must not create directories and report success
    const info = await Deno.stat(values.dir).catch(() => undefined);
    if (!info?.isDirectory) {
      console.error(
        `error: --dir "${values.dir}" is not an existing directory: create it (mkdir -p) or fix the path`,
      );
      Deno.exit(2);
    }
  }
  const dirs = dirsFor(values.dir ?? `${cfg.DATA_DIR}/incoming`);
  await ensureDirs(dirs);
  if (cfg.EMAIL_HASH_KEY === INSECURE_DEFAULTS.EMAIL_HASH_KEY) {
    log.warn(
      "EMAIL_HASH_KEY is the default: set a secret before real data arrives (hashes made with it cannot be re-keyed later)",
    );
  }

  const stop = new AbortController();
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => {
      if (stop.signal.aborted) Deno.exit(130);
      log.info(`${sig}: finishing the file in hand, then exiting`);
      stop.abort();
    });
  }
  const metricsPort = values["metrics-port"] === undefined
    ? cfg.INGEST_METRICS_PORT
    : Number(values["metrics-port"]);
  if (!Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65535) {
    console.error(
      `error: --metrics-port must be a whole number from 0 (off) to 65535 (got "${
        values["metrics-port"]
      }")`,
    );
    Deno.exit(2);
  }
  // per worker one connection for its batch and one per chunk session, plus one for the
  // inbox report and probes
  const perWorker = chunks ?? Math.max(1, navigator.hardwareConcurrency);
  const sql = connect({ max: workers * (perWorker + 1) + 1 });
  const telemetry = createIngestTelemetry();
  const metrics = metricsPort === 0 ? undefined : Deno.serve(
    {
      port: metricsPort,
      hostname: cfg.INGEST_METRICS_HOST,
      onListen: ({ hostname, port }) =>
        log.info("metrics listening", { url: `http://${hostname}:${port}/metrics` }),
    },
    (req) =>
      new URL(req.url).pathname === "/metrics"
        ? renderIngestMetrics(telemetry, sql, dirs.inbox)
        : new Response("only /metrics here\n", { status: 404 }),
  );
  const ingester = new Ingester({
    dirs,
    sql,
    cfg,
    log,
    signal: stop.signal,
    telemetry,
    workers,
    chunks,
    waitForBusy: values.once,
  });
  let code = 0;
  try {
    if (values.once) {
      const s = await ingester.drain(giveUp * 1000);
      log.info("inbox drained", { files: s.handled, failed: s.failed, rows: s.rows });
      if (s.failed > 0) code = 1;
    } else {
      await ingester.watch();
    }
  } finally {
    await metrics?.shutdown();
    await sql.end({ timeout: 5 });
  }
  log.info("stopped", { exit_code: code });
  Deno.exit(code);
}

if (import.meta.main) await main();
