export const options = {
  scenarios: {
    smoke: {
      executor: "constant-arrival-rate",
      rate: Number(__ENV.RATE || 5),
      timeUnit: "1s",
      duration: __ENV.DURATION || "15s",
      preAllocatedVUs: 5,
      maxVUs: 20,
    },
  },
  thresholds: {
    http_req_failed: ["rate<0.01"],
    "http_req_duration{route:/v1/events}": [`p(95)<${__ENV.P95_MS || 500}`],
    dropped_iterations: ["count==0"],
    checks: ["rate>0.99"],
    events_indeterminate: ["count==0"],
  },
};

import { postBatch, readAnalytics } from "./lib.js";

export default function () {
  postBatch(Number(__ENV.BATCH || 200));
  readAnalytics();
}
