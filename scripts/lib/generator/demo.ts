// What `make demo` and `make demo-live` generate: one shop (catalogue, prices, customers) for
// history and live, history that covers every UTC day of the dashboard's comparison windows and
// today up to the live stretch, and live files that continue the same daily curve at its pace.
import type { GenerateOptions } from "./plan.ts";
import { cycleShare } from "./file.ts";

const DAY = 86_400_000;
const MINUTE = 60_000;

export interface DemoOptions {
  /** seed of the shop and of every run (each run adds its own offset) */
  seed: number;
  /** rows of a weekday-weight-1 day (the pace: 100,000 is 1.2 rows/s on average) */
  dailyEvents: number;
  /** full UTC days of history before today */
  days: number;
  /** one-minute live files ending now */
  liveMinutes: number;
  lateRate: number;
}

export const DEMO_DEFAULTS: Readonly<DemoOptions> = {
  seed: 2026,
  dailyEvents: 100_000,
  // the dashboard's default range is 7 days to today, compared with the 7 days before: 14 days
  // of history plus today cover both, and a 15th the "7 full days to yesterday" reading
  days: 15,
  liveMinutes: 5,
  lateRate: 0.02,
};

/**
 * Days long ago the demo adds, and how far into the customer base each reaches (a multiple of
 * the recent days' customers): those who came then and not since are at risk, dormant or
 * churned in the RFM view. They hold a quarter of a recent day's rows (they only seed those
 * statuses, and the demo loads faster).
 */
const PAST_DAYS: readonly [number, number][] = [[200, 2.5], [100, 2], [45, 1.5]];

/** Customers the recent days draw from: each visits every few days (about 0.4 sessions a day). */
export function recentCustomers(o: DemoOptions): number {
  return Math.max(50, Math.round(o.dailyEvents * 0.3));
}

/** The shop every demo run names: sized for the demo's widest reach into the customer base. */
export function demoShop(
  o: DemoOptions,
): Pick<GenerateOptions, "shopSeed" | "shopUsers" | "shopProducts"> {
  return {
    shopSeed: o.seed,
    shopUsers: Math.round(recentCustomers(o) * Math.max(...PAST_DAYS.map(([, r]) => r))),
    shopProducts: Math.min(5_000, Math.max(40, Math.round(o.dailyEvents / 100))),
  };
}

/** The start of the live stretch: whole minutes, `liveMinutes` before the minute of `now`. */
export function liveStart(o: DemoOptions, now: number): number {
  return Math.floor(now / MINUTE) * MINUTE - o.liveMinutes * MINUTE;
}

/**
 * The history runs, oldest first: the days long ago, then one file per UTC day for the last
 * `days` days, then today from 00:00 up to the live stretch (when that is a minute or more).
 * File sizes follow the daily and weekly cycle, so each day holds its weekday's share.
 */
export function historyRuns(o: DemoOptions, now: number, outDir: string): GenerateOptions[] {
  const today = Math.floor(now / DAY) * DAY;
  const shop = demoShop(o);
  const recent = recentCustomers(o);
  const day = (
    ago: number,
    reach: number,
    intervalSeconds = 86_400,
    pace = 1,
  ): GenerateOptions => ({
    files: 1,
    dailyEvents: Math.round(o.dailyEvents * pace),
    intervalSeconds,
    startTime: new Date(today - ago * DAY),
    // each day its own sessions and event ids, the same shop
    seed: o.seed + 1_000 + ago,
    ...shop,
    activeUsers: Math.round(recent * reach),
    anomalyRate: 0.01,
    duplicateRate: 0.005,
    lateRate: 0,
    outDir,
  });
  const runs = PAST_DAYS.filter(([ago]) => ago > o.days).map(([ago, reach]) =>
    day(ago, reach, 86_400, 0.25)
  );
  for (let ago = o.days; ago >= 1; ago--) runs.push(day(ago, 1));
  const upTo = liveStart(o, now);
  if (upTo - today >= MINUTE) runs.push(day(0, 1, (upTo - today) / 1000));
  return runs;
}

/** The live stretch: one-minute files from liveStart to the current minute, same curve. */
export function liveRun(o: DemoOptions, now: number, outDir: string): GenerateOptions {
  return {
    files: o.liveMinutes,
    dailyEvents: o.dailyEvents,
    intervalSeconds: 60,
    startTime: new Date(liveStart(o, now)),
    seed: o.seed + 1,
    ...demoShop(o),
    activeUsers: recentCustomers(o),
    anomalyRate: 0.03,
    duplicateRate: 0.02,
    lateRate: o.lateRate,
    outDir,
  };
}

/** `make demo-live`: a file every `intervalSeconds` of real time on the same curve, until stopped. */
export function streamRun(o: DemoOptions, outDir: string, intervalSeconds = 10): GenerateOptions {
  return {
    continuous: true,
    dailyEvents: o.dailyEvents,
    intervalSeconds,
    // a new seed per stream: new sessions and event ids, the same shop
    ...demoShop(o),
    activeUsers: recentCustomers(o),
    anomalyRate: 0.01,
    duplicateRate: 0.005,
    lateRate: o.lateRate / 2,
    outDir,
  };
}

/** Rows per second the curve gives at `ms` (the hour's pace). */
export function paceAt(o: DemoOptions, ms: number): number {
  const hour = Math.floor(ms / 3_600_000) * 3_600_000;
  return o.dailyEvents * cycleShare(hour, hour + 3_600_000) / 3_600;
}
