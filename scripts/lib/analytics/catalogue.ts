// The metrics catalogue (analytics.metrics, db/views/001_metrics.sql) rendered as the
// generated part of docs/metrics.md, between two markers, so the document cannot drift from
// the SQL: `deno task metrics-doc` rewrites it and a test fails when the two differ.
import type { Sql } from "../common/db.ts";

export const BEGIN =
  "<!-- metrics catalogue: generated from analytics.metrics by deno task metrics-doc -->";
export const END = "<!-- end of the generated catalogue -->";

export interface Metric {
  metric: string;
  title: string;
  formula: string;
  grain: string;
  unit: string;
  additivity: string;
  time_window: string;
  sources: string[];
}

/** The catalogue's rows, in its order. */
export async function readCatalogue(sql: Sql): Promise<Metric[]> {
  return (await sql`
    select metric, title, formula, grain, unit, additivity, time_window, sources
    from analytics.metrics`).map((r) => ({ ...r }) as Metric);
}

/** The generated block: one section per metric. */
export function renderCatalogue(metrics: Metric[]): string {
  const out = [BEGIN, ""];
  for (const m of metrics) {
    out.push(
      `### \`${m.metric}\`: ${m.title}`,
      "",
      `- **Formula**: ${m.formula}`,
      `- **Grain**: ${m.grain}`,
      `- **Unit**: ${m.unit === "money" ? "money, in the reporting currency" : m.unit}`,
      `- **Additivity**: ${m.additivity}`,
      `- **Window**: ${m.time_window}`,
      `- **Read from**: ${m.sources.map((s) => `\`${s}\``).join(", ")}`,
      "",
    );
  }
  out.push(END);
  return out.join("\n");
}

/** The document with its generated block replaced by `block`. */
export function replaceCatalogue(doc: string, block: string): string {
  const a = doc.indexOf(BEGIN), b = doc.indexOf(END);
  if (a < 0 || b < a) {
    throw new Error(
      `docs/metrics.md has no generated block: keep the markers "${BEGIN}" and "${END}"`,
    );
  }
  return doc.slice(0, a) + block + doc.slice(b + END.length);
}
