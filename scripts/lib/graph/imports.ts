// The import graph's rules (docs/architecture.md, "Layers of the code"): entry scripts ->
// scripts/lib -> nothing above. Checked by imports_test.ts, so `deno task ok` and CI fail on
// (tests, which drive the code as entry scripts do, are held to the first rule only):
//   - a cycle between modules;
//   - an upward import: a module under scripts/lib/ importing an entry script (scripts/*.ts,
//     bench/, load/);
//   - one source folder importing another's (each source knows only how to read its input and
//     hand a batch to lib/batch; shared pieces live in lib/common and lib/batch);
//   - lib/common or lib/batch importing any folder above them (common imports nothing of lib
//     but itself; batch imports common only);
//   - a folder of lib that is no source (analytics, maintain, …) importing a source's folder
//     (test support, lib/testing, may: it starts sources for the tests).
import { dirname, join, normalize, relative } from "node:path";

/**
 * The source folders under scripts/lib/: peers that never import each other. (lib/browser, the
 * browser tracker's /v1/collect, is served by the HTTP collector's server, which mounts it: it
 * is held to the rule for folders that are no source, so it imports none.)
 */
export const SOURCES = ["ingest", "collector", "kafka"];

/** Folders of scripts/lib that may import a source's folder although they are none. */
export const MAY_USE_SOURCES = ["testing"];

/** What each shared folder may import besides itself (the bottom of the graph). */
export const BELOW: Record<string, string[]> = { common: [], batch: ["common"] };

/** module (path from the repository root) -> the modules it imports (same form) */
export type Graph = Map<string, string[]>;

const IMPORT =
  /(?:^|\n)\s*(?:import|export)\b[^;'"]*?from\s*["'](\.{1,2}\/[^"']+)["']|(?:^|\n)\s*import\s*["'](\.{1,2}\/[^"']+)["']|\bimport\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g;

/** The relative imports of one module's text, resolved against its path. */
export function importsOf(path: string, text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3];
    out.push(normalize(join(dirname(path), spec)));
  }
  return out;
}

/** Reads every .ts module under `dirs` of `root`. */
export function readGraph(root: string, dirs: string[]): Graph {
  const graph: Graph = new Map();
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(join(root, dir))) {
      const path = join(dir, e.name);
      if (e.isDirectory) walk(path);
      else if (e.isFile && e.name.endsWith(".ts")) {
        graph.set(path, importsOf(path, Deno.readTextFileSync(join(root, path))));
      }
    }
  };
  for (const d of dirs) walk(d);
  return graph;
}

const isTest = (path: string) => path.endsWith("_test.ts");
const isEntry = (path: string) =>
  (dirname(path) === "scripts" && !isTest(path)) || path.startsWith("bench/") ||
  path.startsWith("load/");
/** The folder of scripts/lib a module sits in (scripts/lib/kafka/x.ts -> kafka). */
const libFolder = (path: string) =>
  path.startsWith("scripts/lib/") ? relative("scripts/lib", path).split("/")[0] : undefined;

/** Every breach of the rules above, one line each (empty: the graph is fine). */
export function violations(graph: Graph): string[] {
  const out: string[] = [];
  for (const [from, targets] of graph) {
    const folder = libFolder(from);
    for (const to of targets) {
      const toFolder = libFolder(to);
      if (isTest(from)) continue;
      if (folder !== undefined && isEntry(to)) {
        out.push(`${from} imports the entry script ${to} (upward: move what it needs into lib)`);
      }
      if (
        folder !== undefined && toFolder !== undefined && folder !== toFolder &&
        SOURCES.includes(folder) && SOURCES.includes(toFolder)
      ) {
        out.push(
          `${from} imports ${to}: the source ${folder}/ reaches into the source ${toFolder}/ (share it through lib/batch or lib/common)`,
        );
      }
      if (
        folder !== undefined && toFolder !== undefined && SOURCES.includes(toFolder) &&
        !SOURCES.includes(folder) && !(folder in BELOW) && !MAY_USE_SOURCES.includes(folder)
      ) {
        out.push(`${from} imports ${to}: only the entry scripts use the source ${toFolder}/`);
      }
      if (
        folder !== undefined && toFolder !== undefined && folder !== toFolder &&
        folder in BELOW && !BELOW[folder].includes(toFolder)
      ) {
        out.push(
          `${from} imports ${to}: lib/${folder} may import only ${
            BELOW[folder].map((f) => `lib/${f}`).join(", ") || "itself"
          }`,
        );
      }
    }
  }
  for (const cycle of cycles(graph)) out.push(`import cycle: ${cycle.join(" -> ")}`);
  return out;
}

/** The cycles of the graph, each as the modules around it (the first repeated at the end). */
export function cycles(graph: Graph): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 1 | 2>(); // 1: on the path, 2: done
  const path: string[] = [];
  const visit = (node: string) => {
    state.set(node, 1);
    path.push(node);
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue;
      const s = state.get(next);
      if (s === 1) found.push([...path.slice(path.indexOf(next)), next]);
      else if (s === undefined) visit(next);
    }
    path.pop();
    state.set(node, 2);
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node);
  return found;
}
