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
