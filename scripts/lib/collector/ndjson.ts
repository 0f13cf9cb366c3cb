// NDJSON bodies -> CSV for the one loading path. Structure only: every rule lives in SQL.
// Numbers keep their source text (a JSON 12.10 stays "12.10", big ids do not lose digits).
import { csvLine, field, isRawJson, lineCount, parseExact, repeatedKey } from "../batch/mod.ts";

/** A line that is not a JSON object (or the body is not UTF-8); `line` is 1-based. */
export class NdjsonError extends Error {
  override name = "NdjsonError";
  constructor(readonly line: number, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

export interface NdjsonCsv {
  csv: Uint8Array;
  /** objects converted (blank lines are skipped) */
  objects: number;
  /** NDJSON line of the record that starts on CSV line `csvLine` (header = CSV line 1) */
  lineOf(csvLine: number): number;
}

/** Lets other requests run between slices of a large body (conversion is CPU work). */
const SLICE = 2_000;
const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/**
 * Converts one NDJSON body (one JSON object per line, the event fields as keys) to CSV with a
 * header naming every key seen (first-seen order, trimmed and lowercased as the loader reads
 * them). A missing key is an empty field. Throws NdjsonError naming the first bad line.
 */
export async function ndjsonToCsv(bytes: Uint8Array): Promise<NdjsonCsv> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch (error) {
    throw new NdjsonError(0, "The body is not valid UTF-8", { cause: error });
  }
  const columns = new Map<string, number>();
  const rows: string[][] = [];
  const lineNos: number[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (i % SLICE === SLICE - 1) await tick();
    const line = lines[i].endsWith("\r") ? lines[i].slice(0, -1) : lines[i];
    if (line.trim() === "") continue;
    let value: unknown;
    try {
      value = parseExact(line);
    } catch (error) {
      throw new NdjsonError(
        i + 1,
        `Line ${i + 1} is not valid JSON (${(error as Error).message})`,
        {
          cause: error,
        },
      );
    }
    if (value === null || typeof value !== "object" || Array.isArray(value) || isRawJson(value)) {
      const kind = Array.isArray(value)
        ? "an array"
        : value === null
        ? "null"
        : isRawJson(value)
        ? "number"
        : typeof value;
      throw new NdjsonError(i + 1, `Line ${i + 1} is ${kind}, not a JSON object`);
    }
    const repeated = repeatedKey(line, value);
    if (repeated !== undefined) {
      throw new NdjsonError(
        i + 1,
        `Line ${i + 1} names the field "${repeated.trim().toLowerCase()}" twice`,
      );
    }
    const row: string[] = [];
    for (const key in value) {
      const name = key.trim().toLowerCase();
      let col = columns.get(name);
      if (col === undefined) {
        col = columns.size;
        columns.set(name, col);
      }
      if (row[col] !== undefined) {
        throw new NdjsonError(i + 1, `Line ${i + 1} names the field "${name}" twice`);
      }
      row[col] = field((value as Record<string, unknown>)[key]);
    }
    rows.push(row);
    lineNos.push(i + 1);
  }
  if (rows.length > 0 && columns.size === 0) {
    throw new NdjsonError(lineNos[0], `Line ${lineNos[0]} is an object with no fields`);
  }
  if (rows.length === 0) return { csv: new Uint8Array(0), objects: 0, lineOf: (n) => n };

  const header = [...columns.keys()];
  const starts = new Map<number, number>();
  const headerLine = csvLine(header);
  let csvLineNo = 1 + lineCount(headerLine);
  const parts = [headerLine];
  for (let from = 0; from < rows.length; from += SLICE) {
    const to = Math.min(rows.length, from + SLICE);
    for (let j = from; j < to; j++) {
      const row = rows[j];
      for (let c = 0; c < header.length; c++) row[c] ??= "";
      const record = csvLine(row);
      starts.set(csvLineNo, lineNos[j]);
      // a field's newlines stay inside its quotes: the record spans that many more lines
      csvLineNo += lineCount(record);
      parts.push(record);
    }
    await tick();
  }
  return {
    csv: new TextEncoder().encode(parts.join("")),
    objects: rows.length,
    lineOf: (n) => starts.get(n) ?? n,
  };
}
