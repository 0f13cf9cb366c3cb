// One event file: rows for its time window, each one regular (sometimes late), a re-send, or an
// injected anomaly, streamed to disk, counted as it is written.
import { AnomalyInjector, type Injected } from "./anomalies.ts";
import { Catalog } from "./catalog.ts";
import { CONFLICT_SHARE, ResendPool } from "./duplicates.ts";
import { countReasons, emptyCounts, type FileManifest, orderedReasons } from "./manifest.ts";
import { Shop } from "./model.ts";
import { fileName, filePath, type Plan, windowOf } from "./plan.ts";
import { Random } from "./random.ts";
import {
  couponOf,
  headerLine,
  IdMaker,
  TimeFormatter,
  uuidText,
  writeEvent,
  writeLine,
} from "./rows.ts";
import { AtomicFileWriter } from "./writer.ts";

const MINUTE = 60_000;
/** Late rows sit this much before their place in the file. */
export const LATE_MIN_MS = 15 * MINUTE;
export const LATE_MAX_MS = 6 * 60 * MINUTE;

/** Everything that lives across the files of a run (all of it seeded). */
export interface Run {
  plan: Plan;
  rng: Random;
  shop: Shop;
  ids: IdMaker;
  times: TimeFormatter;
  anomalies: AnomalyInjector;
  resend: ResendPool;
  /** With --daily-events: rows the cycle holds from the run's start to the last file's end. */
  cycleRows: number;
  /** With --daily-events: rows written so far (regular, re-sent and invalid). */
  rowsWritten: number;
}

export function startRun(plan: Plan): Run {
  const rng = new Random(plan.seed);
  // a shared shop comes from its own seed, so runs that name it have the same products,
  // prices and customers; otherwise the run's stream makes its own (as it always did)
  const shopRng = plan.shopSeed === null ? rng : new Random(plan.shopSeed);
  const catalog = new Catalog(shopRng, plan.products);
  const shop = new Shop(rng, catalog, {
    users: plan.shopSeed === null ? plan.users : plan.shopUsers,
    activeUsers: plan.users,
    products: plan.products,
    concurrency: plan.concurrency,
    funnel: plan.funnel,
    baseRng: shopRng,
  });
  const runEnd = windowOf(plan, plan.continuous ? 0 : plan.files - 1)[1];
  return {
    plan,
    rng,
    shop,
    ids: new IdMaker(rng, plan.idVersion),
    times: new TimeFormatter(),
    anomalies: new AnomalyInjector({
      version: plan.schemaVersion,
      rng,
      shop,
      futureAnchorMs: runEnd,
      oldAnchorMs: plan.startMs,
      firstFutureMs: Infinity,
    }),
    resend: new ResendPool(rng, plan.schemaVersion),
    cycleRows: 0,
    rowsWritten: 0,
  };
}

/**
 * Rows of file k: --events, or with --daily-events the cycle's share of its window. The
 * fractions carry over from file to file (rounded on the running total), so many short files
 * add up to what one long file over the same time would hold; never fewer than one row.
 */
function rowsOf(run: Run, from: number, to: number): number {
  const { plan } = run;
  if (plan.dailyEvents === null) return plan.events;
  run.cycleRows += plan.dailyEvents * cycleShare(from, to);
  const n = Math.max(1, Math.round(run.cycleRows) - run.rowsWritten);
  run.rowsWritten += n;
  return n;
}

/** Writes file k of the run; `progress` gets the rows written so far in this file. */
export async function writeEventFile(
  run: Run,
  k: number,
  progress?: (rows: number) => void,
): Promise<FileManifest> {
  const { plan, anomalies, resend } = run;
  const [from, to] = windowOf(plan, k);
  // a continuous run does not know its end: future rows beat the end of their own file
  if (plan.continuous) anomalies.ctx.futureAnchorMs = to;
  const n = rowsOf(run, from, to);
  const w = await AtomicFileWriter.create(filePath(plan, k));
  const rows = new FileRows(run, w, from, to, n);
  try {
    writeLine(w, headerLine(plan.schemaVersion));
    // rows are made synchronously until the buffer is full, then written out (awaited)
    while (!rows.fill()) {
      await w.flush();
      progress?.(rows.done);
    }
    await w.commit();
  } catch (error) {
    await w.abort();
    throw error;
  }
  resend.endFile();
  progress?.(rows.done);
  const counts = rows.counts;
  return {
    name: fileName(plan, k),
    rows: n,
    valid: counts.valid,
    duplicates: counts.duplicates,
    invalid: counts.invalid,
    reasons: orderedReasons(counts.reasons),
    late_injected: counts.late_injected,
    window_start: new Date(from).toISOString(),
    window_end: new Date(to).toISOString(),
    bytes: w.bytes,
    malformed_lines: rows.malformedLines,
    ...(plan.schemaVersion === 3 ? { extra_values: { coupon_code: rows.coupons } } : {}),
  };
}

/** The rows of one file, made in order and counted as they are written. */
class FileRows {
  readonly counts = emptyCounts();
  readonly malformedLines: number[] = [];
  /** Rows written so far. */
  done = 0;
  /** Valid rows with a coupon_code (schema version 3). */
  coupons = 0;
  /** Physical line of the next row (the header is line 1). */
  private line = 2;
  private readonly step: number;
  private readonly warp: TrafficCycle;
  private readonly resendBelow: number;

  constructor(
    private readonly run: Run,
    private readonly w: AtomicFileWriter,
    private readonly from: number,
    to: number,
    private readonly n: number,
  ) {
    this.step = (to - from) / n;
    this.warp = new TrafficCycle(from, to, run.plan.traffic === "flat");
    this.resendBelow = run.plan.anomalyRate + run.plan.duplicateRate;
  }

  /** Writes rows until the buffer is full; true once every row of the file is written. */
  fill(): boolean {
    const { plan, rng, shop, ids, times, anomalies, resend } = this.run;
    const { anomalyRate, lateRate, schemaVersion: version } = plan;
    const n = this.n;
    const w = this.w;
    const counts = this.counts;
    let i = this.done;
    while (i < n && !w.full) {
      const slotMs = Math.floor(this.warp.map(this.from + (i + rng.next()) * this.step));
      const roll = rng.next();
      if (i === n - 1 && anomalies.pendingUnterminated) {
        const id = uuidText(ids.next(slotMs));
        this.invalid(anomalies.unterminated(shop.next(), id, times.format(slotMs)));
      } else if (roll < anomalyRate) {
        const id = uuidText(ids.next(slotMs));
        this.invalid(anomalies.next(shop.next(), id, times.format(slotMs)));
      } else if (roll < this.resendBelow && this.resent()) {
        // an earlier row, sent again
      } else {
        let ms = slotMs;
        if (lateRate > 0 && rng.chance(lateRate)) {
          ms -= rng.between(LATE_MIN_MS + 1, LATE_MAX_MS);
          counts.late_injected++;
        }
        const event = shop.next();
        const uuid = ids.next(ms);
        this.line += writeEvent(w, times, event, uuid, ms, version);
        counts.valid++;
        if (version === 3 && couponOf(event) !== "") this.coupons++;
        resend.accepted(event, uuid, ms);
      }
      i++;
    }
    this.done = i;
    return i === n;
  }

  private invalid(bad: Injected): void {
    if (bad.malformed) this.malformedLines.push(this.line);
    if (bad.raw) {
      this.w.raw(bad.raw);
      this.line += 1;
    } else this.line += writeLine(this.w, bad.text!);
    this.counts.invalid++;
    countReasons(this.counts.reasons, bad.reasons);
  }

  /** A re-send of an earlier accepted row; false when there is none yet. */
  private resent(): boolean {
    const { rng, resend, times, plan } = this.run;
    const conflict = rng.chance(CONFLICT_SHARE) ? resend.conflict() : undefined;
    const sent = conflict?.sent ?? resend.exact();
    if (!sent) return false;
    const { event, uuid, ms } = sent;
    this.line += writeEvent(this.w, times, event, uuid, ms, plan.schemaVersion, conflict?.override);
    if (conflict) {
      this.counts.invalid++;
      countReasons(this.counts.reasons, ["conflicting_duplicate"]);
    } else this.counts.duplicates++;
    return true;
  }
}

/** Traffic per UTC hour of the day (a shop's evening peak, a quiet night), relative. */
const HOUR_WEIGHTS = [
  0.35,
  0.25,
  0.2,
  0.18,
  0.2,
  0.3,
  0.5,
  0.75,
  0.95,
  1.05,
  1.1,
  1.15,
  1.2,
  1.15,
  1.1,
  1.1,
  1.15,
  1.25,
  1.4,
  1.55,
  1.6,
  1.45,
  1.05,
  0.6,
];
/** Traffic per UTC weekday, Sunday first (busier weekends' evenings, a quieter Friday), relative. */
export const WEEKDAY_WEIGHTS = [1.15, 1.05, 1, 0.98, 0.97, 0.9, 0.95];
const HOUR_MS = 3_600_000;
const HOUR_TOTAL = HOUR_WEIGHTS.reduce((a, b) => a + b, 0);

/**
 * The share of a weight-1 day's traffic that falls in [from, to) under the daily and weekly
 * cycle: a whole UTC day gives its weekday weight, its 20:00 hour 1.6/24 of that.
 */
export function cycleShare(from: number, to: number): number {
  let share = 0;
  for (let t = from; t < to;) {
    const end = Math.min(to, Math.floor(t / HOUR_MS + 1) * HOUR_MS);
    const d = new Date(t);
    share += (end - t) / HOUR_MS * HOUR_WEIGHTS[d.getUTCHours()] / HOUR_TOTAL *
      WEEKDAY_WEIGHTS[d.getUTCDay()];
    t = end;
  }
  return share;
}

/**
 * Moves evenly spread times within a window [from, to) so that their density follows the daily
 * and weekly cycle (HOUR_WEIGHTS x WEEKDAY_WEIGHTS), keeping their order and the window. A
 * window inside one UTC hour is unchanged; flat leaves every window unchanged.
 */
export class TrafficCycle {
  private readonly bounds: number[] = [];
  private readonly cum: number[] = [];

  constructor(private readonly from: number, private readonly to: number, flat = false) {
    if (flat || to - from <= 0) return;
    const bounds = [from];
    for (let h = Math.floor(from / HOUR_MS + 1) * HOUR_MS; h < to; h += HOUR_MS) bounds.push(h);
    bounds.push(to);
    if (bounds.length <= 2) return;
    const weights = bounds.slice(0, -1).map((start, j) => {
      const d = new Date(start);
      return (bounds[j + 1] - start) * HOUR_WEIGHTS[d.getUTCHours()] *
        WEEKDAY_WEIGHTS[d.getUTCDay()];
    });
    const total = weights.reduce((a, b) => a + b, 0);
    let acc = 0;
    this.cum.push(0);
    for (const w of weights) this.cum.push((acc += w) / total);
    this.bounds = bounds;
  }

  /** The time at the same share of the window's traffic as `ms` is of its duration. */
  map(ms: number): number {
    if (this.bounds.length === 0) return ms;
    const f = (ms - this.from) / (this.to - this.from);
    let lo = 0, hi = this.cum.length - 2;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.cum[mid] <= f) lo = mid;
      else hi = mid - 1;
    }
    const span = this.cum[lo + 1] - this.cum[lo];
    const t = this.bounds[lo] + (f - this.cum[lo]) / span * (this.bounds[lo + 1] - this.bounds[lo]);
    return Math.min(Math.max(t, this.from), this.to - 1);
  }
}
