import { assertEquals } from "../testing/assert.ts";
import { decide, isRetryable, retryPolicy, TimeoutError } from "./retry.ts";

const policy = retryPolicy({ DB_RETRY_MAX_SECONDS: 2 }, 10_000);
const down = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), {
  code: "ECONNREFUSED",
});

Deno.test("isRetryable: outages, timeouts and errors caused by one; not a bug or bad SQL", () => {
  assertEquals(isRetryable(down), true);
  assertEquals(isRetryable(Object.assign(new Error("terminating"), { code: "57P01" })), true);
  assertEquals(isRetryable(Object.assign(new Error("deadlock"), { code: "40P01" })), true);
  assertEquals(isRetryable(new TimeoutError("PostgreSQL did not answer within 3 ms")), true);
  assertEquals(isRetryable(new Error("COPY was rejected", { cause: down })), true);
  assertEquals(isRetryable(Object.assign(new Error("syntax error"), { code: "42601" })), false);
  assertEquals(
    isRetryable(Object.assign(new Error("violates check constraint"), { code: "23514" })),
    false,
  );
  assertEquals(isRetryable(new TypeError("x is undefined")), false);
});

Deno.test("decide: backoff doubles to the ceiling with jitter, gives up after the policy's time", () => {
  const at = (attempt: number, rand: number) => decide(policy, down, attempt, 0, 1_000, () => rand);
  assertEquals(at(0, 0), { retry: true, delayMs: 125 });
  assertEquals(at(0, 1), { retry: true, delayMs: 250 });
  assertEquals(at(2, 1), { retry: true, delayMs: 1_000 });
  assertEquals(at(10, 1), { retry: true, delayMs: 2_000 }); // DB_RETRY_MAX_SECONDS
  assertEquals(decide(policy, down, 3, 0, 10_000), { retry: false, why: "gave up" });
  assertEquals(decide(policy, new TypeError("bug"), 0, 0, 0), {
    retry: false,
    why: "not retryable",
  });
  // the default gives up never (the Kafka consumer: a message cannot be skipped)
  const never = retryPolicy({ DB_RETRY_MAX_SECONDS: 30 });
  assertEquals(decide(never, down, 50, 0, 1e12, () => 1), { retry: true, delayMs: 30_000 });
});
