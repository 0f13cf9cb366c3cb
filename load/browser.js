// The public endpoint POST /v1/collect under load (run by load/browser.ts, which starts the
// collector, makes the key, measures CPU and checks the database). SHAPE:
//   batch100  VUS clients sending 100-event batches back to back
//   tracker   VUS shoppers, each a tracker.js: 1-5 events a request, 0.3-1.5 s apart, each
//             from its own address (X-Forwarded-For; the collector runs with BROWSER_TRUST_PROXY=1)
//   abuse     VUS clients behind one address sending as fast as they can: past the per-IP
//             limit's minute of requests, 429
// Failed sends are retried as the tracker does (same events, after Retry-After or a backoff).
import http from "k6/http";
import { check, sleep } from "k6";
import { Counter } from "k6/metrics";

const BASE_URL = __ENV.BASE_URL || "http://127.0.0.1:8080";
const KEY = __ENV.SITE_KEY;
const ORIGIN = __ENV.ORIGIN || "https://loadtest.example";
const RUN_ID = __ENV.RUN_ID || `${Date.now()}`;
const SHAPE = __ENV.SHAPE || "tracker";
const UA =
  "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";

/** events the collector answered as stored: accepted, or duplicates of an earlier lost send */
const stored = new Counter("events_acknowledged");
/** events of sends whose answer never came, even after the retries */
const indeterminate = new Counter("events_indeterminate");
const refused429 = new Counter("requests_429");
const refused503 = new Counter("requests_503");
const sentEvents = new Counter("events_sent");
const invalid = new Counter("events_invalid");

export const options = {
  scenarios: {
    [SHAPE]: {
      executor: "constant-vus",
      vus: Number(__ENV.VUS || (SHAPE === "tracker" ? 200 : 4)),
      duration: __ENV.DURATION || "30s",
    },
  },
  thresholds: SHAPE === "abuse"
    ? { requests_429: ["count>0"] }
    : { events_indeterminate: ["count==0"], events_invalid: ["count==0"] },
};

const TYPES = ["view", "view", "view", "search", "view", "add_to_cart", "wishlist", "purchase"];
const CATEGORIES = ["electronics", "clothing", "home_garden", "sports", "books", "beauty"];

function events(n) {
  const now = new Date().toISOString();
  const out = [];
  for (let i = 0; i < n; i++) {
    const type = TYPES[(__ITER + i) % TYPES.length];
    const e = {
      event_id: crypto.randomUUID(),
      event_time: now,
      event_type: type,
      session_id: `k6-${RUN_ID}-${__VU}`,
      anonymous_id: `k6-visitor-${__VU}`,
      landing_url: `https://loadtest.example/?utm_source=newsletter&utm_medium=email`,
    };
    if (type === "search") e.search_query = "running shoes";
    else {
      e.product_id = 1 + ((__VU * 31 + i) % 5000);
      e.category = CATEGORIES[i % CATEGORIES.length];
    }
    if (type !== "view" && type !== "search") e.user_id = String(1 + (__VU % 50000));
    if (type === "add_to_cart" || type === "purchase") {
      e.price = (5 + (i % 400)).toFixed(2);
      e.quantity = 1 + (i % 3);
    }
    if (type === "purchase") e.payment_method = "card";
    out.push(e);
  }
  return out;
}

function send(batch, ip) {
  const body = JSON.stringify({ sent_at: new Date().toISOString(), events: batch });
  const params = {
    headers: {
      "Content-Type": "text/plain;charset=UTF-8",
      Origin: ORIGIN,
      "User-Agent": UA,
      "X-Forwarded-For": ip,
    },
    timeout: "30s",
    tags: { route: "/v1/collect" },
  };
  for (let attempt = 0; attempt < 6; attempt++) {
    const res = http.post(`${BASE_URL}/v1/collect?key=${KEY}`, body, params);
    if (res.status === 200) {
      const r = res.json();
      stored.add(r.accepted + (attempt > 0 ? r.duplicates : 0));
      invalid.add(r.invalid);
      check(res, { "no duplicates on a first send": () => attempt > 0 || r.duplicates === 0 });
      return res;
    }
    if (res.status === 429) refused429.add(1);
    if (res.status === 503) refused503.add(1);
    if (SHAPE === "abuse") return res; // the abuser does not back off: the limit is the point
    if (res.status !== 0 && res.status !== 429 && res.status !== 503) {
      check(res, { "collect answered 200": () => false });
      return res;
    }
    const after = Number(res.headers["Retry-After"] || 0);
    sleep(Math.max(after, Math.min(30, 2 ** attempt) * (0.5 + Math.random() / 2)));
  }
  indeterminate.add(batch.length);
}

export default function () {
  if (SHAPE === "batch100") {
    const batch = events(100);
    sentEvents.add(100);
    // each batch from another address: this shape measures batch size, not the per-IP limit
    send(batch, `10.100.${__ITER % 256}.${__VU}`);
  } else if (SHAPE === "abuse") {
    sentEvents.add(1);
    send(events(1), "10.66.66.66");
  } else {
    const n = 1 + Math.floor(Math.random() * 5);
    sentEvents.add(n);
    send(events(n), `10.${(__VU >> 8) & 255}.${__VU & 255}.7`);
    sleep(0.3 + Math.random() * 1.2);
  }
}
