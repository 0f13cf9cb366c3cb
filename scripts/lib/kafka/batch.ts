// Kafka messages -> one CSV batch for the loading path files and HTTP share (loader.ts).
// Structure only: a message is one event, as a JSON object (the NDJSON field names) or as one
// CSV record under its topic's configured header. A message that cannot be read that way is a
// malformed row (dead-lettered with its raw bytes); every rule on values lives in SQL.
import { field, parseExact } from "../collector/ndjson.ts";
import { csvLine, CsvScanner, lineCount, type MalformedRow, splitRecord } from "../ingest/csv.ts";
import { COLUMNS_V2 } from "../generator/schema.ts";

export type Format = "json" | "csv";

export interface TopicFormat {
  format: Format;
  /** the CSV header of a csv topic, e.g. ["event_id", "event_time", ...] */
  header?: string[];
}

export interface Message {
  topic: string;
  partition: number;
  offset: bigint;
  value: Uint8Array | null;
}

export interface Batch {
  /** header + one CSV record per readable message */
  csv: Uint8Array;
  /** messages that could not be read, with their CSV line numbers after the records */
  malformed: MalformedRow[];
  /** each message's CSV line number and source (topic/partition@offset), aligned */
  lines: number[];
  sources: string[];
  rows: number;
}

export const sourceOf = (m: Message) => `${m.topic}/${m.partition}@${m.offset}`;

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

type Row = Map<string, string>;

/** Why a decoded JSON value is not an event object, or undefined when it is one. */
function notAnObject(value: unknown): string | undefined {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return `${
      Array.isArray(value) ? "an array" : value === null ? "null" : `a ${typeof value}`
    }, not a JSON object`;
  }
  if ((JSON as unknown as { isRawJSON(v: unknown): boolean }).isRawJSON(value)) {
    return "a number, not a JSON object";
  }
  return undefined;
}

/** One JSON message's object (numbers keep their text), or why it is not one. */
function parseJson(bytes: Uint8Array): Record<string, unknown> | string {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return "not valid UTF-8";
  }
  let value: unknown;
  try {
    value = parseExact(text);
  } catch (error) {
    return `not valid JSON (${(error as Error).message})`;
  }
  return notAnObject(value) ?? value as Record<string, unknown>;
}

/** A field name as the loader reads a header's: trimmed, lowercased. */
const nameOf = (key: string) => key.trim().toLowerCase();

/**
 * One JSON message's field texts, each at the column `columnOf` gives its key, or why the
 * message is not an event object (a field named twice included).
 */
function jsonValues(bytes: Uint8Array, columnOf: (key: string) => number): string[] | string {
  const value = parseJson(bytes);
  if (typeof value === "string") return value;
  const values: string[] = [];
  for (const key in value) {
    const col = columnOf(key);
    if (values[col] !== undefined) return `the field "${nameOf(key)}" is named twice`;
    values[col] = field(value[key]);
  }
  return values;
}

/** One JSON message as field texts by lowercased name, or why it is not an event object. */
export function readJson(bytes: Uint8Array): Row | string {
  const columns = new Map<string, number>();
  const values = jsonValues(bytes, (key) => {
    const name = nameOf(key);
    if (!columns.has(name)) columns.set(name, columns.size);
    return columns.get(name)!;
  });
  if (typeof values === "string") return values;
  return new Map([...columns].map(([name, col]) => [name, values[col]]));
}

/** One CSV message under its topic's header, read as a file's record would be. */
export function readCsv(bytes: Uint8Array, header: string[]): Row | string {
  const scanner = new CsvScanner();
  const headerBytes = encoder.encode(header.join(",") + "\n");
  const out1 = scanner.push(headerBytes);
  const out2 = scanner.push(bytes);
  const out3 = scanner.end();
  if (scanner.malformed.length > 0) return scanner.malformed[0].why;
  if (scanner.rows !== 1) return scanner.rows === 0 ? "empty message" : "more than one record";
  const text = new TextDecoder().decode(concat([out1, out2, out3]));
  // the scanner prefixes the record with its line number ("2,") and ends it with LF
  const fields = splitRecord(
    text.slice(text.indexOf(",") + 1, text.endsWith("\n") ? -1 : undefined),
  );
  const row: Row = new Map();
  header.forEach((name, i) => row.set(name.trim().toLowerCase(), fields[i] ?? ""));
  return row;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Builds one batch from messages in consumption order. The CSV header names every field seen
 * (first-seen order), as an HTTP NDJSON body does; with `fullHeader` it also names every
 * column of the contract, so a batch whose fields miss a required column is still read row by
 * row (each row then gets its own reasons) instead of being rejected whole.
 * (The hot path: a row is an array by column, field names are lowercased once per batch, and
 * records are written by csvLine; about 3 µs a message.)
 */
export function buildBatch(
  messages: readonly Message[],
  formats: ReadonlyMap<string, TopicFormat>,
  opts: { fullHeader?: boolean } = {},
): Batch {
  const columns = new Map<string, number>();
  if (opts.fullHeader) { for (const c of COLUMNS_V2) columns.set(c, columns.size); }
  const names = new Map<string, string>();
  const columnOf = (key: string) => {
    let name = names.get(key);
    if (name === undefined) names.set(key, name = nameOf(key));
    let col = columns.get(name);
    if (col === undefined) columns.set(name, col = columns.size);
    return col;
  };
  const rows: { values: string[]; message: Message }[] = [];
  const bad: { why: string; message: Message }[] = [];
  for (const message of messages) {
    const fmt = formats.get(message.topic) ?? { format: "json" };
    const bytes = message.value ?? new Uint8Array(0);
    if (bytes.length === 0) {
      bad.push({ why: "empty message", message });
      continue;
    }
    let values: string[] = [];
    let why: string | undefined;
    if (fmt.format === "csv") {
      const row = readCsv(bytes, fmt.header ?? []);
      if (typeof row === "string") why = row;
      else for (const [name, v] of row) values[columnOf(name)] = v;
    } else {
      const known = columns.size;
      const read = jsonValues(bytes, columnOf);
      if (typeof read === "string") {
        why = read;
        // the header names the fields of the rows loaded only
        for (const [name, c] of columns) if (c >= known) columns.delete(name);
      } else values = read;
    }
    if (why !== undefined) bad.push({ why, message });
    else rows.push({ values, message });
  }
  if (columns.size === 0) { for (const c of COLUMNS_V2) columns.set(c, columns.size); }
  const width = columns.size;
  const headerLine = csvLine([...columns.keys()]);
  const lines: number[] = [];
  const sources: string[] = [];
  const parts: string[] = [headerLine];
  let line = 1 + lineCount(headerLine);
  for (const { values, message } of rows) {
    for (let c = 0; c < width; c++) values[c] ??= "";
    const record = csvLine(values);
    parts.push(record);
    lines.push(line);
    sources.push(sourceOf(message));
    line += lineCount(record);
  }
  const malformed: MalformedRow[] = bad.map(({ why, message }) => {
    lines.push(line);
    sources.push(sourceOf(message));
    return { lineNo: line++, raw: message.value ?? new Uint8Array(0), why };
  });
  return { csv: encoder.encode(parts.join("")), malformed, lines, sources, rows: rows.length };
}
