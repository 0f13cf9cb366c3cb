// scripts/stack.sh and deno task migrate against servers this project did not start, a checkout
// the server's OS user cannot reach, and Docker without compose (fake docker executables).
import { join } from "node:path";
import { assert, assertEquals } from "./lib/testing/assert.ts";
import { config } from "./lib/common/config.ts";
import { connect, withDatabase } from "./lib/common/db.ts";
import { eventsCsv } from "./lib/testing/fixtures.ts";
import { startCluster } from "./lib/testing/testpg.ts";

const root = new URL("..", import.meta.url).pathname;
const deno = Deno.execPath();

async function run(cmd: string, args: string[], env: Record<string, string>, cwd = root) {
  // the caller's PIPELINE_DB (.ci/run exports embedded) must not decide what these tests see
  const out = await new Deno.Command(cmd, {
    args,
    env: { PIPELINE_DB: "auto", ...env },
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const stack = (args: string[], env: Record<string, string>, dir = root) =>
  run("bash", [join(dir, "scripts/stack.sh"), ...args], env, dir);

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("external database: a non-superuser owner with CREATEROLE migrates; make up only migrates", async () => {
  const cluster = await startCluster("external", { migrate: false });
  const su = connect({ url: withDatabase(cluster.url, "postgres"), max: 1 });
  try {
    await su.unsafe("create role shop_owner login createrole password 'secret-1'");
    await su.unsafe("create database shop owner shop_owner");
    const url = withDatabase(cluster.url, "shop").replace(
      "postgres:postgres@",
      "shop_owner:secret-1@",
    );

    // PIPELINE_DB unset: a DATABASE_URL whose server already answers is external
    const mode = await stack(["mode"], { DATABASE_URL: url });
    assertEquals(mode.stdout.trim(), "external");
    const up = await stack(["up"], { DATABASE_URL: url });
    assertEquals(up.code, 0, up.stderr);
    assert(/external database at 127\.0\.0\.1:\d+ \(not started by this project\)/.test(up.stderr));
    assert(!/starting PostgreSQL|initialising/.test(up.stderr), up.stderr);
    const down = await stack(["down"], { DATABASE_URL: url });
    assertEquals(down.code, 0);
    assert(/not started here, so not stopped/.test(down.stderr), down.stderr);
    const reset = await stack(["reset"], { DATABASE_URL: url });
    assertEquals(reset.code, 1);
    assert(/never wipes a database this project did not start/.test(reset.stderr));

    // the owner is no superuser, yet everything belongs to pipeline_owner and works
    const shop = connect({ url, max: 1 });
    try {
      const [me] = await shop`select rolsuper from pg_roles where rolname = current_user`;
      assertEquals(me.rolsuper, false);
      const owners = await shop`
        select distinct pg_get_userbyid(relowner) as owner from pg_class c
        join pg_namespace n on n.oid = c.relnamespace
        where nspname in ('ingest', 'core', 'quality', 'analytics') and relkind in ('r', 'p', 'v')`;
      assertEquals(owners.map((o) => o.owner), ["pipeline_owner"]);
    } finally {
      await shop.end({ timeout: 5 });
    }
    // ... and files load through it
    const base = await Deno.makeTempDir({ prefix: "ext-inbox-" });
    const inbox = join(base, "incoming");
    try {
      await Deno.mkdir(inbox);
      await Deno.writeTextFile(join(inbox, "a.csv"), eventsCsv(4));
      const ingest = await run(deno, ["run", "-A", "scripts/ingest.ts", "--once", "--dir", inbox], {
        DATABASE_URL: url,
        LOG_DIR: join(base, "logs"),
      });
      assertEquals(ingest.code, 0, ingest.stderr);
    } finally {
      await Deno.remove(base, { recursive: true });
    }
    const check = connect({ url, max: 1 });
    const [{ n }] = await check`select count(*)::int as n from core.events`;
    await check.end({ timeout: 5 });
    assertEquals(n, 4);

    // a second database of the same server, another non-superuser owner: the roles exist now
    // and it has no admin rights on them; migrate says so and names the fix
    await su.unsafe("create role pipeline_migrator login createrole password 'secret-2'");
    await su.unsafe("create database shop2 owner pipeline_migrator");
    const url2 = withDatabase(cluster.url, "shop2").replace(
      "postgres:postgres@",
      "pipeline_migrator:secret-2@",
    );
    const refused = await run(deno, ["run", "-A", "scripts/migrate.ts"], { DATABASE_URL: url2 });
    assertEquals(refused.code, 1);
    assert(/permission denied to grant role/.test(refused.stderr), refused.stderr);
    assert(/hint: .*docs\/operations\.md, "Minimum privileges"/.test(refused.stderr));
    // the documented one-time superuser SQL fixes it
    await su.unsafe(await Deno.readTextFile(join(root, "deploy/postgres/bootstrap.sql")));
    const ok = await run(deno, ["run", "-A", "scripts/migrate.ts"], { DATABASE_URL: url2 });
    assertEquals(ok.code, 0, ok.stderr);
  } finally {
    await su.end({ timeout: 5 });
    await cluster.destroy();
  }
});

Deno.test("deno task migrate: a bad flag is one line and exit 2; a missing dbmate says what to do", async () => {
  const bad = await run(deno, ["run", "-A", "scripts/migrate.ts", "--bogus"], {});
  assertEquals(bad.code, 2);
  assertEquals(bad.stderr.trim().split("\n").length, 1);
  assert(/Unknown option '--bogus'/.test(bad.stderr), bad.stderr);
  const missing = await run(deno, [
    "run",
    "-A",
    "scripts/migrate.ts",
    "--dbmate",
    "/nonexistent/dbmate",
  ], {});
  assertEquals(missing.code, 1);
  assert(/cannot run dbmate "\/nonexistent\/dbmate".*install dbmate/.test(missing.stderr));
  assert(!/ at .*\.ts:\d+/.test(missing.stderr), `stack trace printed: ${missing.stderr}`);
});

Deno.test("PIPELINE_DB=docker: compose plugin, docker-compose, or a clear message (fake docker)", async () => {
  const bin = await Deno.makeTempDir({ prefix: "fake-docker-" });
  const log = join(bin, "calls");
  const name = `test_stack_docker_${Deno.pid}`;
  const url = withDatabase(config().DATABASE_URL, name);
  const env = { PATH: `${bin}:${Deno.env.get("PATH")}`, DATABASE_URL: url };
  try {
    // an engine that answers, a docker CLI without the compose plugin
    await Deno.writeTextFile(
      join(bin, "docker"),
      `#!/bin/sh\necho "docker $*" >> ${log}\n[ "$1" = info ] && exit 0\n` +
        `echo "unknown shorthand flag: 'f' in -f" >&2\nexit 1\n`,
      { mode: 0o755 },
    );
    const none = await stack(["up"], { ...env, PIPELINE_DB: "docker" });
    assertEquals(none.code, 1);
    assert(
      /^error: PIPELINE_DB=docker but neither the compose plugin \('docker compose'\) nor 'docker-compose' is installed/
        .test(
          none.stderr,
        ),
      none.stderr,
    );
    assert(!/unknown shorthand flag|starting postgres/.test(none.stderr), none.stderr);
    assertEquals(none.stderr.trim().split("\n").length, 1, none.stderr);
    // auto mode falls back to the embedded server, saying why
    const auto = await stack(["mode"], { PATH: env.PATH });
    assertEquals(auto.stdout.trim(), "embedded");
    assert(/no compose/.test(auto.stderr), auto.stderr);

    // the standalone docker-compose is used when present ("starts" nothing: the database of
    // DATABASE_URL is on the development server, so the migrate after it runs for real)
    await Deno.writeTextFile(
      join(bin, "docker-compose"),
      `#!/bin/sh\necho "docker-compose $*" >> ${log}\nexit 0\n`,
      { mode: 0o755 },
    );
    const up = await stack(["up"], { ...env, PIPELINE_DB: "docker" });
    assertEquals(up.code, 0, up.stderr);
    const calls = (await Deno.readTextFile(log)).trim().split("\n");
    assertEquals(calls.filter((c) => c.startsWith("docker-compose")), [
      `docker-compose -f ${root}docker-compose.yml up -d --wait`,
    ]);
  } finally {
    const admin = connect({ url: withDatabase(url, "postgres"), max: 1 });
    await admin.unsafe(`drop database if exists "${name}" with (force)`);
    await admin.end({ timeout: 5 });
    await Deno.remove(bin, { recursive: true });
  }
});

/**
 * A copy of the checkout in a mode-700 directory, with .tools inside it too (its entries link
 * to the shared install): the server's OS user can reach neither data nor binaries through it.
 * `home` is a PG_HOME that does not exist yet.
 */
async function privateCheckout() {
  const outer = await Deno.makeTempDir({ prefix: "private-" });
  await Deno.chmod(outer, 0o700);
  const repo = join(outer, "checkout");
  const home = await Deno.makeTempDir({ prefix: "pg-home-" });
  await Deno.remove(home);
  await Deno.mkdir(repo);
  for (const f of ["scripts", "db", "deno.json", "deno.lock"]) {
    const r = await run("cp", ["-a", join(root, f), join(repo, f)], {});
    assertEquals(r.code, 0, r.stderr);
  }
  const tools = await Deno.realPath(join(root, ".tools", "node_modules"));
  await Deno.mkdir(join(repo, ".tools", "node_modules"), { recursive: true });
  for (const e of Deno.readDirSync(tools)) {
    if (e.isDirectory) {
      await Deno.symlink(join(tools, e.name), join(repo, ".tools", "node_modules", e.name));
    }
  }
  // make up installs the lake's writer when missing: the installed one is shared, not re-made
  const lake = join(root, ".tools", "lake");
  if (await Deno.stat(lake).then(() => true, () => false)) {
    await Deno.symlink(await Deno.realPath(lake), join(repo, ".tools", "lake"));
  }
  return { outer, repo, home };
}

Deno.test("as root, the tests' private clusters start in a checkout under a mode-700 directory", async () => {
  if (Deno.uid() !== 0) {
    console.warn("skipped: only root runs the test clusters as another OS user");
    return;
  }
  const { outer, repo, home } = await privateCheckout();
  try {
    // the checkout's own testpg.ts, as its tests would use it
    await Deno.writeTextFile(
      join(repo, "probe.ts"),
      `import { startCluster } from "./scripts/lib/testing/testpg.ts";
import { connect, withDatabase } from "./scripts/lib/common/db.ts";
const cluster = await startCluster("private", { migrate: false });
try {
  const sql = connect({ url: withDatabase(cluster.url, "postgres"), max: 1 });
  const [{ n }] = await sql\`select 6 * 7 as n\`;
  await sql.end();
  console.log(n);
} finally {
  await cluster.destroy();
}
`,
    );
    const probe = await run(deno, ["run", "-A", "probe.ts"], {
      PATH: Deno.env.get("PATH")!,
      HOME: Deno.env.get("HOME") ?? "/root",
      PG_HOME: home,
    }, repo);
    assertEquals(probe.code, 0, probe.stderr);
    assertEquals(probe.stdout.trim(), "42");
  } finally {
    await Deno.remove(outer, { recursive: true });
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
});

Deno.test("as root, a checkout under a mode-700 directory runs its embedded server from PG_HOME", async () => {
  if (Deno.uid() !== 0) {
    console.warn("skipped: only root runs the embedded server as another OS user");
    return;
  }
  const { outer, repo, home } = await privateCheckout();
  const env = {
    PATH: Deno.env.get("PATH")!,
    PGPORT: String(freePort()),
    PIPELINE_DB: "embedded",
    PG_HOME: home,
  };
  try {
    const up = await stack(["up"], env, repo);
    assertEquals(up.code, 0, up.stderr);
    assert(new RegExp(`cannot traverse ${repo}.*live in ${home}`).test(up.stderr), up.stderr);
    assert(up.stderr.includes(`copying the PostgreSQL binaries to ${home}/native`), up.stderr);
    // a second make up finds the server running, from the same place
    const again = await stack(["up"], env, repo);
    assertEquals(again.code, 0, again.stderr);
    assert(/PostgreSQL already running/.test(again.stderr), again.stderr);
    assert((await Deno.stat(join(home, "postgres", "PG_VERSION"))).isFile);
    const sql = connect({
      url: `postgres://postgres:postgres@127.0.0.1:${env.PGPORT}/ecommerce`,
      max: 1,
    });
    const [{ n }] = await sql`
      select count(*)::int as n from pg_namespace
      where nspname in ('ingest', 'core', 'quality', 'analytics')`;
    await sql.end({ timeout: 5 });
    assertEquals(n, 4);
    // the suggested fix for a broken cluster works from there too
    const reset = await stack(["reset"], env, repo);
    assertEquals(reset.code, 0, reset.stderr);
    assertEquals(await Deno.stat(home).then(() => true, () => false), false);
    // ... and the server was stopped first
    const answered = await Deno.connect({ hostname: "127.0.0.1", port: Number(env.PGPORT) })
      .then((c) => (c.close(), true), () => false);
    assertEquals(answered, false);
  } finally {
    await stack(["reset"], env, repo);
    await Deno.remove(outer, { recursive: true });
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
});

Deno.test("as root, a checkout that is itself mode 700 keeps its server where the first make up put it", async () => {
  if (Deno.uid() !== 0) {
    console.warn("skipped: only root runs the embedded server as another OS user");
    return;
  }
  const { outer, repo, home } = await privateCheckout();
  // (mktemp -d makes such a checkout: its parent can be traversed, it cannot)
  await Deno.chmod(outer, 0o755);
  await Deno.chmod(repo, 0o700);
  const env = {
    PATH: Deno.env.get("PATH")!,
    PGPORT: String(freePort()),
    PIPELINE_DB: "embedded",
    PG_HOME: home,
  };
  try {
    const up = await stack(["up"], env, repo);
    assertEquals(up.code, 0, up.stderr);
    assert(new RegExp(`cannot traverse ${repo}.*live in ${home}`).test(up.stderr), up.stderr);
    // up made the checkout traversable for the server; the second up still finds it running
    const again = await stack(["up"], env, repo);
    assertEquals(again.code, 0, again.stderr);
    assert(/PostgreSQL already running/.test(again.stderr), again.stderr);
    assert((await Deno.stat(join(home, "postgres", "PG_VERSION"))).isFile);
  } finally {
    await stack(["reset"], env, repo);
    await Deno.remove(outer, { recursive: true });
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
});
