// deno task serve: the HTTP collector (POST /v1/events), health, Prometheus metrics, analytics
// JSON and the live dashboard. Wires config, database pools, logger and Deno.serve; the app
// itself is scripts/lib/collector/app.ts.
import { parseFlags } from "./lib/common/cli.ts";
import { config } from "./lib/common/config.ts";
import { absorbDriverCrashes, connect } from "./lib/common/db.ts";
import { createApp } from "./lib/collector/app.ts";
import { checkExposure } from "./lib/collector/exposure.ts";
import { loadAssets } from "./lib/collector/dashboard.ts";
import { purge, TTL_HOURS } from "./lib/collector/idempotency.ts";
import { logger } from "./lib/common/log.ts";

const HELP = `Usage: deno task serve [--port N] [--hostname H] [--allow-insecure-defaults]

The HTTP collector of the event pipeline.

  POST /v1/events              a batch of events: text/csv (header line + rows) or
                               application/x-ndjson (one JSON object per line);
                               Authorization: Bearer <API_KEYS key>; optional Idempotency-Key
  GET  /health                 database reachable? age of the last batch (503 when down)
  GET  /metrics                Prometheus text format
  GET  /v1/analytics[/<view>]  rows of an analytics view (?limit=N&column=value)
  GET  /v1/dashboard           every dashboard series as JSON
  GET  /                       the live dashboard (with READ_KEYS: open /#key=<read key>)
  (with READ_KEYS set, /v1/analytics and /v1/dashboard need Authorization: Bearer <read key>)

Options:
  --port N        listen on this port (default: SERVE_PORT, 8080; 0 picks a free one)
  --hostname H    listen on this address (default: SERVE_HOST, 127.0.0.1). A non-loopback
                  address is refused while API_KEYS holds the demo key or EMAIL_HASH_KEY is
                  the default
  --allow-insecure-defaults
                  listen on a network address anyway (a demo; ALLOW_INSECURE_DEFAULTS=1)
  -h, --help      show this help

Configuration (environment or .env): SERVE_HOST, SERVE_PORT, API_KEYS (comma-separated),
READ_KEYS (comma-separated, for analytics and the dashboard), MAX_BODY_BYTES,
MAX_CONCURRENT_BATCHES, HTTP_ANALYTICS, ANALYTICS_INTERVAL_MS, DATABASE_URL, INGEST_ROLE,
ANALYST_ROLE, DATA_DIR, LOG_LEVEL, LOG_DIR.
SIGINT/SIGTERM: refuse new requests (503), finish those in flight (up to 30 s), exit; a second
signal exits at once.`;

/** How long a stop waits for requests in flight. */
const DRAIN_SECONDS = 30;

async function main() {
  const values = parseFlags(Deno.args, {
    port: { type: "string" },
    hostname: { type: "string" },
    "allow-insecure-defaults": { type: "boolean", default: false },
  }, HELP);
  const cfg = config();
  const hostname = values.hostname ?? cfg.SERVE_HOST;
  const exposure = checkExposure(
    hostname,
    cfg,
    values["allow-insecure-defaults"] || cfg.ALLOW_INSECURE_DEFAULTS === "1",
  );
  if (exposure.refuse) {
    console.error(`error: ${exposure.refuse}`);
    Deno.exit(2);
  }
  const port = values.port === undefined ? cfg.SERVE_PORT : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`error: --port must be a whole number from 0 to 65535 (got "${values.port}")`);
    Deno.exit(2);
  }
  const log = logger("serve");
  for (const w of exposure.warnings) log.warn(w);
  absorbDriverCrashes((e) =>
    log.warn("database driver failed on a lost connection: that request failed", {
      error: e.message,
    })
  );
  // one connection per batch slot: a batch never waits for a connection
  const ingest = connect({
    role: cfg.INGEST_ROLE,
    max: cfg.MAX_CONCURRENT_BATCHES,
    connectTimeout: 5,
  });
  const analyst = connect({ role: cfg.ANALYST_ROLE, max: 4, connectTimeout: 5 });
  const app = createApp({ cfg, ingest, analyst, log, assets: await loadAssets() });

  const purgeOld = async () => {
    try {
      const n = await purge(ingest);
      if (n > 0) log.info("idempotency records purged", { rows: n, older_than_hours: TTL_HOURS });
    } catch (error) {
      log.warn("idempotency purge failed: retried next hour", { error: (error as Error).message });
    }
  };
  const purgeTimer = setInterval(purgeOld, 3600_000);
  purgeOld();

  const server = Deno.serve({
    port,
    hostname,
    onListen: ({ hostname, port }) =>
      log.info("listening", {
        url: `http://${hostname}:${port}/`,
        max_concurrent_batches: cfg.MAX_CONCURRENT_BATCHES,
        max_body_bytes: cfg.MAX_BODY_BYTES,
      }),
    onError: (error) => {
      log.error("unhandled request error", { error: (error as Error).message });
      return new Response(JSON.stringify({ error: "Internal error" }), {
        status: 500,
        headers: { "content-type": "application/json" },
      });
    },
  }, app.fetch);

  // HTTP_ANALYTICS=deferred: batches queue their analytics; rounds add them to the rollups
  app.deferred?.start();

  let stopping = false;
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => {
      if (stopping) {
        log.warn(`${sig} again: exiting now`);
        Deno.exit(130);
      }
      stopping = true;
      log.info(`${sig}: refusing new requests; finishing the ones in flight`, {
        batches_in_flight: app.limiter.inFlight,
      });
      // Deno's shutdown() cuts request bodies still streaming: let those finish first
      app.drain(DRAIN_SECONDS * 1000).then(() => server.shutdown());
    });
  }
  await server.finished;
  clearInterval(purgeTimer);
  await app.deferred?.stop();
  await Promise.all([ingest.end({ timeout: 5 }), analyst.end({ timeout: 5 })]);
  log.info("stopped");
}

if (import.meta.main) await main();
