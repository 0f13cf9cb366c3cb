// Test support: a private Citus cluster (coordinator + 2 workers) started with scripts/citus.sh,
// for the distributed-mode tests. Needs a Citus build: cached on this machine, or CITUS_TARBALL
// (.ci/run passes one and sets CITUS_TESTS=required: a missing build fails the tests there). Ports: CITUS_TEST_PORT (coordinator; the workers take the next two), default
// three free ports.
import { join } from "node:path";
import { parseDotenv } from "../common/config.ts";
import { withDatabase } from "../common/db.ts";

const root = new URL("../../..", import.meta.url).pathname;
const script = `${root}scripts/citus.sh`;

function env(name: string): string | undefined {
  const v = Deno.env.get(name);
  if (v !== undefined) return v;
  try {
    return parseDotenv(Deno.readTextFileSync(`${root}.env`))[name];
  } catch {
    return undefined;
  }
}

async function run(args: string[], extra: Record<string, string>) {
  const out = await new Deno.Command("bash", {
    args: [script, ...args],
    env: extra,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { ok: out.success, text };
}

/** Why no Citus cluster can be started here, or null when one can. */
export async function citusUnavailable(): Promise<string | null> {
  const r = await run(["pgbin"], {});
  return r.ok ? null : r.text.trim();
}

/**
 * Whether the distributed-mode tests run: in CI (CI set) they must, and a missing build fails
 * them loudly; elsewhere they are skipped, saying why, when no build is available.
 */
export async function citusTestsEnabled(): Promise<boolean> {
  const why = await citusUnavailable();
  if (why === null) return true;
  if (Deno.env.get("CITUS_TESTS") === "required" || Deno.env.get("CI")) {
    throw new Error(`the Citus tests must run here (CITUS_TESTS=required) but cannot: ${why}`);
  }
  console.warn(`SKIPPED distributed-mode tests: ${why.split("\n")[0]}`);
  return false;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

export interface CitusCluster {
  /** the migrated, distributed database on the coordinator */
  url: string;
  /** the workers as host:port */
  workers: string[];
  dir: string;
  stopNode(name: "coordinator" | "w1" | "w2", mode?: "fast" | "immediate"): Promise<void>;
  startNode(name: "coordinator" | "w1" | "w2"): Promise<void>;
  destroy(): Promise<void>;
}

/** Starts and migrates a private Citus cluster; destroy() stops it and removes its files. */
export async function startCitus(label: string): Promise<CitusCluster> {
  const dir = await Deno.makeTempDir({ prefix: `citus-${label}-` });
  const base = env("CITUS_TEST_PORT");
  const ports = base
    ? [0, 1, 2].map((i) => Number(base) + i)
    : [freePort(), freePort(), freePort()];
  const extra = {
    CITUS_DATA: join(dir, "data"),
    CITUS_PORT: String(ports[0]),
    CITUS_WORKER_PORTS: `${ports[1]} ${ports[2]}`,
    CITUS_SHARED_BUFFERS: "128MB",
    CITUS_DB: "ecommerce",
  };
  if (Deno.uid() === 0) await Deno.chmod(dir, 0o755);
  const up = await run(["up"], extra);
  const cluster: CitusCluster = {
    url: withDatabase(`postgres://postgres:postgres@127.0.0.1:${ports[0]}/x`, "ecommerce"),
    workers: [`127.0.0.1:${ports[1]}`, `127.0.0.1:${ports[2]}`],
    dir,
    async stopNode(name, mode = "fast") {
      const r = await run(["node-stop", name, mode], extra);
      if (!r.ok) throw new Error(`stopping ${name} failed: ${r.text}`);
    },
    async startNode(name) {
      const r = await run(["node-start", name], extra);
      if (!r.ok) throw new Error(`starting ${name} failed: ${r.text}`);
    },
    async destroy() {
      for (const n of ["w2", "w1", "coordinator"] as const) {
        await run(["node-stop", n, "immediate"], extra);
      }
      await Deno.remove(dir, { recursive: true });
    },
  };
  if (!up.ok) {
    await cluster.destroy();
    throw new Error(`scripts/citus.sh up failed: ${up.text}`);
  }
  return cluster;
}
