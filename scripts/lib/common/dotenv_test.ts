// scripts/lib/common/dotenv.sh (sourced by every shell script) reads .env as config.ts does,
// and the environment wins over .env everywhere: stack.sh, kafka.sh, citus.sh and config.ts.
import { join } from "node:path";
import { assertEquals } from "../testing/assert.ts";
import { loadConfig, parseDotenv } from "./config.ts";

const root = new URL("../../..", import.meta.url).pathname;
const dotenv = `# c
A=1
B = 'two words'
C="x"\r
D=5 # note # more
E=#keep
F = " spaced # not a comment "
A=again
bad line
1X=no
G=
`;

async function bash(script: string, env: Record<string, string>, cwd = root) {
  const out = await new Deno.Command("bash", {
    args: ["-c", script],
    env: { PATH: Deno.env.get("PATH")!, HOME: Deno.env.get("HOME") ?? "/root", ...env },
    clearEnv: true,
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  assertEquals(out.code, 0, dec.decode(out.stderr));
  return dec.decode(out.stdout);
}

Deno.test("load_dotenv reads .env as parseDotenv does, and never overrides the environment", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dotenv-" });
  try {
    await Deno.writeTextFile(join(dir, ".env"), dotenv);
    const expected = parseDotenv(dotenv);
    const names = Object.keys(expected).filter((k) => /^[A-Za-z_]\w*$/.test(k));
    const printed = await bash(
      `ROOT=${dir}; . ${root}scripts/lib/common/dotenv.sh; load_dotenv; ` +
        names.map((k) => `printf '%s=[%s]\\n' ${k} "$${k}"`).join("; "),
      { D: "from the environment", G: "" },
    );
    const read = Object.fromEntries(
      printed.trim().split("\n").map((l) => l.match(/^(\w+)=\[(.*)\]$/s)!.slice(1)),
    );
    // (a name the shell cannot hold, such as 1X, is left to config.ts)
    const shellable = Object.fromEntries(names.map((k) => [k, expected[k]]));
    assertEquals(read, { ...shellable, D: "from the environment", G: "" });
    assertEquals(read.A, "again");
    assertEquals(read.F, " spaced # not a comment ");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the environment wins over .env in stack.sh, kafka.sh, citus.sh and config.ts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dotenv-scripts-" });
  try {
    await Deno.mkdir(join(dir, "scripts/lib/common"), { recursive: true });
    for (const f of ["stack.sh", "kafka.sh", "citus.sh", "lib/common/dotenv.sh"]) {
      await Deno.copyFile(join(root, "scripts", f), join(dir, "scripts", f));
    }
    const url = (port: number) => `postgres://postgres:postgres@127.0.0.1:${port}/ecommerce`;
    await Deno.writeTextFile(
      join(dir, ".env"),
      `DATABASE_URL=${url(1111)}\nKAFKA_PORT=1111\nCITUS_PORT=1111\n`,
    );
    const ask = (env: Record<string, string>) =>
      bash(
        "bash scripts/stack.sh url; bash scripts/kafka.sh brokers; bash scripts/citus.sh ports",
        env,
        dir,
      );
    // .env fills in what the environment leaves unset ...
    assertEquals(
      await ask({}),
      `${url(1111)}\n127.0.0.1:1111\n1111 1112 1113\n`,
    );
    // ... and the environment wins
    assertEquals(
      await ask({ DATABASE_URL: url(2222), KAFKA_PORT: "2222", CITUS_PORT: "2222" }),
      `${url(2222)}\n127.0.0.1:2222\n2222 2223 2224\n`,
    );
    // config.ts: the same rule
    const file = parseDotenv(await Deno.readTextFile(join(dir, ".env")));
    assertEquals(loadConfig({ ...file }).DATABASE_URL, url(1111));
    assertEquals(loadConfig({ ...file, DATABASE_URL: url(2222) }).DATABASE_URL, url(2222));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
