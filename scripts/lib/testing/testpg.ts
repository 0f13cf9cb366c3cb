// Test support: a throwaway PostgreSQL 18 cluster on its own port, for tests that stop,
// kill or restart the server (never the shared development server).
import { join } from "node:path";
import { connect } from "../common/db.ts";
import { applyDefinitions, createDatabase, dbmate } from "../migrate/migrate.ts";
import { dbmatePath } from "./testdb.ts";

const root = new URL("../../..", import.meta.url).pathname;

async function run(cmd: string, args: string[], opts: { asPg?: boolean; check?: boolean } = {}) {
  const asRoot = Deno.uid() === 0 && opts.asPg;
  const out = await new Deno.Command(asRoot ? "runuser" : cmd, {
    args: asRoot ? ["-u", Deno.env.get("PG_OS_USER") ?? "postgres", "--", cmd, ...args] : args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const text = stdout + new TextDecoder().decode(out.stderr);
  if (opts.check !== false && !out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${text.trim()}`);
  }
  return { ok: out.success, text, stdout };
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

export interface Cluster {
  url: string;
  port: number;
  dir: string;
  start(): Promise<void>;
  /** pg_ctl stop with the given mode ("immediate" = crash) */
  stop(mode?: "fast" | "immediate"): Promise<void>;
  destroy(): Promise<void>;
}

/**
 * initdb + start + migrate a private cluster (`migrate: false`: only initdb + start, the
 * superuser postgres/postgres); destroy() stops it and removes its files.
 */
export async function startCluster(
  label: string,
  opts: { migrate?: boolean } = {},
): Promise<Cluster> {
  // binaries the server's OS user can reach (as root in a private checkout: a copy, as make up
  // makes)
  const bin = (await run("bash", [`${root}scripts/stack.sh`, "pgbin"])).stdout.trim().split("\n")
    .pop()!;
  const dir = await Deno.makeTempDir({ prefix: `pg-${label}-` });
  const data = join(dir, "data");
  const port = freePort();
  if (Deno.uid() === 0) {
    await run("chmod", ["755", dir]);
    await run("chown", [Deno.env.get("PG_OS_USER") ?? "postgres", dir]);
  }
  await Deno.writeTextFile(join(dir, "pw"), "postgres\n");
  if (Deno.uid() === 0) {
    await run("chown", [Deno.env.get("PG_OS_USER") ?? "postgres", join(dir, "pw")]);
  }
  await run(`${bin}/initdb`, [
    "-D",
    data,
    "-U",
    "postgres",
    `--pwfile=${join(dir, "pw")}`,
    "-A",
    "scram-sha-256",
    "-E",
    "UTF8",
    "--locale=C",
  ], { asPg: true });
  await Deno.writeTextFile(
    join(data, "postgresql.conf"),
    `\nport = ${port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '${dir}'\n` +
      "shared_buffers = 128MB\nfsync = on\ntimezone = 'UTC'\n",
    { append: true },
  );
  const url = `postgres://postgres:postgres@127.0.0.1:${port}/ecommerce`;
  const cluster: Cluster = {
    url,
    port,
    dir,
    async start() {
      await run(`${bin}/pg_ctl`, ["-D", data, "-l", join(dir, "log"), "-w", "-t", "60", "start"], {
        asPg: true,
      });
    },
    async stop(mode = "fast") {
      await run(`${bin}/pg_ctl`, ["-D", data, "-m", mode, "-w", "stop"], {
        asPg: true,
        check: false,
      });
    },
    async destroy() {
      // the postmaster's pid before the stop: a server pg_ctl could not stop (seen after a
      // restart in a test) must not outlive its files
      const pid = Number(
        (await Deno.readTextFile(join(data, "postmaster.pid")).catch(() => "")).split("\n")[0],
      );
      await cluster.stop("immediate");
      if (pid > 0) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* stopped */ }
      }
      await Deno.remove(dir, { recursive: true });
    },
  };
  await cluster.start();
  if (opts.migrate === false) return cluster;
  await createDatabase(url, []); // a plain node, whatever CITUS_WORKERS says
  await dbmate(await dbmatePath(), url, "up");
  const sql = connect({ url, max: 1 });
  try {
    await applyDefinitions(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
  return cluster;
}
