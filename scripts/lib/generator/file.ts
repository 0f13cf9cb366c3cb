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
}

export function startRun(plan: Plan): Run {
  const rng = new Random(plan.seed);
  const catalog = new Catalog(rng, plan.products);
  const shop = new Shop(rng, catalog, {
    users: plan.users,
    products: plan.products,
    concurrency: plan.concurrency,
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
  };
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
  const w = await AtomicFileWriter.create(filePath(plan, k));
  const rows = new FileRows(run, w, from, to);
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
    rows: plan.events,
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
  private readonly resendBelow: number;

  constructor(
    private readonly run: Run,
    private readonly w: AtomicFileWriter,
    private readonly from: number,
    to: number,
  ) {
    this.step = (to - from) / run.plan.events;
    this.resendBelow = run.plan.anomalyRate + run.plan.duplicateRate;
  }

  /** Writes rows until the buffer is full; true once every row of the file is written. */
  fill(): boolean {
    const { plan, rng, shop, ids, times, anomalies, resend } = this.run;
    const { events: n, anomalyRate, lateRate, schemaVersion: version } = plan;
    const w = this.w;
    const counts = this.counts;
    let i = this.done;
    while (i < n && !w.full) {
      const slotMs = Math.floor(this.from + (i + rng.next()) * this.step);
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
