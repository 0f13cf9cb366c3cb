// After a k6 run: the events stored for the run must equal what the server acknowledged
// (acknowledged <= stored <= acknowledged + indeterminate). Prints a summary, writes JSON.
import { parseArgs } from "node:util";
import { connect } from "../scripts/lib/common/db.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    summary: { type: "string" },
    run: { type: "string" },
    scenario: { type: "string" },
    out: { type: "string" },
    "k6-exit": { type: "string", default: "0" },
  },
});
if (!values.summary || !values.run || !values.scenario || !values.out) {
  console.error("usage: verify.ts --summary FILE --run ID --scenario NAME --out FILE");
  Deno.exit(2);
}

// deno-lint-ignore no-explicit-any
const summary: any = JSON.parse(await Deno.readTextFile(values.summary));
const m = summary.metrics ?? {};
const count = (name: string) => Number(m[name]?.count ?? m[name]?.values?.count ?? 0);
const acknowledged = count("events_acknowledged");
const indeterminate = count("events_indeterminate");
const shed = count("events_shed");
const dur = m["http_req_duration{route:/v1/events}"] ?? m.http_req_duration ?? {};
const reqs = m.http_reqs ?? {};
const seconds = Number(summary.state?.testRunDurationMs ?? 0) / 1000 ||
  (reqs.rate ? Number(reqs.count) / Number(reqs.rate) : 0);

const sql = connect({ max: 1 });
const [{ stored }] = await sql`
  select count(*)::int as stored from core.events
  where session_id like ${"k6-" + values.run + "-%"}`;
await sql.end();

const ok = acknowledged <= stored && stored <= acknowledged + indeterminate;
const result = {
  scenario: values.scenario,
  run_id: values.run,
  finished_at: new Date().toISOString(),
  machine: { cores: navigator.hardwareConcurrency },
  duration_s: seconds,
  requests: count("http_reqs"),
  failed_rate: Number(m.http_req_failed?.value ?? m.http_req_failed?.rate ?? 0),
  events_acknowledged: acknowledged,
  events_indeterminate: indeterminate,
  events_shed: shed,
  events_stored: stored,
  acknowledged_per_s: seconds ? Math.round(acknowledged / seconds) : null,
  p95_ms: dur["p(95)"] ?? null,
  p99_ms: dur["p(99)"] ?? null,
  dropped_iterations: count("dropped_iterations"),
  k6_thresholds_passed: values["k6-exit"] === "0",
  nothing_lost: ok,
};
await Deno.writeTextFile(values.out, JSON.stringify({ result, k6: summary }, null, 2));
console.log(
  `\n${values.scenario}: ${acknowledged} events acknowledged in ${seconds.toFixed(1)} s ` +
    `(${result.acknowledged_per_s}/s), p95 ${Number(result.p95_ms).toFixed(1)} ms, ` +
    `failed ${
      (result.failed_rate * 100).toFixed(2)
    } %, shed ${shed}, indeterminate ${indeterminate}`,
);
console.log(
  `stored in core.events for run ${values.run}: ${stored} ` +
    (ok ? "= acknowledged: nothing lost, nothing duplicated" : "DOES NOT MATCH acknowledged"),
);
console.log(`results: ${values.out}`);
Deno.exit(ok ? 0 : 1);
