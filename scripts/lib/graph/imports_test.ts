import { assertEquals } from "../testing/assert.ts";
import { type Graph, importsOf, readGraph, violations } from "./imports.ts";

const root = new URL("../../..", import.meta.url).pathname;

Deno.test("the repository's import graph has no cycle, no upward and no cross-source import", () => {
  const graph = readGraph(root, ["scripts", "bench", "db", "load", "deploy"]);
  assertEquals(graph.size > 100, true);
  assertEquals(violations(graph), []);
});

Deno.test("importsOf reads static, re-export, side-effect and dynamic relative imports", () => {
  const text = `import { a } from "./a.ts";
import type { B } from "../common/b.ts";
export { c } from "./c.ts";
export * from "../batch/mod.ts";
import "./side.ts";
const d = await import("../kafka/d.ts");
import postgres from "postgres";
`;
  assertEquals(importsOf("scripts/lib/ingest/x.ts", text), [
    "scripts/lib/ingest/a.ts",
    "scripts/lib/common/b.ts",
    "scripts/lib/ingest/c.ts",
    "scripts/lib/batch/mod.ts",
    "scripts/lib/ingest/side.ts",
    "scripts/lib/kafka/d.ts",
  ]);
});

Deno.test("violations names a cycle, an upward import, a cross-source import, a shared folder reaching up and a non-source using a source", () => {
  const graph: Graph = new Map([
    ["scripts/ingest.ts", ["scripts/lib/ingest/ingester.ts"]],
    ["scripts/lib/ingest/ingester.ts", ["scripts/lib/batch/mod.ts", "scripts/ingest.ts"]],
    ["scripts/lib/batch/mod.ts", ["scripts/lib/common/config.ts", "scripts/lib/kafka/batch.ts"]],
    ["scripts/lib/kafka/batch.ts", ["scripts/lib/collector/ndjson.ts"]],
    ["scripts/lib/collector/ndjson.ts", ["scripts/lib/batch/mod.ts"]],
    ["scripts/lib/common/config.ts", []],
    ["scripts/lib/maintain/maintain.ts", ["scripts/lib/ingest/inbox.ts"]],
    ["scripts/lib/ingest/inbox.ts", []],
  ]);
  assertEquals(violations(graph), [
    "scripts/lib/ingest/ingester.ts imports the entry script scripts/ingest.ts (upward: move what it needs into lib)",
    "scripts/lib/batch/mod.ts imports scripts/lib/kafka/batch.ts: lib/batch may import only lib/common",
    "scripts/lib/kafka/batch.ts imports scripts/lib/collector/ndjson.ts: the source kafka/ reaches into the source collector/ (share it through lib/batch or lib/common)",
    "scripts/lib/maintain/maintain.ts imports scripts/lib/ingest/inbox.ts: only the entry scripts use the source ingest/",
    "import cycle: scripts/lib/batch/mod.ts -> scripts/lib/kafka/batch.ts -> scripts/lib/collector/ndjson.ts -> scripts/lib/batch/mod.ts",
    "import cycle: scripts/ingest.ts -> scripts/lib/ingest/ingester.ts -> scripts/ingest.ts",
  ]);
});
