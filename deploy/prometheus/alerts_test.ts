// The alert rules are valid and behave as their unit tests say (promtool test rules), and
// every metric they use is one that serve or ingest exposes.
import { assert, assertEquals } from "../../scripts/lib/testing/assert.ts";
import { promtoolPath } from "../../scripts/lib/testing/tools.ts";
import { createTelemetry } from "../../scripts/lib/collector/telemetry.ts";
import { createIngestTelemetry } from "../../scripts/lib/ingest/telemetry.ts";

const dir = new URL(".", import.meta.url).pathname;

async function promtool(...args: string[]) {
  const out = await new Deno.Command(promtoolPath(), {
    args,
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    ok: out.success,
    text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr),
  };
}

Deno.test("alerts.yml: promtool check rules and the unit tests of alerts_test.yml pass", async () => {
  const check = await promtool("check", "rules", "alerts.yml");
  assert(check.ok, check.text);
  assert(/SUCCESS: 8 rules found/.test(check.text), check.text);
  const test = await promtool("test", "rules", "alerts_test.yml");
  assert(test.ok, test.text);
  const config = await promtool("check", "config", "prometheus.yml");
  assert(config.ok, config.text);
});

Deno.test("alerts.yml uses only metrics that serve or ingest expose", async () => {
  const exposed = new Set<string>();
  for (
    const text of [createTelemetry().registry.render(), createIngestTelemetry().registry.render()]
  ) {
    for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      exposed.add(m[1]);
      if (m[2] === "histogram") {
        for (const s of ["_bucket", "_sum", "_count"]) exposed.add(m[1] + s);
      }
    }
  }
  const rules = await Deno.readTextFile(`${dir}alerts.yml`);
  const used = new Set(
    [...rules.matchAll(/expr: [\s\S]*?(?=\n\s+for:)/g)].flatMap((e) =>
      [...e[0].matchAll(/\b(pipeline_[a-z_]+)\b/g)].map((m) => m[1])
    ),
  );
  // the regular expression {__name__=~"pipeline_(ingest|http)_rows_total"} names two
  used.delete("pipeline_");
  const expanded = [...used].filter((n) => !n.endsWith("_")).sort();
  const missing = expanded.filter((n) => !exposed.has(n));
  assertEquals(missing, []);
  assert(exposed.has("pipeline_ingest_rows_total") && exposed.has("pipeline_http_rows_total"));
});
