// deno task storefront (make storefront): the demo shop of storefront/ on its own origin, using
// tracker.js from the collector. Creates the demo site's public write key when it has none for
// this origin, starts `deno task serve` when no collector answers, and prints where to click.
import { parseFlags } from "./lib/common/cli.ts";
import { config } from "./lib/common/config.ts";
import { connect } from "./lib/common/db.ts";

const HELP = `Usage: deno task storefront [--port N] [--collector URL] [--key pk_…]

The demo storefront (storefront/): product list, product page, cart, checkout, tracked with
tracker.js. Open it, allow analytics, click, and watch the dashboard (its link in the header).

Options:
  --port N          the shop's port (default 8081) on 127.0.0.1
  --collector URL   the collector (default http://127.0.0.1:SERVE_PORT); started when it does
                    not answer
  --key KEY         the public write key (default: the site "storefront-demo", created for
                    http://127.0.0.1:PORT when missing, as pipeline_owner)
  -h, --help        show this help`;

const root = new URL("../storefront/", import.meta.url).pathname;
const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
};

export interface StorefrontOptions {
  port: number;
  hostname?: string;
  /** the collector's base URL */
  endpoint: string;
  key: string;
  /** the tracker's flush delay (the demo: 200 ms) */
  flushMs?: number;
}

/** Serves storefront/ and its config.js (endpoint, key, tracker URL). */
export function serveStorefront(o: StorefrontOptions): Deno.HttpServer<Deno.NetAddr> {
  // read per request: a test binds the key to the port the server got
  const configJs = () =>
    `export default ${
      JSON.stringify({
        endpoint: o.endpoint,
        key: o.key,
        trackerUrl: `${o.endpoint}/v1/tracker.js`,
        flushMs: o.flushMs ?? 200,
      })
    };\n`;
  return Deno.serve(
    { port: o.port, hostname: o.hostname ?? "127.0.0.1", onListen() {} },
    async (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/config.js") {
        return new Response(configJs(), {
          headers: { "content-type": TYPES.js, "cache-control": "no-store" },
        });
      }
      const name = path === "/" ? "index.html" : path.slice(1);
      if (!/^[a-z]+\.(html|js|css)$/.test(name)) return new Response("Not found", { status: 404 });
      try {
        return new Response(await Deno.readFile(root + name), {
          headers: { "content-type": TYPES[name.split(".")[1]], "cache-control": "no-cache" },
        });
      } catch {
        return new Response("Not found", { status: 404 });
      }
    },
  );
}

async function demoKey(origin: string): Promise<string> {
  const sql = connect({ max: 1, role: Deno.env.get("OWNER_ROLE") ?? "pipeline_owner" });
  try {
    const [found] = await sql`
      select site_key from ingest.site_keys
      where site = 'storefront-demo' and revoked_at is null and ${origin} = any (allowed_origins)
      order by created_at limit 1`;
    if (found) return found.site_key;
    const [{ key }] = await sql`
      select ingest.add_site_key('storefront-demo', array[${origin}], 6000, 'make storefront') as key`;
    return key;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function answers(url: string): Promise<boolean> {
  try {
    const r = await fetch(`${url}/health`);
    await r.body?.cancel();
    return true;
  } catch {
    return false;
  }
}

async function main() {
  const values = parseFlags(Deno.args, {
    port: { type: "string", default: "8081" },
    collector: { type: "string" },
    key: { type: "string" },
  }, HELP);
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    console.error(`error: --port must be a whole number from 1 to 65535 (got "${values.port}")`);
    Deno.exit(2);
  }
  const cfg = config();
  const endpoint = (values.collector ?? `http://127.0.0.1:${cfg.SERVE_PORT}`).replace(/\/$/, "");
  const origin = `http://127.0.0.1:${port}`;
  const key = values.key ?? await demoKey(origin);
  let collector: Deno.ChildProcess | undefined;
  if (!await answers(endpoint)) {
    const collectorPort = new URL(endpoint).port || "80";
    console.log(`storefront: starting deno task serve on ${endpoint}`);
    collector = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "scripts/serve.ts", "--port", collectorPort],
      cwd: new URL("..", import.meta.url).pathname,
      // the demo's point is seeing a click on the dashboard: rollups at commit, a fresh reading
      // every quarter second (docs/tracking.md#the-demo-storefront)
      env: { HTTP_ANALYTICS: "inline", DASHBOARD_CACHE_MS: "250" },
    }).spawn();
    for (let i = 0; i < 100 && !await answers(endpoint); i++) {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const server = serveStorefront({ port, endpoint, key });
  console.log(`storefront: the shop at ${origin}/ (key ${key})`);
  console.log(`storefront: the dashboard at ${endpoint}/?refresh=250`);
  console.log("storefront: allow analytics in the shop's banner, sign in, click; Ctrl-C stops");
  const stop = () => {
    collector?.kill("SIGTERM");
    server.shutdown();
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await server.finished;
  await collector?.status;
}

if (import.meta.main) await main();
