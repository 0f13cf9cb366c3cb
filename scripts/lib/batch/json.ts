// JSON event objects -> CSV field texts, shared by the HTTP NDJSON body and Kafka JSON messages.
// Structure only: every rule on values lives in SQL. Numbers keep their source text (a JSON
// 12.10 stays "12.10", big ids do not lose digits).

interface RawJson {
  rawJSON: string;
}
type JsonWithRaw = typeof JSON & {
  rawJSON(text: string): RawJson;
  isRawJSON(value: unknown): value is RawJson;
};
const J = JSON as JsonWithRaw;

/** A number JSON.parse kept as its source text (see keepNumberText). */
export const isRawJson = (value: unknown): value is RawJson => J.isRawJSON(value);

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
 * plain JSON.parse loses nothing; the reviver that keeps source text costs several times more
 * (docs/measurements.md). A match
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
 * print back as written is parsed again with the reviver. Events whose fields
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
