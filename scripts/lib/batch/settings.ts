// What a batch is checked with (the thresholds and the e-mail key process_batch takes, from
// config), and the test-only crash and pause points of the batch path.
import type { Config } from "../common/config.ts";

/** The thresholds and key process_batch needs, from config. */
export function settings(cfg: Config) {
  return {
    max_price: cfg.MAX_PRICE,
    future_seconds: cfg.FUTURE_TOLERANCE_SECONDS,
    too_old_days: cfg.TOO_OLD_DAYS,
    late_seconds: cfg.LATE_AFTER_SECONDS,
    min_validity_rate: cfg.MIN_VALIDITY_RATE,
    email_key: cfg.EMAIL_HASH_KEY,
  };
}
export type Settings = ReturnType<typeof settings>;

/**
 * Test-only crash points: with PIPELINE_CRASH_AT=<stage> the process dies on the spot, as a
 * kill -9 would (stages: mid-copy, after-copy, after-procedure, after-commit).
 */
export function crashPoint(stage: string) {
  if (Deno.env.get("PIPELINE_CRASH_AT") === stage) {
    console.error(`crash point "${stage}" reached: exiting abruptly`);
    Deno.exit(137);
  }
}

/** Test-only pause (PIPELINE_PAUSE_AT=<stage>, PIPELINE_PAUSE_MS) to cut a connection there. */
export async function pausePoint(stage: string) {
  if (Deno.env.get("PIPELINE_PAUSE_AT") === stage) {
    console.error(`pause point "${stage}" reached`);
    await new Promise((r) => setTimeout(r, Number(Deno.env.get("PIPELINE_PAUSE_MS") ?? 2000)));
  }
}
