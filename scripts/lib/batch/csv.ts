// A byte-level CSV structure checker that makes COPY unable to fail.
//
// It reads records the way PostgreSQL's CSV COPY does (every `"` toggles quoting), and passes
// good records through untouched except for a `line_no,` prefix and a plain LF ending. Records
// COPY would choke on (wrong field count, NUL, invalid UTF-8, bare CR, unterminated quote) are
// diverted as malformed rows with their raw bytes. It never decodes or allocates per field, so
// it costs little of a core PostgreSQL is not using (docs/measurements.md).

const QUOTE = 0x22, COMMA = 0x2c, LF = 0x0a, CR = 0x0d, NUL = 0x00;

export interface MalformedRow {
  lineNo: number;
  raw: Uint8Array;
  why: string;
}

export class HeaderError extends Error {
  override name = "HeaderError";
}

/** Splits one decoded CSV record into fields (PostgreSQL CSV semantics). */
export function splitRecord(text: string): string[] {
  const fields: string[] = [];
  let cur = "";
  let inQuote = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      if (inQuote && text[i + 1] === '"') {
        cur += '"';
        i++;
      } else inQuote = !inQuote;
    } else if (ch === "," && !inQuote) {
      fields.push(cur);
      cur = "";
    } else cur += ch;
  }
  fields.push(cur);
  return fields;
}

/**
 * Streams raw file bytes in, COPY-ready bytes out. The first record is the header: it sets
 * the expected field count and is not emitted.
 */
export class CsvScanner {
  header: string[] | undefined;
  /** records passed to COPY */
  rows = 0;
  malformed: MalformedRow[] = [];

  /**
   * Added to every line number it reports (default 0): the HTTP collector stages several
   * requests as one batch and keeps their lines apart this way.
   */
  constructor(readonly lineOffset = 0, opts: { minBuffer?: number } = {}) {
    this.#minBuffer = opts.minBuffer ?? 1 << 16;
  }

  /**
   * The next record starts at line `line` (lineOffset added, as reported): for a caller that
   * scans only some records of a file, each run of them where it lies. Call between records.
   */
  resumeAt(line: number) {
    this.#line = this.#recLine = line - this.lineOffset;
  }

  // the smallest output buffer (each push hands its buffer over and starts a new one)
  #minBuffer: number;

  #expected = 0;
  #inQuote = false;
  #line = 1;
  #recLine = 1;
  #fields = 1;
  #bad: string | undefined;
  #need = 0;
  #lo = 0x80;
  #hi = 0xbf;
  #cr = false;
  #first = true;
  #parts: Uint8Array[] = [];
  #partsLen = 0;
  #out = new Uint8Array(0);
  #pos = 0;

  /** Consumes a chunk; returns the COPY bytes it completed (possibly empty). */
  push(chunk: Uint8Array): Uint8Array {
    let i = 0;
    if (this.#first) {
      this.#first = false;
      if (chunk.length >= 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) i = 3;
    }
    this.#reserve(chunk.length + (chunk.length >> 3) + this.#partsLen + 64);
    let start = i;
    const n = chunk.length;
    let inQuote = this.#inQuote;
    for (; i < n; i++) {
      const b = chunk[i];
      if (this.#need > 0) {
        if (b < this.#lo || b > this.#hi) {
          this.#bad ??= "invalid UTF-8";
          this.#need = 0;
        } else {
          this.#need--;
          this.#lo = 0x80;
          this.#hi = 0xbf;
          continue;
        }
      }
      if (this.#cr) {
        this.#cr = false;
        if (b !== LF) this.#bad ??= "carriage return outside quotes";
      }
      if (b >= 0x80) {
        this.#lead(b);
        continue;
      }
      if (b === QUOTE) {
        inQuote = !inQuote;
      } else if (b === LF) {
        this.#line++;
        if (!inQuote) {
          this.#inQuote = false;
          this.#record(chunk, start, i);
          start = i + 1;
        }
      } else if (inQuote) {
        if (b === NUL) this.#bad ??= "NUL byte";
      } else if (b === COMMA) {
        this.#fields++;
      } else if (b === CR) {
        this.#cr = true;
      } else if (b === NUL) {
        this.#bad ??= "NUL byte";
      }
    }
    this.#inQuote = inQuote;
    if (start < n) {
      this.#parts.push(chunk.subarray(start, n));
      this.#partsLen += n - start;
    }
    return this.#take();
  }

  /** Flushes the last record (no trailing newline, or an unterminated quote). */
  end(): Uint8Array {
    this.#reserve(this.#partsLen + 64);
    if (this.#need > 0) this.#bad ??= "invalid UTF-8";
    if (this.#inQuote) this.#bad = "unterminated quoted field";
    if (this.#partsLen > 0 || this.#bad) this.#record(new Uint8Array(0), 0, 0, true);
    return this.#take();
  }

  #lead(b: number) {
    if (b >= 0xc2 && b <= 0xdf) this.#need = 1;
    else if (b === 0xe0) [this.#need, this.#lo] = [2, 0xa0];
    else if ((b >= 0xe1 && b <= 0xec) || b === 0xee || b === 0xef) this.#need = 2;
    else if (b === 0xed) [this.#need, this.#hi] = [2, 0x9f];
    else if (b === 0xf0) [this.#need, this.#lo] = [3, 0x90];
    else if (b >= 0xf1 && b <= 0xf3) this.#need = 3;
    else if (b === 0xf4) [this.#need, this.#hi] = [3, 0x8f];
    else this.#bad ??= "invalid UTF-8";
  }

  /** Ends the record made of the pending parts plus chunk[start, end). */
  #record(chunk: Uint8Array, start: number, end: number, atEof = false) {
    let body: Uint8Array;
    if (this.#partsLen === 0) body = chunk.subarray(start, end);
    else {
      body = new Uint8Array(this.#partsLen + end - start);
      let o = 0;
      for (const p of this.#parts) {
        body.set(p, o);
        o += p.length;
      }
      body.set(chunk.subarray(start, end), o);
      this.#parts = [];
      this.#partsLen = 0;
    }
    const lineNo = this.#recLine;
    const fields = this.#fields;
    const bad = this.#bad;
    this.#recLine = this.#line;
    this.#fields = 1;
    this.#bad = undefined;
    if (this.#cr && atEof) this.#cr = false;
    let len = body.length;
    if (len > 0 && body[len - 1] === CR && !atEof) len--;
    else if (len > 0 && body[len - 1] === CR && atEof && bad === undefined) len--;

    if (len === 0 && fields === 1 && bad === undefined) return; // blank line
    if (this.header === undefined) {
      if (bad) throw new HeaderError(`The header line is unreadable (${bad})`);
      const text = new TextDecoder().decode(body.subarray(0, len));
      this.header = splitRecord(text).map((h) => h.trim());
      this.#expected = this.header.length;
      return;
    }
    if (bad !== undefined || fields !== this.#expected) {
      this.malformed.push({
        lineNo: lineNo + this.lineOffset,
        raw: body.slice(0, len),
        why: bad ?? `${fields} fields where the header has ${this.#expected}`,
      });
      return;
    }
    this.rows++;
    this.#writeLine(lineNo, body.subarray(0, len));
  }

  #writeLine(lineNo: number, body: Uint8Array) {
    this.#reserve(body.length + WIRE_PREFIX_BYTES + 1);
    const out = this.#out;
    let p = writeWirePrefix(out, this.#pos, lineNo + this.lineOffset);
    out.set(body, p);
    p += body.length;
    out[p++] = LF;
    this.#pos = p;
  }

  #reserve(extra: number) {
    if (this.#pos + extra <= this.#out.length) return;
    const next = new Uint8Array(
      Math.max(this.#pos + extra, this.#out.length * 2, this.#minBuffer),
    );
    next.set(this.#out.subarray(0, this.#pos));
    this.#out = next;
  }

  #take(): Uint8Array {
    const result = this.#out.subarray(0, this.#pos);
    this.#out = new Uint8Array(0);
    this.#pos = 0;
    return result;
  }
}

/*
 * The wire format: what the scanner passes to COPY, one line per record, "line_no," + the
 * record as read (its quoted newlines kept) + LF, into the staging table's (line_no, fields…)
 * columns. Anything else that writes records for COPY (the Kafka batch builder) writes them
 * with these two functions.
 */

/** The most bytes a "line_no," prefix takes (a line number below 10^15). */
export const WIRE_PREFIX_BYTES = 16;

/** The bytes the "line_no," prefix of line `lineNo` takes. */
export const wirePrefixSize = (lineNo: number) => String(lineNo).length + 1;

/** Writes the "line_no," prefix of a record at `at`; returns the position after it. */
export function writeWirePrefix(into: Uint8Array, at: number, lineNo: number): number {
  let size = 1;
  for (let p = 10; p <= lineNo; p *= 10) size++;
  for (let k = at + size - 1, n = lineNo; k >= at; k--) {
    into[k] = 0x30 + n % 10;
    n = Math.floor(n / 10);
  }
  into[at + size] = COMMA;
  return at + size + 1;
}

/** The record text of one wire line (its "line_no," prefix and LF dropped). */
export function readWireRecord(line: string): string {
  return line.slice(line.indexOf(",") + 1, line.endsWith("\n") ? -1 : undefined);
}

/** Text for a malformed row's raw bytes: invalid UTF-8 and NUL become U+FFFD. */
export function rawText(raw: Uint8Array): string {
  return new TextDecoder().decode(raw).replaceAll("\u0000", "\uFFFD");
}

const NEEDS_QUOTES = /[",\r\n]/;

/**
 * One CSV record with its LF, as the loader reads it: a field holding `"`, `,`, CR or LF is
 * quoted (its quotes doubled), any other is written as is; an empty field is NULL to COPY.
 * The same bytes as csv-stringify with { record_delimiter: "unix", quote_record_delimiter:
 * true } (csv_test.ts checks it), at a fraction of the cost: the generator, the HTTP NDJSON
 * body and the Kafka batch all write their records here.
 */
export function csvLine(fields: readonly string[]): string {
  let out = "";
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i];
    if (i > 0) out += ",";
    out += NEEDS_QUOTES.test(f) ? `"${f.replaceAll('"', '""')}"` : f;
  }
  return out + "\n";
}

/** The physical lines a CSV text takes (its LFs; quoted fields may hold some). */
export function lineCount(text: string): number {
  let n = 0;
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) n++;
  return n;
}
