// Kafka messages -> one CSV batch for the batch path every source shares (lib/batch).
// Structure only: a message is one event, as a JSON object (the NDJSON field names) or as one
// CSV record under its topic's configured header. A message that cannot be read that way is a
// malformed row (dead-lettered with its raw bytes); every rule on values lives in SQL.
import {
  csvLine,
  CsvScanner,
  field,
  HeaderError,
  lineCount,
  type MalformedRow,
  parseExact,
  readWireRecord,
  repeatedKey,
  splitRecord,
  wirePrefixSize,
  writeWirePrefix,
} from "../batch/mod.ts";
import { COLUMNS_V2 } from "../common/contract.ts";

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
  readonly csv: Uint8Array;
  /**
   * The records as the loader's CSV scanner would pass them to COPY ("line_no," + record +
   * LF), the header's names as it reads them, the records it would pass and the ones it would
   * divert. A record copied from a flat ASCII JSON object (FlatJson) is one line of printable
   * ASCII with the header's field count, which the scanner passes unchanged: it is prefixed
   * here. Every other record goes through the scanner, in runs of consecutive records at
   * their lines. The loader then streams the records to COPY without scanning the whole batch
   * again (scannedSource). Absent when the scanner cannot read the header (then the loader
   * reads the CSV and rejects it as it would a file).
   */
  copy?: { records: Uint8Array; header: string[]; rows: number; malformed: MalformedRow[] };
  /** messages that could not be read, with their CSV line numbers after the records */
  malformed: MalformedRow[];
  /** each message's CSV line number and source (topic/partition@offset), aligned */
  lines: number[];
  readonly sources: string[];
  /** sources[i], without making the whole list */
  sourceAt(i: number): string;
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
  const not = notAnObject(value);
  if (not !== undefined) return not;
  const repeated = repeatedKey(text, value as object);
  if (repeated !== undefined) return `the field "${nameOf(repeated)}" is named twice`;
  return value as Record<string, unknown>;
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
  const fields = splitRecord(
    readWireRecord(new TextDecoder().decode(concat([out1, out2, out3]))),
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
 * (The hot path: a flat JSON object of ASCII text is copied from its bytes into the CSV record
 * by FlatJson, a fraction of the cost of the general way (docs/measurements.md); any other
 * message is read by JSON.parse (readJson's way) and written by
 * csvLine, with the same result.)
 */
export function buildBatch(
  messages: readonly Message[],
  formats: ReadonlyMap<string, TopicFormat>,
  opts: {
    fullHeader?: boolean;
    /** tests: every message the general way */
    general?: boolean;
    /** the CSV only, no `copy` (what the csv of a batch with one is built again with) */
    csvOnly?: boolean;
  } = {},
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
  // a message's fields may name columns only once it is read whole
  const forget = (known: number) => {
    for (const [name, c] of columns) if (c >= known) columns.delete(name);
  };
  const flat = new FlatJson(columnOf, forget, () => columns.size);
  const out = new Bytes(messages.reduce((n, m) => n + (m.value?.length ?? 0), 64));
  // each record's end in `out`, its field count when written, and its first line (counted
  // from the first record)
  // (typed arrays of one slot per message: arrays grown by push were much of a batch's garbage)
  const ends = new Float64Array(messages.length), widths = new Int32Array(messages.length);
  const firstLines = new Float64Array(messages.length);
  let nRecords = 0;
  const loaded: Message[] = [];
  const bad: { why: string; message: Message }[] = [];
  let recordLine = 0;
  // per record: 1 = copied by FlatJson
  const flats = new Uint8Array(messages.length);
  for (const message of messages) {
    const fmt = formats.get(message.topic) ?? { format: "json" };
    const bytes = message.value ?? new Uint8Array(0);
    if (bytes.length === 0) {
      bad.push({ why: "empty message", message });
      continue;
    }
    let lineCountOf = 1;
    let flatOne = 1;
    if (fmt.format === "json" && !opts.general && flat.write(bytes, out)) {
      // written
    } else {
      flatOne = 0;
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
          forget(known);
        } else values = read;
      }
      if (why !== undefined) {
        bad.push({ why, message });
        continue;
      }
      for (let c = 0; c < columns.size; c++) values[c] ??= "";
      const record = csvLine(values);
      lineCountOf = lineCount(record);
      out.text(record);
    }
    flats[nRecords] = flatOne;
    ends[nRecords] = out.length;
    // a record has one field at least: "{}" before any column is one empty field
    widths[nRecords] = Math.max(1, columns.size);
    firstLines[nRecords++] = recordLine;
    recordLine += lineCountOf;
    loaded.push(message);
  }
  if (columns.size === 0) { for (const c of COLUMNS_V2) columns.set(c, columns.size); }
  const width = columns.size;
  const headerNames = [...columns.keys()];
  const headerLine = csvLine(headerNames);
  const header = encoder.encode(headerLine);
  const first = 1 + lineCount(headerLine);
  const lines: number[] = new Array(nRecords);
  for (let r = 0; r < nRecords; r++) lines[r] = first + firstLines[r];
  const malformed: MalformedRow[] = bad.map(({ why, message }, i) => {
    const lineNo = first + recordLine + i;
    lines.push(lineNo);
    return { lineNo, raw: message.value ?? new Uint8Array(0), why };
  });
  // records written before a column was first seen get its empty fields now
  let pad = 0;
  for (let r = 0; r < nRecords; r++) pad += width - widths[r];
  let body: Uint8Array | undefined = out.view();
  // record r without its LF, then a comma per missing field, then the LF
  const record = (into: Uint8Array, at: number, r: number) => {
    const b = body!;
    const from = r === 0 ? 0 : ends[r - 1];
    into.set(b.subarray(from, ends[r] - 1), at);
    at += ends[r] - 1 - from;
    for (let k = widths[r]; k < width; k++) into[at++] = COMMA;
    into[at++] = LF;
    return at;
  };
  let csv: Uint8Array | undefined;
  const csvOf = () => {
    if (csv) return csv;
    if (!body) return csv = buildBatch(messages, formats, { ...opts, csvOnly: true }).csv;
    csv = new Uint8Array(header.length + body.length + pad);
    csv.set(header, 0);
    if (pad === 0) csv.set(body, header.length);
    else for (let r = 0, at = header.length; r < nRecords; r++) at = record(csv, at, r);
    return csv;
  };
  const copy = opts.csvOnly ? undefined : copyReady();
  // COPY needs the records only: the body goes, so that a batch built ahead holds one copy of
  // its rows, not two (its CSV, which tests ask for, is built again from the messages)
  if (copy) body = undefined;
  let sources: string[] | undefined;
  return {
    get csv() {
      return csvOf();
    },
    copy,
    malformed,
    lines,
    // made when asked (most batches send only their dead-lettered lines' sources)
    get sources() {
      return sources ??= [...loaded.map(sourceOf), ...bad.map(({ message }) => sourceOf(message))];
    },
    sourceAt(i: number) {
      if (sources) return sources[i];
      return sourceOf(i < loaded.length ? loaded[i] : bad[i - loaded.length].message);
    },
    rows: loaded.length,
  };

  function copyReady(): Batch["copy"] {
    // the scanner, for the header and the records not copied by FlatJson (sized per run)
    const scanner = new CsvScanner(0, { minBuffer: 0 });
    try {
      scanner.push(header);
    } catch (error) {
      if (error instanceof HeaderError) return undefined;
      throw error;
    }
    if (!scanner.header) return undefined; // a blank header line: the loader scans the CSV
    // a one-field record can be empty, a blank line the scanner skips: those are scanned
    const copies = (r: number) => flats[r] === 1 && width >= 2;
    // (the last record's line has the most digits)
    const prefix = wirePrefixSize(first + recordLine);
    const records = new Uint8Array(body!.length + pad + nRecords * prefix);
    let at = 0, rows = 0;
    for (let r = 0; r < nRecords;) {
      if (copies(r)) {
        at = writeWirePrefix(records, at, lines[r]);
        at = record(records, at, r++);
        rows++;
        continue;
      }
      let end = r + 1;
      while (end < nRecords && !copies(end)) end++;
      const run = new Uint8Array(ends[end - 1] - (r === 0 ? 0 : ends[r - 1]) + pad);
      let size = 0;
      for (let k = r; k < end; k++) size = record(run, size, k);
      scanner.resumeAt(lines[r]);
      const passed = scanner.rows;
      const scanned = scanner.push(run.subarray(0, size));
      records.set(scanned, at);
      at += scanned.length;
      rows += scanner.rows - passed;
      r = end;
    }
    return {
      records: records.subarray(0, at),
      header: scanner.header,
      rows,
      malformed: scanner.malformed,
    };
  }
}

const QUOTE = 0x22, COMMA = 0x2c, LF = 0x0a, COLON = 0x3a, BACKSLASH = 0x5c;
const LBRACE = 0x7b, RBRACE = 0x7d, MINUS = 0x2d, DOT = 0x2e, ZERO = 0x30, NINE = 0x39;
const isDigit = (c: number) => c >= ZERO && c <= NINE;
const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** A growing byte buffer. */
class Bytes {
  #buf: Uint8Array;
  length = 0;
  constructor(size: number) {
    this.#buf = new Uint8Array(Math.max(64, size));
  }
  /** Room for n more bytes; returns the buffer to write at this.length. */
  room(n: number): Uint8Array {
    if (this.length + n > this.#buf.length) {
      const next = new Uint8Array(Math.max(this.#buf.length * 2, this.length + n));
      next.set(this.#buf.subarray(0, this.length));
      this.#buf = next;
    }
    return this.#buf;
  }
  text(s: string) {
    const b = encoder.encode(s);
    this.room(b.length).set(b, this.length);
    this.length += b.length;
  }
  view(): Uint8Array {
    return this.#buf.subarray(0, this.length);
  }
}

/**
 * Copies flat JSON objects of ASCII text straight from their bytes into CSV records: keys and
 * string values without escapes, numbers (their text as written), true, false, null. Anything
 * else (an escape, a non-ASCII byte, a nested value, a key read twice, a key starting with a
 * digit, which JSON.parse would reorder, any syntax error) returns false with nothing written,
 * and the message is read the general way. The record it writes is the one csvLine writes for
 * the values readJson reads (batch_test.ts compares them on random messages).
 */
class FlatJson {
  // per column: where this message's value starts and ends, 1 = quote it, and the message
  // that set it (a column set twice in one message is a field named twice)
  #start = new Int32Array(32);
  #end = new Int32Array(32);
  #quote = new Uint8Array(32);
  #seen = new Int32Array(32);
  #message = 0;
  // the keys of the previous object, by position, and their columns: the next object usually
  // names the same fields in the same order, and then no key is decoded
  #keys: Uint8Array[] = [];
  #keyCols: number[] = [];

  constructor(
    private readonly columnOf: (key: string) => number,
    private readonly forget: (known: number) => void,
    private readonly count: () => number,
  ) {}

  #column(b: Uint8Array, from: number, to: number, k: number, known: number): number {
    const prev = this.#keys[k];
    if (prev !== undefined && prev.length === to - from && this.#keyCols[k] < known) {
      let same = true;
      for (let i = 0; i < prev.length; i++) {
        if (prev[i] !== b[from + i]) {
          same = false;
          break;
        }
      }
      if (same) return this.#keyCols[k];
    }
    const col = this.columnOf(String.fromCharCode(...b.subarray(from, to)));
    // a copy (the message may be a Buffer, whose slice is a view)
    this.#keys[k] = Uint8Array.from(b.subarray(from, to));
    this.#keyCols[k] = col;
    if (col >= this.#seen.length) this.#grow(col + 1);
    return col;
  }

  #grow(n: number) {
    const size = Math.max(n, this.#seen.length * 2);
    const grow = <T extends Int32Array | Uint8Array>(a: T, make: (n: number) => T) => {
      const b = make(size);
      b.set(a);
      return b;
    };
    this.#start = grow(this.#start, (n) => new Int32Array(n));
    this.#end = grow(this.#end, (n) => new Int32Array(n));
    this.#quote = grow(this.#quote, (n) => new Uint8Array(n));
    this.#seen = grow(this.#seen, (n) => new Int32Array(n));
  }

  /** Writes the message's CSV record to out; false (and nothing written) when it cannot. */
  write(b: Uint8Array, out: Bytes): boolean {
    const known = this.#width = this.count();
    const ok = this.#read(b, known);
    const width = this.#width;
    if (!ok) {
      if (width > known) {
        this.forget(known);
        // columns numbered from `known` on may be given again to other names
        this.#keys = [];
        this.#keyCols = [];
      }
      return false;
    }
    let size = width; // commas and the LF
    const m = this.#message;
    for (let c = 0; c < width; c++) {
      if (this.#seen[c] === m) size += this.#end[c] - this.#start[c] + 2 * this.#quote[c];
    }
    const buf = out.room(size);
    let at = out.length;
    for (let c = 0; c < width; c++) {
      if (c > 0) buf[at++] = COMMA;
      if (this.#seen[c] !== m) continue;
      const q = this.#quote[c];
      if (q) buf[at++] = QUOTE;
      for (let i = this.#start[c], e = this.#end[c]; i < e; i++) buf[at++] = b[i];
      if (q) buf[at++] = QUOTE;
    }
    buf[at++] = LF;
    out.length = at;
    return true;
  }

  // the column count after the current message's fields so far
  #width = 0;

  #read(b: Uint8Array, known: number): boolean {
    const m = ++this.#message;
    const n = b.length;
    let i = 0;
    while (i < n && isSpace(b[i])) i++;
    if (b[i] !== LBRACE) return false;
    i++;
    while (i < n && isSpace(b[i])) i++;
    let k = 0;
    if (b[i] === RBRACE) i++;
    else {
      for (;;) {
        if (b[i] !== QUOTE) return false;
        const ks = ++i;
        for (; i < n; i++) {
          const c = b[i];
          if (c === QUOTE) break;
          if (c < 0x20 || c > 0x7e || c === BACKSLASH) return false;
        }
        if (i >= n || (i > ks && isDigit(b[ks]))) return false;
        const col = this.#column(b, ks, i, k++, known);
        if (col >= this.#width) this.#width = col + 1;
        if (this.#seen[col] === m) return false;
        this.#seen[col] = m;
        i++;
        while (i < n && isSpace(b[i])) i++;
        if (b[i] !== COLON) return false;
        i++;
        while (i < n && isSpace(b[i])) i++;
        const c = b[i];
        let vs = i, quote = 0;
        if (c === QUOTE) {
          vs = ++i;
          for (; i < n; i++) {
            const d = b[i];
            if (d === QUOTE) break;
            if (d < 0x20 || d > 0x7e || d === BACKSLASH) return false;
            if (d === COMMA) quote = 1;
          }
          if (i >= n) return false;
          this.#end[col] = i++;
        } else if (c === MINUS || isDigit(c)) {
          if (c === MINUS) i++;
          if (b[i] === ZERO) i++;
          else if (isDigit(b[i])) { while (i < n && isDigit(b[i])) i++; }
          else return false;
          if (b[i] === DOT) {
            if (!isDigit(b[++i])) return false;
            while (i < n && isDigit(b[i])) i++;
          }
          if (b[i] === 0x65 || b[i] === 0x45) {
            i++;
            if (b[i] === 0x2b || b[i] === MINUS) i++;
            if (!isDigit(b[i])) return false;
            while (i < n && isDigit(b[i])) i++;
          }
          this.#end[col] = i;
        } else if (literal(b, i, "true") || literal(b, i, "false")) {
          i += c === 0x74 ? 4 : 5;
          this.#end[col] = i;
        } else if (literal(b, i, "null")) {
          i += 4;
          vs = i;
          this.#end[col] = i;
        } else return false;
        this.#start[col] = vs;
        this.#quote[col] = quote;
        while (i < n && isSpace(b[i])) i++;
        if (b[i] === COMMA) {
          i++;
          while (i < n && isSpace(b[i])) i++;
          continue;
        }
        if (b[i] !== RBRACE) return false;
        i++;
        break;
      }
    }
    while (i < n && isSpace(b[i])) i++;
    return i === n;
  }
}

function literal(b: Uint8Array, at: number, word: string): boolean {
  for (let i = 0; i < word.length; i++) if (b[at + i] !== word.charCodeAt(i)) return false;
  return true;
}
