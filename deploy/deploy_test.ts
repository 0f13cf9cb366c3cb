// Deployment files, checked without a Docker engine (there is none on the build machines):
// the Dockerfile's facts, the compose services' commands, and the systemd units through
// systemd-analyze verify. Graceful SIGTERM is tested on the processes themselves
// (scripts/ingest_process_test.ts, scripts/serve_test.ts).
import { join } from "node:path";
import { assert, assertEquals } from "../scripts/lib/testing/assert.ts";

const root = new URL("..", import.meta.url).pathname;
const read = (p: string) => Deno.readTextFile(join(root, p));
const exists = (p: string) => Deno.stat(join(root, p)).then(() => true, () => false);

Deno.test("Dockerfile: official Deno image at the pinned version, non-root, sources exist", async () => {
  const file = await read("Dockerfile");
  const stack = await read("scripts/stack.sh");
  const pinned = /^DENO_VERSION="([^"]+)"/m.exec(stack)![1];
  assertEquals(/^ARG DENO_VERSION=(\S+)$/m.exec(file)![1], pinned);
  assertEquals(
    /^ARG DBMATE_VERSION=(\S+)$/m.exec(file)![1],
    /^DBMATE_VERSION="([^"]+)"/m.exec(stack)![1],
  );
  assert(/^FROM denoland\/deno:\$\{DENO_VERSION\}$/m.test(file));
  // the last USER before ENTRYPOINT is not root
  const users = [...file.matchAll(/^USER (\S+)$/gm)].map((m) => m[1]);
  assertEquals(users.at(-1), "deno");
  assert(file.indexOf("USER deno") < file.indexOf("ENTRYPOINT"));
  for (const m of file.matchAll(/^COPY (?!--from)(.+) (\S+)$/gm)) {
    for (const src of m[1].split(/\s+/)) assert(await exists(src), `COPY source ${src} missing`);
  }
  for (const m of file.matchAll(/scripts\/[a-z_]+\.ts/g)) assert(await exists(m[0]), m[0]);
  assert(/^STOPSIGNAL SIGTERM$/m.test(file));
  const ignore = (await read(".dockerignore")).split("\n");
  for (const secret of [".env", ".data", ".tools", "data"]) assert(ignore.includes(secret), secret);
});

Deno.test("compose services: ingest, serve and migrate run scripts that exist, with secrets required", async () => {
  const file = await read("deploy/docker-compose.app.yml");
  const body = file.slice(file.indexOf("\nservices:\n"));
  const services = [...body.matchAll(/^ {2}([a-z]+):$/gm)].map((m) => m[1]);
  assertEquals(services, ["migrate", "ingest", "serve"]);
  for (const m of file.matchAll(/command: \["(scripts\/[a-z_]+\.ts)"/g)) {
    assert(await exists(m[1]), m[1]);
  }
  // no demo secrets: compose refuses to start without them
  assert(/API_KEYS: \$\{API_KEYS:\?/.test(file));
  assert(/EMAIL_HASH_KEY: \$\{EMAIL_HASH_KEY:\?/.test(file));
  // the stop grace period outlasts serve's 30 s drain
  const grace = Number(/stop_grace_period: (\d+)s/.exec(file)![1]);
  const drain = Number(/const DRAIN_SECONDS = (\d+);/.exec(await read("scripts/serve.ts"))![1]);
  assert(grace > drain, `stop_grace_period ${grace}s <= drain ${drain}s`);
  // published ports on loopback only
  for (const m of file.matchAll(/- "([^"]+):\d+"$/gm)) assert(m[1].startsWith("127.0.0.1:"), m[1]);
});

Deno.test("systemd units pass systemd-analyze verify", async () => {
  const dir = await Deno.makeTempDir({ prefix: "units-" });
  try {
    const units: string[] = [];
    for (const e of Deno.readDirSync(join(root, "deploy/systemd"))) {
      // the example's paths, made real for the check: deno, and a working directory
      const text = (await read(`deploy/systemd/${e.name}`))
        .replaceAll("/usr/local/bin/deno", Deno.execPath())
        .replaceAll("/opt/ecommerce-pipeline", root);
      await Deno.writeTextFile(join(dir, e.name), text);
      units.push(join(dir, e.name));
    }
    assertEquals(units.length, 5);
    let out;
    try {
      out = await new Deno.Command("systemd-analyze", {
        args: ["verify", "--man=no", ...units],
        stdout: "piped",
        stderr: "piped",
      }).output();
    } catch (error) {
      throw new Error(
        `systemd-analyze is needed to check deploy/systemd (Debian package systemd): ${
          (error as Error).message
        }`,
      );
    }
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    // a unit a verified one refers to (postgresql.service) may be absent here: not an error
    const problems = text.split("\n").filter((l) =>
      l.trim() !== "" && !/postgresql\.service/.test(l)
    );
    assertEquals(problems, []);
    assert(out.success || problems.length === 0, text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
