// NDJSON bodies -> CSV for the one loading path. Structure only: every rule lives in SQL.
// Numbers keep their source text (a JSON 12.10 stays "12.10", big ids do not lose digits).
import { csvLine, lineCount } from "../ingest/csv.ts";

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

interface RawJson {
  rawJSON: string;
}
type JsonWithRaw = typeof JSON & {
  rawJSON(text: string): RawJson;
  isRawJSON(value: unknown): value is RawJson;
};
const J = JSON as JsonWithRaw;

export function keepNumberText(
  this: unknown,
  _key: string,
  value: unknown,
  context?: { source?: string },
) {
  return typeof value === "number" && context?.source !== undefined
    ? J.rawJSON(context.source)
    : value;
}

/** A number token: after `:`, `[` or `,`, and before whitespace, `,`, `]` or `}`. */
const NUMBER_TOKEN = /[:,[]\s*(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?=[\s,\]}])/g;

/**
 * True when every number in the line prints back as written (String(Number(t)) === t), so a
 * plain JSON.parse loses nothing; the reviver that keeps source text costs ~4x more. A match
 * inside a string only sends the line down the slow, always-correct path.
 */
export function canonicalNumbers(line: string): boolean {
  for (const m of line.matchAll(NUMBER_TOKEN)) {
    if (String(Number(m[1])) !== m[1]) return false;
  }
  return true;
}

/**
 * JSON.parse of one event object, keeping its numbers' source text: a plain parse first; only
 * an object with a number field (or a nested value, which may hold one) whose text does not
 * print back as written is parsed again with the reviver (~4x the cost). Events whose fields
 * are all strings skip the number check too. (Anything but an object is returned as parsed.)
 */
export function parseExact(text: string): unknown {
  const value = JSON.parse(text);
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  for (const key in value) {
    const v = (value as Record<string, unknown>)[key];
    if (typeof v === "number" || (v !== null && typeof v === "object")) {
      return canonicalNumbers(text) ? value : JSON.parse(text, keepNumberText);
    }
  }
  return value;
}

/**
 * A top-level key the object's text names more than once, or undefined. JSON.parse keeps the
 * last of two equal keys without a word, so the text is read again: first a cheap count of
 * `"` + `:` pairs (every key is one; when there are no more of them than the parsed object has
 * keys, no key repeats), then, only when strings or nested values hold more, a scan of the
 * top level. `value` is `text` as JSON.parse read it.
 */
export function repeatedKey(text: string, value: object): string | undefined {
  let keys = 0;
  for (const _ in value) keys++;
  let pairs = 0;
  for (let at = text.indexOf(":"); at >= 0; at = text.indexOf(":", at + 1)) {
    let k = at - 1;
    while (k >= 0 && isJsonSpace(text.charCodeAt(k))) k--;
    if (text.charCodeAt(k) === 0x22) pairs++;
  }
  if (pairs <= keys) return undefined;
  const seen = new Set<string>();
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c ? 2 : 1;
      if (depth === 1) {
        let k = j + 1;
        while (isJsonSpace(text.charCodeAt(k))) k++;
        if (text.charCodeAt(k) === 0x3a) {
          const key = JSON.parse(text.slice(i, j + 1)) as string;
          if (seen.has(key)) return key;
          seen.add(key);
        }
      }
      i = j;
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
  }
  return undefined;
}

const isJsonSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** A JSON value as CSV field text: null -> empty (NULL), nested values as compact JSON. */
export function field(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value;
  if (typeof value === "number") return String(value);
  if (J.isRawJSON(value)) return value.rawJSON;
  return JSON.stringify(value);
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
    if (value === null || typeof value !== "object" || Array.isArray(value) || J.isRawJSON(value)) {
      const kind = Array.isArray(value)
        ? "an array"
        : value === null
        ? "null"
        : J.isRawJSON(value)
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
