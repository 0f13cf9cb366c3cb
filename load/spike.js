export const options = {
  scenarios: {
    spike: {
      executor: "ramping-arrival-rate",
      startRate: Number(__ENV.BASE_RATE || 5),
      timeUnit: "1s",
      preAllocatedVUs: Number(__ENV.VUS || 30),
      maxVUs: Number(__ENV.MAX_VUS || 120),
      stages: [
        { target: Number(__ENV.BASE_RATE || 5), duration: "10s" },
        { target: Number(__ENV.SPIKE_RATE || 25), duration: "5s" },
        { target: Number(__ENV.SPIKE_RATE || 25), duration: __ENV.SPIKE_FOR || "15s" },
        { target: Number(__ENV.BASE_RATE || 5), duration: "5s" },
        { target: Number(__ENV.BASE_RATE || 5), duration: "10s" },
      ],
    },
  },
  // past the knee the server must shed load (503 + Retry-After) quickly rather than queue:
  // no request times out, latency stays bounded, and the SQL check proves nothing is lost
  thresholds: {
    http_req_failed: [`rate<${__ENV.MAX_FAILED || 0.5}`],
    "http_req_duration{route:/v1/events}": [`p(95)<${__ENV.P95_MS || 1000}`],
    events_indeterminate: ["count==0"],
  },
};

import { postBatch } from "./lib.js";

export default function () {
  postBatch();
}
