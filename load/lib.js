// Shared pieces of the k6 scenarios: batches of unique events tagged with the run id, and the
// counters the verifier compares with the database.
import http from "k6/http";
import { check } from "k6";
import { Counter, Trend } from "k6/metrics";

export const BASE_URL = __ENV.BASE_URL || "http://127.0.0.1:8080";
export const API_KEY = __ENV.API_KEY || "dev-key";
export const RUN_ID = __ENV.RUN_ID || `${Date.now()}`;
export const BATCH = Number(__ENV.BATCH || 1000);

/** events the server acknowledged as stored (its "accepted" count) */
export const acknowledged = new Counter("events_acknowledged");
/** events in requests whose outcome is unknown (timeouts, dropped connections) */
export const indeterminate = new Counter("events_indeterminate");
/** events refused with 429/503 (not stored: the client retries later) */
export const shed = new Counter("events_shed");
export const batchEvents = new Trend("batch_events");

const TYPES = [
  "view",
  "view",
  "view",
  "view",
  "view",
  "search",
  "add_to_cart",
  "add_to_cart",
  "wishlist",
  "purchase",
];
const CATEGORIES = [
  "electronics",
  "clothing",
  "home_garden",
  "sports",
  "books",
  "beauty",
  "toys",
  "grocery",
];
const HEADER =
  "event_id,event_time,event_type,user_id,session_id,product_id,category,price,quantity,currency,device,traffic_source,payment_method,search_query";

/** A CSV batch of `n` valid, unique events; sessions carry the run id for the SQL check. */
export function csvBatch(n) {
  const now = new Date().toISOString();
  const session = `k6-${RUN_ID}-${__VU}-${__ITER}`;
  const lines = [HEADER];
  for (let i = 0; i < n; i++) {
    const type = TYPES[i % TYPES.length];
    const search = type === "search";
    const priced = type === "add_to_cart" || type === "purchase";
    const user = 1 + ((__VU * 7919 + i) % 50000);
    lines.push([
      crypto.randomUUID(),
      now,
      type,
      user,
      session,
      search ? "" : 1 + (i % 5000),
      search ? "" : CATEGORIES[i % 8],
      priced ? (5 + (i % 400)).toFixed(2) : "",
      priced ? 1 + (i % 3) : "",
      "USD",
      "mobile",
      "direct",
      type === "purchase" ? "card" : "",
      search ? "shoes" : "",
    ].join(","));
  }
  return lines.join("\n") + "\n";
}

/** POSTs one batch and books its outcome. */
export function postBatch(n = BATCH) {
  const res = http.post(`${BASE_URL}/v1/events`, csvBatch(n), {
    headers: { "Content-Type": "text/csv", Authorization: `Bearer ${API_KEY}` },
    timeout: "30s",
    tags: { route: "/v1/events" },
  });
  batchEvents.add(n);
  if (res.status === 200) {
    const body = res.json();
    acknowledged.add(body.accepted);
  } else if (res.status === 0) {
    indeterminate.add(n);
  } else if (res.status === 429 || res.status === 503) {
    shed.add(n);
  }
  check(res, {
    "batch accepted (200)": (r) => r.status === 200,
    "every event accepted": (r) => r.status === 200 && r.json().accepted === n,
  });
  return res;
}

/** One analytics or dashboard read, as an analyst or the dashboard would. */
export function readAnalytics() {
  const views = [
    "daily_sales",
    "hourly_events",
    "category_performance",
    "funnel",
    "pipeline_health",
  ];
  const view = views[__ITER % views.length];
  const res = http.get(`${BASE_URL}/v1/analytics/${view}?limit=50`, {
    tags: { route: "/v1/analytics" },
  });
  check(res, { "analytics read (200)": (r) => r.status === 200 });
}
