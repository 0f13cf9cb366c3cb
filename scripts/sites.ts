// deno task sites: public write keys for tracker.js (docs/tracking.md#public-write-keys). Adds
// a key bound to a site's allowed origins, lists keys, revokes one. Acts as pipeline_owner
// (OWNER_ROLE); the checks (origin form, site name) are in SQL (ingest.add_site_key).
import { parseArgs } from "node:util";
import { connect } from "./lib/common/db.ts";

const HELP = `Usage: deno task sites <command> [flags]

  add --site NAME --origin URL [--origin URL …] [--events-per-minute N] [--note TEXT] [--json]
                   a new public write key for pages of these origins (scheme://host[:port],
                   e.g. https://shop.example); prints the key
  list [--json]    every key: site, origins, limit, created, revoked
  revoke KEY       the collector refuses the key within 10 seconds

A public key is no secret (it ships in the page): it can only send events, only from pages of its
origins, within its limit. Server-side producers use POST /v1/events with a secret API_KEYS key.`;

function fail(message: string, code = 2): never {
  console.error(`error: ${message}`);
  Deno.exit(code);
}

let parsed;
try {
  parsed = parseArgs({
    args: Deno.args,
    options: {
      site: { type: "string" },
      origin: { type: "string", multiple: true },
      "events-per-minute": { type: "string" },
      note: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: true,
  });
} catch (error) {
  fail(`${(error as Error).message} (see --help)`);
}
const { values, positionals } = parsed;
if (values.help || positionals.length === 0) {
  console.log(HELP);
  Deno.exit(values.help ? 0 : 2);
}
const [command, ...rest] = positionals;
if (!["add", "list", "revoke"].includes(command)) fail(`unknown command "${command}" (see --help)`);
if (command !== "add" && (values.site || values.origin || values["events-per-minute"])) {
  fail(`--site, --origin and --events-per-minute go with "add" only`);
}
if (command === "revoke" ? rest.length !== 1 : rest.length !== 0) {
  fail(
    command === "revoke"
      ? "revoke takes one key: deno task sites revoke pk_…"
      : `"${command}" takes no arguments`,
  );
}

const sql = connect({ max: 1, role: Deno.env.get("OWNER_ROLE") ?? "pipeline_owner" });
try {
  if (command === "add") {
    if (!values.site) fail("add needs --site NAME");
    if (!values.origin?.length) {
      fail("add needs at least one --origin URL (e.g. https://shop.example)");
    }
    const perMinute = values["events-per-minute"] ?? "6000";
    if (!/^\d+$/.test(perMinute) || Number(perMinute) < 1) {
      fail(`--events-per-minute must be a whole number above 0 (got "${perMinute}")`);
    }
    const [{ key }] = await sql`
      select ingest.add_site_key(${values.site}, ${values.origin}::text[], ${
      Number(perMinute)
    }::int,
                                 ${values.note ?? ""}) as key`;
    console.log(values.json ? JSON.stringify({ site_key: key }) : key);
  } else if (command === "list") {
    const rows = await sql`
      select site_key, site, allowed_origins, events_per_minute, note, created_at, revoked_at
      from ingest.site_keys order by site, created_at`;
    if (values.json) console.log(JSON.stringify(rows));
    else if (rows.length === 0) {
      console.log("no keys: deno task sites add --site NAME --origin URL");
    }
    for (const r of values.json ? [] : rows) {
      const state = r.revoked_at ? `revoked ${r.revoked_at.toISOString()}` : "active";
      console.log(
        `${r.site_key}  ${r.site}  ${state}  ${r.events_per_minute}/min  ${
          r.allowed_origins.join(" ")
        }${r.note ? `  (${r.note})` : ""}`,
      );
    }
  } else {
    const [{ revoked }] = await sql`select ingest.revoke_site_key(${rest[0]}) as revoked`;
    if (!revoked) fail(`no active key "${rest[0]}" (see deno task sites list)`, 1);
    console.log(`revoked ${rest[0]}`);
  }
} catch (error) {
  const e = error as { code?: string; message: string };
  if (e.code === "22023" || e.code === "23514") fail(e.message);
  throw error;
} finally {
  await sql.end({ timeout: 5 });
}
