// The background rounds of DeferredAnalytics: a failed round is logged and the next one runs;
// rounds never overlap; stop() runs a last round. (The SQL side, analytics.apply_deferred, is
// tested against the database in analytics_test.ts and serve_test.ts.)
import { assert, assertEquals } from "../testing/assert.ts";
import type { Sql } from "../common/db.ts";
import { DeferredAnalytics, type DeferredResult } from "./deferred.ts";
import type { Logger } from "../common/log.ts";

/** A stand-in for postgres.js that answers `select analytics.apply_deferred()` from a script. */
function fakeSql(answers: (() => Promise<unknown>)[]) {
  let calls = 0;
  let running = 0;
  let overlapped = false;
  const sql = (async () => {
    const answer = answers[Math.min(calls++, answers.length - 1)];
    if (++running > 1) overlapped = true;
    try {
      return [{ result: await answer() }];
    } finally {
      running--;
    }
  }) as unknown as Sql;
  return { sql, calls: () => calls, overlapped: () => overlapped };
}

function recordingLog() {
  const warnings: string[] = [];
  const log: Logger = {
    debug() {},
    info() {},
    warn: (msg) => void warnings.push(msg),
    error: (msg) => void warnings.push(msg),
  };
  return { log, warnings };
}

const applied = (events: number) => () =>
  Promise.resolve({ batches: 1, events, oldest_queued_at: "2026-11-22T00:00:00Z", ms: 1 });
const nothing = () => Promise.resolve({ batches: 0, events: 0, oldest_queued_at: null, ms: 0 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("DeferredAnalytics: a failed round is logged, the next one runs, stop() runs a last one", async () => {
  const fake = fakeSql([
    () => Promise.reject(new Error("connection lost")),
    applied(7),
    nothing,
  ]);
  const { log, warnings } = recordingLog();
  const seen: DeferredResult[] = [];
  const d = new DeferredAnalytics(fake.sql, 10, log, (r) => seen.push(r));
  d.start();
  for (let i = 0; i < 200 && seen.length === 0; i++) await sleep(5);
  assertEquals(warnings, ["deferred analytics round failed: retried next round"]);
  assertEquals(seen.map((r) => r.events), [7]);
  assertEquals(seen[0].oldestQueuedAt?.toISOString(), "2026-11-22T00:00:00.000Z");
  await d.stop();
  const calls = fake.calls();
  await sleep(50);
  assertEquals(fake.calls(), calls, "rounds ran after stop()");
  assertEquals(seen.length, 1, "a round with nothing applied is not reported");
});

Deno.test("DeferredAnalytics: flush() during a round waits for it; rounds never overlap", async () => {
  let release!: () => void;
  const slow = () =>
    new Promise((r) => release = () => r({ batches: 2, events: 5, oldest_queued_at: null, ms: 1 }));
  const fake = fakeSql([slow, applied(1)]);
  const { log } = recordingLog();
  const d = new DeferredAnalytics(fake.sql, 60_000, log);
  const first = d.flush();
  const second = d.flush();
  await sleep(20);
  assertEquals(fake.calls(), 1, "the second round started before the first ended");
  release();
  assertEquals((await first).events, 5);
  assertEquals((await second).events, 1);
  assert(!fake.overlapped());
  await d.stop();
});
