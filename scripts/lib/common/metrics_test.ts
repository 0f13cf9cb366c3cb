import { assertEquals, assertThrows } from "../testing/assert.ts";
import { Registry } from "./metrics.ts";

Deno.test("Registry renders counters, gauges and histograms in text format 0.0.4", () => {
  const r = new Registry();
  const c = r.counter("app_requests_total", "Requests\nby route", ["route"]);
  const g = r.gauge("app_temperature_celsius", "A gauge");
  const h = r.histogram("app_duration_seconds", "Durations", [], [0.5, 0.1, 1]);
  c.inc({ route: '/a"b\\' });
  c.inc({ route: '/a"b\\' }, 2);
  g.set({}, 1.5);
  h.observe({}, 0.05);
  h.observe({}, 0.7);
  h.observe({}, 3);
  assertEquals(
    r.render(),
    [
      "# HELP app_requests_total Requests\\nby route",
      "# TYPE app_requests_total counter",
      'app_requests_total{route="/a\\"b\\\\"} 3',
      "# HELP app_temperature_celsius A gauge",
      "# TYPE app_temperature_celsius gauge",
      "app_temperature_celsius 1.5",
      "# HELP app_duration_seconds Durations",
      "# TYPE app_duration_seconds histogram",
      'app_duration_seconds_bucket{le="0.1"} 1',
      'app_duration_seconds_bucket{le="0.5"} 1',
      'app_duration_seconds_bucket{le="1"} 2',
      'app_duration_seconds_bucket{le="+Inf"} 3',
      "app_duration_seconds_sum 3.75",
      "app_duration_seconds_count 3",
      "",
    ].join("\n"),
  );
});

Deno.test("Registry refuses bad names, wrong labels and counters going down", () => {
  const r = new Registry();
  assertThrows(() => r.counter("requests", "no _total"), RangeError, "_total");
  assertThrows(() => r.gauge("bad-name", "x"), RangeError, "Invalid metric name");
  const c = r.counter("x_total", "x", ["a"]);
  assertThrows(() => c.inc({ b: "1" }), RangeError, "takes labels [a]");
  assertThrows(() => c.inc({ a: "1" }, -1), RangeError, "only go up");
  assertThrows(() => r.counter("x_total", "again"), RangeError, "registered twice");
});
