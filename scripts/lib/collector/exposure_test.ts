// Safe defaults of the collector: loopback bind, refusal on a network address with demo
// secrets, read keys for analytics and the dashboard.
import { assert, assertEquals } from "../testing/assert.ts";
import { loadConfig } from "../common/config.ts";
import { connect } from "../common/db.ts";
import { logger } from "../common/log.ts";
import { testDb } from "../testing/testdb.ts";
import { eventsCsv } from "../testing/fixtures.ts";
import { createApp } from "./app.ts";
import { loadAssets } from "./dashboard.ts";
import { checkExposure, isLoopback } from "./exposure.ts";

const root = new URL("../../..", import.meta.url).pathname;
const SECRETS = { API_KEYS: "k-1234567890", EMAIL_HASH_KEY: "a-real-secret-key" };

Deno.test("isLoopback: 127.0.0.0/8, ::1 and localhost only", () => {
  for (const h of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"]) {
    assert(isLoopback(h), h);
  }
  for (const h of ["0.0.0.0", "::", "10.0.0.5", "192.168.1.2", "example.com", "128.0.0.1"]) {
    assert(!isLoopback(h), h);
  }
});

Deno.test("checkExposure: refuses a network address with the demo key or default hash key", () => {
  const defaults = loadConfig({});
  assertEquals(defaults.SERVE_HOST, "127.0.0.1");
  assertEquals(checkExposure("127.0.0.1", defaults, false).refuse, undefined);
  assertEquals(
    checkExposure("0.0.0.0", defaults, false).refuse,
    'refusing to listen on 0.0.0.0 (not loopback) while API_KEYS contains the demo key "dev-key" and EMAIL_HASH_KEY is the default: set real secrets, listen on 127.0.0.1, or pass --allow-insecure-defaults (ALLOW_INSECURE_DEFAULTS=1) for a demo',
  );
  const keyOnly = loadConfig({
    API_KEYS: "dev-key,other-key",
    EMAIL_HASH_KEY: SECRETS.EMAIL_HASH_KEY,
  });
  assert(
    /while API_KEYS contains the demo key "dev-key": /.test(
      checkExposure("10.0.0.5", keyOnly, false).refuse!,
    ),
  );
  const hashOnly = loadConfig({ API_KEYS: SECRETS.API_KEYS });
  assert(
    /while EMAIL_HASH_KEY is the default: /.test(checkExposure("::", hashOnly, false).refuse!),
  );
  // the demo override starts, and says so
  const demo = checkExposure("0.0.0.0", defaults, true);
  assertEquals(demo.refuse, undefined);
  assert(demo.warnings.some((w) => w.includes("(--allow-insecure-defaults)")));
  // real secrets: allowed; without READ_KEYS a warning says analytics are open
  const real = checkExposure("0.0.0.0", loadConfig(SECRETS), false);
  assertEquals(real.refuse, undefined);
  assertEquals(real.warnings, [
    "listening on 0.0.0.0 without READ_KEYS: analytics and the dashboard are readable by anyone who reaches it",
  ]);
  assertEquals(
    checkExposure("0.0.0.0", loadConfig({ ...SECRETS, READ_KEYS: "r" }), false).warnings,
    [],
  );
  // the default EMAIL_HASH_KEY is warned about even on loopback
  assert(
    checkExposure("127.0.0.1", defaults, false).warnings[0].startsWith(
      "EMAIL_HASH_KEY is the default",
    ),
  );
});

Deno.test("serve.ts refuses 0.0.0.0 with the defaults (exit 2, one line) and starts with the override", async () => {
  const base = {
    PATH: Deno.env.get("PATH") ?? "",
    HOME: Deno.env.get("HOME") ?? "/tmp",
    DATABASE_URL: loadConfig({ PGPORT: Deno.env.get("PGPORT") }).DATABASE_URL,
  };
  const dir = await Deno.makeTempDir({ prefix: "exposure-" });
  try {
    const refused = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${root}scripts/serve.ts`, "--port", "0", "--hostname", "0.0.0.0"],
      env: { ...base, LOG_DIR: dir, DATA_DIR: dir, API_KEYS: "", EMAIL_HASH_KEY: "" },
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(refused.stderr).trim();
    assertEquals(refused.code, 2);
    assertEquals(text.split("\n").length, 1);
    assert(text.startsWith("error: refusing to listen on 0.0.0.0 (not loopback)"), text);

    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${root}scripts/serve.ts`, "--port", "0", "--hostname", "0.0.0.0"],
      env: { ...base, LOG_DIR: dir, DATA_DIR: dir, ALLOW_INSECURE_DEFAULTS: "1" },
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!/listening url=/.test(seen)) {
      const { done, value } = await reader.read();
      if (done) break;
      seen += value;
    }
    // an answered request means serve.ts is past its start-up (signal handlers installed)
    const health = await fetch(
      `http://127.0.0.1:${/listening url=http:\/\/[^:]+:(\d+)\//.exec(seen)![1]}/health`,
    );
    await health.body?.cancel();
    child.kill("SIGTERM");
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      seen += value;
    }
    const status = await child.status;
    assertEquals(status.code, 0, seen);
    assert(/listening url=http:\/\/0\.0\.0\.0:\d+\//.test(seen), seen);
    assert(
      /with API_KEYS contains the demo key "dev-key" and EMAIL_HASH_KEY is the default \(--allow-insecure-defaults\)/
        .test(seen),
      seen,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("READ_KEYS: analytics and dashboard data need a read key; events keys do not open them", async () => {
  const db = await testDb("read_keys");
  const dir = await Deno.makeTempDir({ prefix: "read_keys_" });
  const cfg = loadConfig({
    DATABASE_URL: db.url,
    API_KEYS: "write-key-1",
    READ_KEYS: "read-key-1,read-key-2",
    DATA_DIR: dir,
    LOG_DIR: `${dir}/logs`,
  });
  const ingest = connect({ url: db.url, role: "pipeline_ingest", max: 2 });
  const analyst = connect({ url: db.url, role: "pipeline_analyst", max: 2 });
  const log = logger("serve", { level: "error", dir: `${dir}/logs`, quiet: true });
  const app = createApp({ cfg, ingest, analyst, log, assets: await loadAssets() });
  const get = (path: string, key?: string) =>
    app.fetch(
      new Request(`http://collector.test${path}`, {
        headers: key ? { authorization: `Bearer ${key}` } : {},
      }),
    );
  try {
    for (const path of ["/v1/analytics", "/v1/analytics/daily_sales", "/v1/dashboard"]) {
      const none = await get(path);
      assertEquals(none.status, 401, path);
      assertEquals(
        (await none.json()).error,
        "No API key: send Authorization: Bearer <one of READ_KEYS>",
      );
      assertEquals(none.headers.get("www-authenticate"), 'Bearer realm="analytics"');
      const writer = await get(path, "write-key-1");
      assertEquals(writer.status, 401, path);
      assertEquals(
        (await writer.json()).error,
        "Unknown API key: send one of the keys configured in READ_KEYS",
      );
      const ok = await get(path, "read-key-2");
      assertEquals(ok.status, 200, path);
      await ok.body?.cancel();
    }
    // the page and /health hold no data: open; /metrics stays open for Prometheus
    for (const path of ["/", "/health", "/metrics"]) {
      const r = await get(path);
      assertEquals(r.status, 200, path);
      await r.body?.cancel();
    }
    // a read key does not post events
    const posted = await app.fetch(
      new Request("http://collector.test/v1/events", {
        method: "POST",
        body: "event_id\n",
        headers: { "content-type": "text/csv", authorization: "Bearer read-key-1" },
      }),
    );
    assertEquals(posted.status, 401);
    await posted.body?.cancel();
  } finally {
    await app.deferred?.stop();
    await Promise.all([ingest.end({ timeout: 2 }), analyst.end({ timeout: 2 })]);
    await db.drop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("/metrics: pipeline_analytics_queue_age_seconds is the age of the oldest deferred batch, 0 when none", async () => {
  const db = await testDb("queue_age");
  const dir = await Deno.makeTempDir({ prefix: "queue_age_" });
  const cfg = loadConfig({
    DATABASE_URL: db.url,
    API_KEYS: "write-key-1",
    DATA_DIR: dir,
    LOG_DIR: `${dir}/logs`,
  });
  const ingest = connect({ url: db.url, role: "pipeline_ingest", max: 2 });
  const analyst = connect({ url: db.url, role: "pipeline_analyst", max: 2 });
  const log = logger("serve", { level: "error", dir: `${dir}/logs`, quiet: true });
  const app = createApp({ cfg, ingest, analyst, log });
  const age = async () => {
    const text = await (await app.fetch(new Request("http://collector.test/metrics"))).text();
    return Number(/^pipeline_analytics_queue_age_seconds (\S+)$/m.exec(text)![1]);
  };
  try {
    assertEquals(await age(), 0);
    const posted = await app.fetch(
      new Request("http://collector.test/v1/events", {
        method: "POST",
        body: eventsCsv(2),
        headers: { "content-type": "text/csv", authorization: "Bearer write-key-1" },
      }),
    );
    assertEquals(posted.status, 200);
    await posted.body?.cancel();
    // the batch waits (no rounds started); make it two minutes old
    await db.sql`update ingest.deferred_batches set queued_at = now() - interval '120 seconds'`;
    const old = await age();
    assert(old >= 120 && old < 3600, `queue age ${old}`);
    await app.deferred!.flush();
    assertEquals(await age(), 0);
  } finally {
    await app.deferred?.stop();
    await Promise.all([ingest.end({ timeout: 2 }), analyst.end({ timeout: 2 })]);
    await db.drop();
    await Deno.remove(dir, { recursive: true });
  }
});
