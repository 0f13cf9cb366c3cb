// The manifest: what each file holds by construction (rows, valid, duplicates, invalid, reasons
// per code), so tests and the demo can compare the pipeline's counts with the truth.
import { REASON_CODES, type ReasonCode, type SchemaVersion } from "../common/contract.ts";

export type ReasonCounts = Partial<Record<ReasonCode, number>>;

export interface Counts {
  /** Data rows (records, header excluded); rows = valid + duplicates + invalid. */
  rows: number;
  /** Rows that must be stored in core.events. */
  valid: number;
  /** Exact re-sends of an accepted row: counted, not stored, not errors. */
  duplicates: number;
  /** Rows for the dead letter (conflicting duplicates included). */
  invalid: number;
  /** Rows per reason code (a row with two codes counts under both); codes in contract order. */
  reasons: ReasonCounts;
  /**
   * Valid rows written 15 min to 6 h before their place in the file. Informational: whether a
   * row is late depends on when it is ingested.
   */
  late_injected: number;
}

export interface FileManifest extends Counts {
  /** File name (no directory). */
  name: string;
  /** The event-time window the file covers: [window_start, window_end). */
  window_start: string;
  window_end: string;
  bytes: number;
  /** 1-based physical lines (header = 1) of the malformed rows. */
  malformed_lines: number[];
  /**
   * Schema version 3: valid rows carrying a value per column outside the pipeline's own
   * (coupon_code), i.e. the rows of this file whose core.events.extra holds it.
   */
  extra_values?: Record<string, number>;
}

export interface Manifest {
  seed: number;
  start_time: string;
  schema_version: SchemaVersion;
  id_version: 4 | 7;
  /** null when file sizes follow the daily cycle (daily_events) */
  events_per_file: number | null;
  /** rows of a weekday-weight-1 day when file sizes follow the cycle, else null */
  daily_events: number | null;
  /** the shared shop's seed (--shop-seed), or null: the run made its own */
  shop_seed: number | null;
  interval_seconds: number;
  rates: { anomaly: number; duplicate: number; late: number };
  /**
   * Ingestion times for which every count holds: from the run's last regular event to 24 h
   * later (future and too-old rows are far outside either end).
   */
  valid_for_ingestion: { from: string; to: string };
  files: FileManifest[];
  totals: Counts & { files: number; bytes: number };
}

export function emptyCounts(): Counts {
  return { rows: 0, valid: 0, duplicates: 0, invalid: 0, reasons: {}, late_injected: 0 };
}

/** Adds reason codes of one invalid row. */
export function countReasons(into: ReasonCounts, codes: readonly ReasonCode[]): void {
  for (const code of codes) into[code] = (into[code] ?? 0) + 1;
}

/** Reason counts with the codes in contract order (stable JSON). */
export function orderedReasons(reasons: ReasonCounts): ReasonCounts {
  const out: ReasonCounts = {};
  for (const code of REASON_CODES) if (reasons[code]) out[code] = reasons[code];
  return out;
}

/** Sum of per-file counts. */
export function totalsOf(files: readonly FileManifest[]): Manifest["totals"] {
  const totals = { files: files.length, bytes: 0, ...emptyCounts() };
  for (const f of files) {
    totals.rows += f.rows;
    totals.valid += f.valid;
    totals.duplicates += f.duplicates;
    totals.invalid += f.invalid;
    totals.late_injected += f.late_injected;
    totals.bytes += f.bytes;
    for (const [code, n] of Object.entries(f.reasons)) {
      totals.reasons[code as ReasonCode] = (totals.reasons[code as ReasonCode] ?? 0) + n;
    }
  }
  totals.reasons = orderedReasons(totals.reasons);
  return totals;
}
