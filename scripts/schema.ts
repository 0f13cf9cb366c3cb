// deno task schema: the schema registry (docs/schema-registry.md). Registers versions from a
// JSON definition, lists them, pins sources to a version, deprecates versions. Acts as
// pipeline_owner (OWNER_ROLE); every check is in SQL.
import { parseArgs } from "node:util";
import { connect } from "./lib/common/db.ts";
import {
  DefinitionError,
  httpClientId,
  listPins,
  listVersions,
  pinSource,
  readDefinition,
  registerVersion,
  setStatus,
} from "./lib/ingest/registry.ts";

const HELP = `Usage: deno task schema <command> [flags]

  add FILE.json                 register the next schema version (refused, with the reason,
                                when it would break compatibility)
  list [--json]                 registered versions and source pins
  pin --source file|http|kafka (--match TEXT | --key API_KEY) --version N [--note TEXT]
                                a source must send version N (file: name prefix; http: the
                                client of an API key; kafka: topic); another version raises
                                a quality.alerts row (schema_mismatch)
  unpin --source KIND (--match TEXT | --key API_KEY)
  deprecate N / activate N      a deprecated version still loads, with an alert per batch

Definition file: docs/schema-registry.md (example: db/schemas/v3-coupon-code.json).`;

function fail(message: string, code = 2): never {
  console.error(`error: ${message}`);
  Deno.exit(code);
}

let parsed;
try {
  parsed = parseArgs({
    args: Deno.args,
    options: {
      json: { type: "boolean", default: false },
      source: { type: "string" },
      match: { type: "string" },
      key: { type: "string" },
      version: { type: "string" },
      note: { type: "string" },
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

function versionArg(text: string | undefined, what: string): number {
  if (!text || !/^\d+$/.test(text.trim())) fail(`${what} must be a version number (see --help)`);
  return Number(text);
}

function sourceArgs(): { kind: string; match: string } {
  const kind = values.source;
  if (!kind || !["file", "http", "kafka"].includes(kind)) {
    fail("--source must be file, http or kafka");
  }
  if (values.key !== undefined) {
    if (kind !== "http") fail("--key is for --source http (use --match for file and kafka)");
    return { kind, match: httpClientId(values.key) };
  }
  if (!values.match) fail("--match (or --key for http) is required");
  return { kind, match: values.match };
}

const sql = connect({ max: 1, role: Deno.env.get("OWNER_ROLE") ?? "pipeline_owner" });
try {
  switch (command) {
    case "add": {
      if (rest.length !== 1) fail("add takes one JSON file: deno task schema add FILE.json");
      const row = await registerVersion(sql, await readDefinition(rest[0]));
      console.log(
        `registered schema version ${row.version}: ${row.columns.length} columns, required ${
          row.required.join(", ")
        }`,
      );
      break;
    }
    case "list": {
      const versions = await listVersions(sql);
      const pins = await listPins(sql);
      if (values.json) {
        console.log(JSON.stringify({ versions, pins }, null, 2));
        break;
      }
      for (const v of versions) {
        console.log(
          `v${v.version}  ${v.status.padEnd(10)}  ${v.columns.length} columns  ${v.description}`,
        );
        console.log(`     columns:  ${v.columns.map((c) => `${c}:${v.types[c]}`).join(", ")}`);
        console.log(`     required: ${v.required.join(", ")}`);
        if (Object.keys(v.renames).length) {
          console.log(`     renames:  ${JSON.stringify(v.renames)}`);
        }
        if (Object.keys(v.upgrade).length) {
          console.log(`     upgrade:  ${JSON.stringify(v.upgrade)}`);
        }
      }
      for (const p of pins) {
        console.log(`pin ${p.source_kind} "${p.source_match}" -> v${p.version} ${p.note}`);
      }
      break;
    }
    case "pin": {
      const { kind, match } = sourceArgs();
      const version = versionArg(values.version, "--version");
      console.log(JSON.stringify(await pinSource(sql, kind, match, version, values.note ?? "")));
      break;
    }
    case "unpin": {
      const { kind, match } = sourceArgs();
      console.log(JSON.stringify(await pinSource(sql, kind, match, null)));
      break;
    }
    case "deprecate":
    case "activate": {
      const v = versionArg(rest[0], command);
      const row = await setStatus(sql, v, command === "deprecate" ? "deprecated" : "active");
      console.log(`schema version ${row.version} is ${row.status}`);
      break;
    }
    default:
      fail(`unknown command "${command}" (see --help)`);
  }
} catch (error) {
  if (error instanceof DefinitionError) fail(error.message, 1);
  const e = error as Error & { hint?: string };
  console.error(`error: ${e.message}${e.hint ? ` (${e.hint})` : ""}`);
  Deno.exitCode = 1;
} finally {
  await sql.end({ timeout: 5 });
}
