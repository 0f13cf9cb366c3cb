// Test support: the real Apache Kafka broker of scripts/kafka.sh (started if needed; a test
// that needs it fails loudly when it cannot start), and consumer processes to kill.
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";

const root = new URL("../../..", import.meta.url).pathname;

async function kafkaSh(cmd: string): Promise<string> {
  const out = await new Deno.Command("bash", {
    args: [`${root}scripts/kafka.sh`, cmd],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    throw new Error(
      `scripts/kafka.sh ${cmd} failed (the Kafka tests need Java 17 and Maven, see docs/kafka.md): ${
        new TextDecoder().decode(out.stderr).trim()
      }`,
    );
  }
  return text;
}

/** Starts the broker unless it runs; returns its bootstrap address. */
export async function kafkaBroker(): Promise<string> {
  await kafkaSh("up");
  return await kafkaSh("brokers");
}

export const stopBroker = () => kafkaSh("down");

export function admin(brokers: string) {
  return new Kafka({ brokers: [brokers], clientId: "test", logLevel: logLevel.NOTHING }).admin();
}

export interface ConsumerProcess {
  child: Deno.ChildProcess;
  log: string;
  output(): Promise<string>;
  /** kill -9 */
  kill(): Promise<void>;
  /** SIGTERM and wait */
  stop(): Promise<Deno.CommandStatus>;
}

/** `deno task consume` as a child process, its output in a log file. */
export function startConsumer(o: {
  url: string;
  brokers: string;
  group: string;
  topics: string[];
  args?: string[];
  env?: Record<string, string>;
  dir: string;
  name: string;
}): ConsumerProcess {
  // KEEP_CONSUMER_LOGS=<dir>: every consumer's log is kept there (to study a flaky run)
  const log = Deno.env.get("KEEP_CONSUMER_LOGS")
    ? `${Deno.env.get("KEEP_CONSUMER_LOGS")}/${o.name}-${Date.now()}.log`
    : join(o.dir, `${o.name}.log`);
  const deno = Deno.execPath();
  const cmd = [
    deno,
    "run",
    "--allow-all",
    `${root}scripts/consume.ts`,
    "--brokers",
    o.brokers,
    "--group",
    o.group,
    "--metrics-port",
    "0",
    ...o.topics.flatMap((t) => ["--topic", t]),
    // one member per process unless the test says otherwise
    ...(o.args?.includes("--consumers") ? [] : ["--consumers", "1"]),
    ...(o.args ?? []),
  ].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
  const child = new Deno.Command("bash", {
    args: ["-c", `exec ${cmd} >>'${log}' 2>&1`],
    env: {
      DATABASE_URL: o.url,
      KAFKA_SESSION_TIMEOUT_MS: "2000",
      LOG_DIR: o.dir,
      ...o.env,
    },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  return {
    child,
    log,
    output: () => Deno.readTextFile(log).catch(() => ""),
    async kill() {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.status;
    },
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      return await child.status;
    },
  };
}

/** Runs `deno task generate` in producer mode; returns the manifest. */
export async function produce(args: string[], dir: string): Promise<Manifest> {
  const manifest = join(dir, `manifest-${crypto.randomUUID()}.json`);
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      `${root}scripts/generate.ts`,
      "--out",
      join(dir, "files"),
      "--manifest",
      manifest,
      "--quiet",
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`generate failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return JSON.parse(await Deno.readTextFile(manifest));
}

export interface Manifest {
  totals: {
    rows: number;
    valid: number;
    duplicates: number;
    invalid: number;
    reasons: Record<string, number>;
  };
}

export async function waitFor(check: () => Promise<boolean>, ms: number, what: string) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
}
