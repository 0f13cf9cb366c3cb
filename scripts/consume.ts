// deno task consume: Kafka topics -> PostgreSQL, exactly once. Micro-batches through the same
// staging and ingest.process_batch as files and HTTP; the consumer offsets are committed in the
// batch's own transaction (ingest.kafka_offsets), never to Kafka. See docs/kafka.md.
import { parseFlags } from "./lib/common/cli.ts";
import { config, parseDotenv } from "./lib/common/config.ts";
import { absorbDriverCrashes, connect } from "./lib/common/db.ts";
import { logger } from "./lib/common/log.ts";
import { retryPolicy } from "./lib/common/retry.ts";
import { settings } from "./lib/batch/mod.ts";
import { CONTENT_TYPE, Registry } from "./lib/common/metrics.ts";
import type { TopicFormat } from "./lib/kafka/batch.ts";
import type { ClientSettings } from "./lib/kafka/client.ts";
import { KafkaSource } from "./lib/kafka/consumer.ts";

const HELP = `Usage: deno task consume [flags]

Consumes Kafka topics into PostgreSQL exactly once: each micro-batch is one transaction that
loads the events (staging, validation, dedupe, dead letter, analytics) and stores the consumer
offsets (ingest.kafka_offsets). Offsets are never committed to Kafka. Several consumers with
the same --group share the partitions.

  --brokers LIST       host:port,... (default $KAFKA_BROKERS, else 127.0.0.1:9092)
  --topic NAME[=FMT]   a topic to consume, FMT json (default) or csv; repeat or comma-separate
                       (default $KAFKA_TOPICS, else "events")
  --csv-header LIST    the header of the csv topics, e.g. event_id,event_time,event_type,...
                       (default $KAFKA_CSV_HEADER)
  --group NAME         consumer group (default $KAFKA_GROUP, else "ecommerce-pipeline")
  --max-rows N         flush a batch at N messages (default 20000)
  --max-wait-ms MS     or when its first message has waited MS (default 200)
  --consumers N        consumers in this process, members of the same group, each with its own
                       partitions and database connections (default 2: one loads while the
                       other builds its batch; use at most the partitions)
  --metrics-port P     serve /metrics on 127.0.0.1:P, 0 = off (default $KAFKA_METRICS_PORT, else 9465)
  -h, --help           show this help

Security (environment): KAFKA_SSL=true (TLS, system CAs) or KAFKA_SSL_CA=/path/ca.pem;
KAFKA_SASL_MECHANISM=plain|scram-sha-256|scram-sha-512 with KAFKA_SASL_USERNAME and
KAFKA_SASL_PASSWORD. KAFKA_SESSION_TIMEOUT_MS (30000): how soon the group notices a consumer
that died without leaving. KAFKA_FETCH_AHEAD_MB (24): MiB of messages the process holds
fetched and not loaded yet (shared by its consumers); fetching pauses above it.

A message that is not one event (bad JSON, wrong CSV field count, invalid UTF-8) goes to
quality.dead_letter as malformed_row with its raw bytes, source topic/partition@offset.
Stops on SIGINT/SIGTERM after loading what it holds. Exit code: 0 stopped, 1 failed,
2 bad flags or configuration.`;

const flags = parseFlags(Deno.args, {
  brokers: { type: "string" },
  topic: { type: "string", multiple: true },
  "csv-header": { type: "string" },
  group: { type: "string" },
  "max-rows": { type: "string" },
  "max-wait-ms": { type: "string" },
  consumers: { type: "string" },
  "metrics-port": { type: "string" },
}, HELP);

function fail(message: string): never {
  console.error(`error: ${message}`);
  Deno.exit(2);
}

let dotenv: Record<string, string> = {};
try {
  dotenv = parseDotenv(Deno.readTextFileSync(".env"));
} catch { /* no .env */ }
const env = (name: string) => Deno.env.get(name) ?? dotenv[name];

function whole(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) {
    fail(`${name} must be a whole number from ${min} to ${max} (got "${text}")`);
  }
  return n;
}

const cfg = config();
const brokers = (flags.brokers ?? env("KAFKA_BROKERS") ?? "127.0.0.1:9092").split(",").map((s) =>
  s.trim()
).filter(Boolean);
if (brokers.length === 0 || brokers.some((b) => !/^[^:\s]+:\d+$/.test(b))) {
  fail(`--brokers must be host:port[,host:port...] (got "${brokers.join(",")}")`);
}
const header = (flags["csv-header"] ?? env("KAFKA_CSV_HEADER"))?.split(",").map((s) => s.trim());
const topics = new Map<string, TopicFormat>();
const topicArgs = flags.topic?.length ? flags.topic : [env("KAFKA_TOPICS") ?? "events"];
for (const spec of topicArgs.flatMap((t) => t.split(",")).map((t) => t.trim()).filter(Boolean)) {
  const [name, format = "json"] = spec.split("=");
  if (format !== "json" && format !== "csv") {
    fail(`--topic ${spec}: the format must be json or csv`);
  }
  if (format === "csv" && !header?.length) {
    fail(`--topic ${spec} is csv: name its columns with --csv-header event_id,event_time,...`);
  }
  topics.set(name, format === "csv" ? { format, header } : { format });
}
if (topics.size === 0) fail("no topic: pass --topic NAME");
const maxRows = whole("--max-rows", flags["max-rows"] ?? "20000", 1, 1_000_000);
const maxWaitMs = whole("--max-wait-ms", flags["max-wait-ms"] ?? "200", 1, 600_000);
const consumers = whole("--consumers", flags.consumers ?? "2", 1, 64);
const metricsPort = whole(
  "--metrics-port",
  flags["metrics-port"] ?? env("KAFKA_METRICS_PORT") ?? "9465",
  0,
  65535,
);
const group = flags.group ?? env("KAFKA_GROUP") ?? "ecommerce-pipeline";

const client: ClientSettings = { brokers };
const ca = env("KAFKA_SSL_CA");
if (ca) client.ssl = { ca: Deno.readTextFileSync(ca) };
else if (env("KAFKA_SSL") === "true") client.ssl = true;
const mechanism = env("KAFKA_SASL_MECHANISM");
if (mechanism) {
  if (!["plain", "scram-sha-256", "scram-sha-512"].includes(mechanism)) {
    fail(`KAFKA_SASL_MECHANISM must be plain, scram-sha-256 or scram-sha-512 (got "${mechanism}")`);
  }
  const username = env("KAFKA_SASL_USERNAME"), password = env("KAFKA_SASL_PASSWORD");
  if (!username || !password) {
    fail("KAFKA_SASL_MECHANISM needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD");
  }
  client.sasl = { mechanism: mechanism as "plain", username, password };
}

const log = logger("consume");
// per consumer one connection for its batch's transaction and one for its seeks and lag
// reports (which may wait on a batch's row locks), one for /metrics
const sql = connect({ role: cfg.INGEST_ROLE, max: 2 * consumers + 1 });
absorbDriverCrashes((e) => log.warn("database connection lost", { error: e.message }));
// the same postgres.js failure on a dropped socket also surfaces as a rejected promise no caller
// holds; the batch it belonged to fails on its own and is retried
globalThis.addEventListener("unhandledrejection", (event) => {
  const e = event.reason;
  if (e instanceof TypeError && /reading 'write'/.test(e.message)) {
    event.preventDefault();
    log.warn("database connection lost", { error: e.message });
  }
});

const registry = new Registry();
const batches = registry.counter(
  "pipeline_kafka_batches_total",
  "Kafka micro-batches by outcome: loaded, skipped (already loaded), failed (rolled back, retried)",
  ["outcome"],
);
const rows = registry.counter("pipeline_kafka_rows_total", "Rows loaded from Kafka, by outcome", [
  "outcome",
]);
const lag = registry.gauge(
  "pipeline_kafka_consumer_lag",
  "Messages in the partition not loaded yet, as stored in PostgreSQL (all groups)",
  ["group", "topic", "partition"],
);
for (const outcome of ["loaded", "skipped", "failed"]) batches.inc({ outcome }, 0);
for (const outcome of ["valid", "invalid", "duplicate"]) rows.inc({ outcome }, 0);

const sources = Array.from({ length: consumers }, () =>
  new KafkaSource({
    client,
    group,
    topics,
    maxRows,
    maxWaitMs,
    // the process's budget, shared by its consumers
    maxBytesInHand: cfg.KAFKA_FETCH_AHEAD_MB * 1024 * 1024 / consumers,
    sql,
    settings: settings(cfg),
    log,
    retry: retryPolicy(cfg),
    onFatal() {
      // nothing of the batch was committed: a restarted consumer resumes from PostgreSQL
      Deno.exit(1);
    },
    sessionTimeoutMs: whole(
      "KAFKA_SESSION_TIMEOUT_MS",
      env("KAFKA_SESSION_TIMEOUT_MS") ?? "30000",
      1000,
      300_000,
    ),
    onFlush(r, seconds) {
      const res = r.load?.result;
      batches.inc({ outcome: res ? "loaded" : "skipped" });
      if (res) {
        rows.inc({ outcome: "valid" }, res.valid);
        rows.inc({ outcome: "invalid" }, res.invalid);
        rows.inc({ outcome: "duplicate" }, res.duplicates);
        log.debug("batch loaded", {
          batch_id: res.batch_id,
          messages: r.messages,
          skipped: r.skipped,
          valid: res.valid,
          invalid: res.invalid,
          duplicates: res.duplicates,
          ms: Math.round(seconds * 1000),
        });
      }
    },
    onError: () => batches.inc({ outcome: "failed" }),
  }));

const server = metricsPort === 0 ? undefined : Deno.serve({
  hostname: "127.0.0.1",
  port: metricsPort,
  onListen: () => log.info("metrics", { url: `http://127.0.0.1:${metricsPort}/metrics` }),
}, async (req) => {
  if (new URL(req.url).pathname !== "/metrics") {
    return new Response("Not found: try /metrics\n", { status: 404 });
  }
  lag.reset();
  try {
    for (const r of await sql`select * from ingest.kafka_lag()`) {
      lag.set(
        { group: r.consumer_group, topic: r.topic, partition: String(r.partition) },
        Number(r.lag),
      );
    }
  } catch { /* database down: the lag is left out, not stale */ }
  return new Response(registry.render(), { headers: { "content-type": CONTENT_TYPE } });
});

let stopping = false;
async function stop(signal: string) {
  if (stopping) return;
  stopping = true;
  log.info("stopping: loading what is buffered", { signal });
  await Promise.all(sources.map((s) => s.stop()));
  await server?.shutdown();
  await sql.end({ timeout: 5 });
  Deno.exit(0);
}
Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));

log.info("consuming", {
  brokers: brokers.join(","),
  group,
  topics: [...topics].map(([t, f]) => `${t}=${f.format}`).join(","),
  max_rows: maxRows,
  max_wait_ms: maxWaitMs,
  consumers,
});
try {
  for (const source of sources) await source.start();
} catch (error) {
  log.error("could not start the Kafka consumer", {
    error: (error as Error).message,
    hint: `check that the brokers ${brokers.join(",")} answer and the topics exist`,
  });
  Deno.exit(1);
}
