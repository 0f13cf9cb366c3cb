export const options = {
  scenarios: {
    ingest: {
      executor: "constant-arrival-rate",
      rate: Number(__ENV.RATE || 6),
      timeUnit: "1s",
      duration: __ENV.DURATION || "60s",
      preAllocatedVUs: Number(__ENV.VUS || 20),
      maxVUs: Number(__ENV.MAX_VUS || 60),
      exec: "ingest",
    },
    reads: {
      executor: "constant-arrival-rate",
      rate: Number(__ENV.READ_RATE || 20),
      timeUnit: "1s",
      duration: __ENV.DURATION || "60s",
      preAllocatedVUs: 5,
      maxVUs: 20,
      exec: "reads",
    },
  },
  thresholds: {
    http_req_failed: ["rate<0.01"],
    "http_req_duration{route:/v1/events}": [`p(95)<${__ENV.P95_MS || 150}`],
    "http_req_duration{route:/v1/analytics}": [`p(95)<${__ENV.READ_P95_MS || 200}`],
    dropped_iterations: ["count==0"],
    checks: ["rate>0.99"],
    events_indeterminate: ["count==0"],
  },
};

import { postBatch, readAnalytics } from "./lib.js";

export function ingest() {
  postBatch();
}

export function reads() {
  readAnalytics();
}
