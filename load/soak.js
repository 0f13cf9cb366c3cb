export const options = {
  scenarios: {
    soak: {
      executor: "constant-arrival-rate",
      rate: Number(__ENV.RATE || 5),
      timeUnit: "1s",
      duration: __ENV.DURATION || "10m",
      preAllocatedVUs: Number(__ENV.VUS || 10),
      maxVUs: Number(__ENV.MAX_VUS || 40),
    },
  },
  thresholds: {
    http_req_failed: ["rate<0.01"],
    "http_req_duration{route:/v1/events}": [`p(95)<${__ENV.P95_MS || 150}`],
    dropped_iterations: ["count==0"],
    checks: ["rate>0.99"],
    events_indeterminate: ["count==0"],
  },
};

import { postBatch } from "./lib.js";

export default function () {
  postBatch();
}
