export const options = {
  scenarios: {
    spike: {
      executor: "ramping-arrival-rate",
      startRate: Number(__ENV.BASE_RATE || 10),
      timeUnit: "1s",
      preAllocatedVUs: Number(__ENV.VUS || 30),
      maxVUs: Number(__ENV.MAX_VUS || 120),
      stages: [
        { target: Number(__ENV.BASE_RATE || 10), duration: "10s" },
        { target: Number(__ENV.SPIKE_RATE || 80), duration: "5s" },
        { target: Number(__ENV.SPIKE_RATE || 80), duration: __ENV.SPIKE_FOR || "15s" },
        { target: Number(__ENV.BASE_RATE || 10), duration: "5s" },
        { target: Number(__ENV.BASE_RATE || 10), duration: "10s" },
      ],
    },
  },
  // during a spike the server may shed load with 503 + Retry-After; nothing may be lost
  thresholds: {
    http_req_failed: [`rate<${__ENV.MAX_FAILED || 0.2}`],
    "http_req_duration{route:/v1/events}": [`p(95)<${__ENV.P95_MS || 1000}`],
    checks: ["rate>0.5"],
  },
};

import { postBatch } from "./lib.js";

export default function () {
  postBatch();
}
