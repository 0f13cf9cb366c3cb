// Test support: small valid event CSVs with unique ids, built in memory.
let counter = 0;

export const HEADER =
  "event_id,event_time,event_type,user_id,session_id,product_id,category,price,quantity";

/** `rows` valid purchase rows (distinct ids unless `ids` given), event times a minute old. */
export function eventsCsv(rows: number, opts: { ids?: string[]; tag?: number } = {}): string {
  const t = new Date(Date.now() - 60_000).toISOString();
  const lines = [HEADER];
  for (let i = 0; i < rows; i++) {
    const id = opts.ids?.[i] ??
      `0190a000-${(opts.tag ?? 0).toString(16).padStart(4, "0")}-7000-8000-${
        (++counter).toString(16).padStart(12, "0")
      }`;
    lines.push(`${id},${t},purchase,${1 + (i % 50)},s-${i % 7},${1 + (i % 30)},books,9.99,1`);
  }
  return lines.join("\n") + "\n";
}

export interface MixedFile {
  text: string;
  rows: number;
  valid: number;
  invalid: number;
  duplicates: number;
}

/**
 * A file with `rows` data rows: mostly valid purchases, every 10th an exact re-send of the
 * previous row (duplicate), every 25th a negative price (invalid), every 100th a malformed
 * line (wrong field count). Counts are known by construction.
 */
export function mixedCsv(rows: number, tag: number): MixedFile {
  const t = new Date(Date.now() - 60_000).toISOString();
  const lines = [HEADER];
  const out: MixedFile = { text: "", rows, valid: 0, invalid: 0, duplicates: 0 };
  let prev = "";
  for (let i = 1; i <= rows; i++) {
    if (i % 100 === 0) {
      lines.push(`broken,line,${i}`);
      out.invalid++;
    } else if (i % 10 === 0 && prev) {
      lines.push(prev);
      out.duplicates++;
    } else {
      const id = `0190b000-${tag.toString(16).padStart(4, "0")}-7000-8000-${
        (++counter).toString(16).padStart(12, "0")
      }`;
      const price = i % 25 === 0 ? "-1.00" : "19.99";
      const line = `${id},${t},purchase,${1 + (i % 40)},s-${i % 9},${1 + (i % 20)},toys,${price},2`;
      lines.push(line);
      if (price === "-1.00") out.invalid++;
      else {
        out.valid++;
        prev = line;
      }
    }
  }
  out.text = lines.join("\n") + "\n";
  return out;
}

/** The fields of one valid purchase (in HEADER order), with overrides. */
export function purchaseFields(
  eventId: string,
  eventTime: string,
  extra: Partial<Record<string, string>> = {},
): Record<string, string> {
  return {
    event_id: eventId,
    event_time: eventTime,
    event_type: "purchase",
    user_id: "7",
    session_id: "s-1",
    product_id: "42",
    category: "books",
    price: "12.50",
    quantity: "2",
    ...extra,
  } as Record<string, string>;
}

/** Every v2 field of one valid purchase (a logged-in user paying by card), with overrides. */
export function fullPurchase(
  over: Partial<Record<string, string>> & { event_id: string; event_time: string },
): Record<string, string> {
  return {
    event_type: "purchase",
    user_id: "7",
    session_id: "s-1",
    product_id: "42",
    category: "books",
    price: "12.50",
    quantity: "2",
    currency: "EUR",
    device: "mobile",
    traffic_source: "email",
    payment_method: "card",
    search_query: "",
    user_email: "a@example.com",
    ...over,
  } as Record<string, string>;
}
