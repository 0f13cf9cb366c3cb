// The generator end to end: determinism, valid CSV, the shop's mix, manifest counts recounted
// independently from the files (scripts/lib/generator/testing/reference_checker.ts reads docs/rules.md on its own),
// atomic hand-off, the command line.
import { parse } from "csv-parse/sync";
import { join } from "node:path";
import { type FileManifest, generate, type Manifest } from "./lib/generator/generate.ts";
import { ReferenceChecker, splitRecords } from "./lib/generator/testing/reference_checker.ts";
import { HELP } from "./lib/generator/flags.ts";
import { orderedReasons } from "./lib/generator/manifest.ts";
import { stringify } from "csv-stringify/sync";
import {
  CATEGORIES,
  COLUMNS_V1,
  COLUMNS_V2,
  REASON_CODES,
  type ReasonCode,
} from "./lib/common/contract.ts";
import { PRICE_RANGES } from "./lib/generator/catalog.ts";

const DENO = Deno.execPath();
const ROOT = new URL("..", import.meta.url).pathname;
const START = "2026-11-21T10:00:00Z";
const DAY = 86_400_000;

function assert(ok: unknown, message: string): asserts ok {
  if (!ok) throw new Error(message);
}

function assertEquals<T>(actual: T, expected: T, message = "") {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${message}\n  actual:   ${a}\n  expected: ${e}`);
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "generate_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function csvNames(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.endsWith(".csv")) names.push(entry.name);
  }
  return names.sort();
}

/** The file without its malformed lines (each is exactly one physical line), as text. */
function withoutMalformed(bytes: Uint8Array, file: FileManifest): string {
  const skip = new Set(file.malformed_lines);
  const lines: Uint8Array[] = [];
  let start = 0;
  let line = 1;
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === 0x0a) {
      if (!skip.has(line) && (i > start || i < bytes.length)) {
        lines.push(bytes.subarray(start, Math.min(i + 1, bytes.length)));
      }
      start = i + 1;
      line++;
    }
  }
  const joined = new Uint8Array(lines.reduce((n, l) => n + l.length, 0));
  let offset = 0;
  for (const l of lines) {
    joined.set(l, offset);
    offset += l.length;
  }
  return new TextDecoder("utf-8", { fatal: true }).decode(joined);
}

/** Recounts every file of a run at ingestion time `nowMs` and compares with the manifest. */
async function recount(dir: string, manifest: Manifest, nowMs: number) {
  const checker = new ReferenceChecker({ nowMs });
  for (const file of manifest.files) {
    const checked = checker.checkFile(await Deno.readFile(join(dir, file.name)));
    assert(!checked.rejected, `${file.name} rejected: ${checked.rejected}`);
    const at = `${file.name} at ${new Date(nowMs).toISOString()}`;
    assertEquals(checked.rows.length, file.rows, `${at}: rows`);
    assertEquals(
      [checked.valid, checked.duplicates, checked.invalid],
      [file.valid, file.duplicates, file.invalid],
      `${at}: valid, duplicates, invalid`,
    );
    assertEquals(orderedReasons(checked.reasons), file.reasons, `${at}: reasons`);
    assertEquals(
      checked.rows.filter((r) => r.reasons.includes("malformed_row")).map((r) => r.line),
      file.malformed_lines,
      `${at}: malformed lines`,
    );
  }
}

Deno.test("same flags, seed and start time give byte-identical files and manifest", async () => {
  await withTempDir(async (tmp) => {
    const options = {
      files: 3,
      events: 3000,
      seed: 7,
      startTime: START,
      anomalyRate: 0.05,
      duplicateRate: 0.03,
      lateRate: 0.02,
    };
    const a = await generate({ ...options, outDir: join(tmp, "a") });
    const b = await generate({ ...options, outDir: join(tmp, "b") });
    const c = await generate({ ...options, seed: 8, outDir: join(tmp, "c") });
    const namesA = await csvNames(join(tmp, "a"));
    assertEquals(namesA, await csvNames(join(tmp, "b")), "names");
    assertEquals(namesA, [
      "events-20261121T100000000Z-7-000000.csv",
      "events-20261121T100100000Z-7-000001.csv",
      "events-20261121T100200000Z-7-000002.csv",
    ]);
    for (const name of namesA) {
      assertEquals(await sha256(join(tmp, "a", name)), await sha256(join(tmp, "b", name)), name);
    }
    assertEquals(a, b, "manifests");
    assert(
      JSON.stringify(a.files[0].reasons) !== JSON.stringify(c.files[0].reasons) ||
        a.files[0].bytes !== c.files[0].bytes,
      "another seed gives other files",
    );
  });
});

Deno.test("manifest counts equal an independent recount of the files (schema v2)", async () => {
  await withTempDir(async (dir) => {
    const manifest = await generate({
      files: 4,
      events: 6000,
      seed: 11,
      startTime: START,
      anomalyRate: 0.12,
      duplicateRate: 0.06,
      lateRate: 0.03,
      outDir: dir,
      manifestPath: join(dir, "manifest.json"),
    });
    assertEquals(JSON.parse(await Deno.readTextFile(join(dir, "manifest.json"))), manifest);
    const from = Date.parse(manifest.valid_for_ingestion.from);
    const to = Date.parse(manifest.valid_for_ingestion.to);
    assertEquals(to - from, DAY, "a fixed run holds for 24 h of ingestion times");
    await recount(dir, manifest, from);
    await recount(dir, manifest, to);
    await recount(dir, manifest, from + 3_600_000);
    // every reason code shows up, and the totals add up
    assertEquals(Object.keys(manifest.totals.reasons), [...REASON_CODES]);
    for (const f of [...manifest.files, manifest.totals]) {
      assertEquals(
        f.rows,
        f.valid + f.duplicates + f.invalid,
        "rows = valid + duplicates + invalid",
      );
    }
    assertEquals(manifest.totals.rows, 24_000);
    // some rows carry several faults
    const sum = Object.values(manifest.totals.reasons).reduce((a, b) => a + b, 0);
    assert(sum > manifest.totals.invalid, "some invalid rows have several reasons");
  });
});

Deno.test("daily-events and a shared shop: file sizes follow the cycle, counts recounted, one shop across runs", async () => {
  await withTempDir(async (dir) => {
    const shop = { shopSeed: 5, shopUsers: 900, shopProducts: 120 };
    // a day's run and a minute-by-minute run: different seeds, sizes and windows
    const day = await generate({
      files: 1,
      dailyEvents: 6000,
      intervalSeconds: 86_400,
      startTime: "2026-11-21T00:00:00Z", // a Saturday: weight 0.95
      seed: 21,
      ...shop,
      activeUsers: 600,
      anomalyRate: 0.05,
      duplicateRate: 0.03,
      lateRate: 0,
      outDir: join(dir, "day"),
    });
    const minutes = await generate({
      files: 30,
      dailyEvents: 60_000,
      intervalSeconds: 60,
      startTime: "2026-11-22T20:00:00Z", // a Sunday (1.15) at 20:00 (1.6 of 21.58)
      seed: 22,
      ...shop,
      activeUsers: 300,
      anomalyRate: 0.05,
      duplicateRate: 0.03,
      lateRate: 0.02,
      outDir: join(dir, "minutes"),
    });
    assertEquals([day.daily_events, day.events_per_file, day.shop_seed], [6000, null, 5]);
    assertEquals(day.files[0].rows, 5700);
    // 60,000 x 1.15 x 1.6 / 21.58 / 60 = 85.27 a minute, the fractions carried over
    assertEquals(minutes.totals.rows, Math.round(60_000 * 1.15 * 1.6 / 21.58 / 2));
    assert(minutes.files.every((f) => f.rows === 85 || f.rows === 86), "85 or 86 rows a minute");
    await recount(join(dir, "day"), day, Date.parse(day.valid_for_ingestion.from));
    await recount(join(dir, "minutes"), minutes, Date.parse(minutes.valid_for_ingestion.from));

    // the same product has the same category and prices, the same user the same e-mail
    const products = new Map<string, string>();
    const users = new Map<string, string>();
    let sharedProducts = 0, sharedUsers = 0, maxUser = 0, otherProducts = 0, otherUsers = 0;
    for (const [sub, m] of [["day", day], ["minutes", minutes]] as const) {
      for (const f of m.files) {
        const rows = parse(await Deno.readTextFile(join(dir, sub, f.name)), {
          columns: true,
          relax_column_count: true,
          skip_records_with_error: true,
        }) as Record<string, string>[];
        for (const r of rows) {
          if (/^\d+$/.test(r.product_id ?? "") && /^\d+\.\d{2}$/.test(r.price ?? "")) {
            const key = `${r.product_id} ${r.currency}`;
            const value = `${r.category} ${r.price}`;
            const seen = products.get(key);
            if (seen === undefined) products.set(key, `${sub}:${value}`);
            else if (!seen.startsWith(`${sub}:`)) {
              if (seen.endsWith(`:${value}`)) sharedProducts++;
              else otherProducts++;
            }
          }
          if (/^1\d{4}$/.test(r.user_id ?? "") && /@/.test(r.user_email ?? "")) {
            maxUser = Math.max(maxUser, Number(r.user_id));
            const seen = users.get(r.user_id);
            if (seen === undefined) users.set(r.user_id, `${sub}:${r.user_email}`);
            else if (!seen.startsWith(`${sub}:`)) {
              if (seen.endsWith(`:${r.user_email}`)) sharedUsers++;
              else otherUsers++;
            }
          }
        }
      }
    }
    // anomalies and conflicting re-sends alter a few rows' values (the database test, on valid
    // rows only, finds no difference at all)
    assert(otherProducts * 20 < sharedProducts, `other prices: ${otherProducts}`);
    assert(otherUsers * 20 < sharedUsers, `other e-mails: ${otherUsers}`);
    assert(
      sharedProducts > 100,
      `rows of the minutes with the day's product and price: ${sharedProducts}`,
    );
    assert(sharedUsers > 100, `rows of the minutes with the day's user and e-mail: ${sharedUsers}`);
    assert(maxUser <= 10_000 + 600, `users beyond --active-users: ${maxUser}`);
  });
});

Deno.test("schema v1: v1 header, only v1 reasons, counts recounted", async () => {
  await withTempDir(async (dir) => {
    const manifest = await generate({
      files: 3,
      events: 5000,
      seed: 5,
      startTime: START,
      anomalyRate: 0.1,
      duplicateRate: 0.05,
      schemaVersion: 1,
      outDir: dir,
    });
    const text = await Deno.readTextFile(join(dir, manifest.files[0].name));
    assertEquals(text.slice(0, text.indexOf("\n")), COLUMNS_V1.join(","));
    await recount(dir, manifest, Date.parse(manifest.valid_for_ingestion.from));
    const v2Only: ReasonCode[] = [
      "missing_session_id",
      "invalid_session_id",
      "invalid_quantity",
      "invalid_currency",
      "invalid_device",
      "invalid_traffic_source",
      "invalid_payment_method",
      "invalid_search_query",
    ];
    assertEquals(
      Object.keys(manifest.totals.reasons),
      REASON_CODES.filter((c) => !v2Only.includes(c)),
      "v1 reasons",
    );
  });
});

Deno.test("schema v3: v2 events plus coupon_code on purchases, counted in the manifest", async () => {
  await withTempDir(async (dir) => {
    const opts = { files: 2, events: 5000, startTime: START, anomalyRate: 0.05, outDir: dir };
    const v3 = await generate({ ...opts, seed: 9, schemaVersion: 3 });
    const v2 = await generate({ ...opts, seed: 9, outDir: join(dir, "v2") });
    for (const [k, file] of v3.files.entries()) {
      // the same rows as the v2 run, one column more
      const { extra_values: extra, bytes: _b, ...counts } = file;
      const { bytes: _b2, ...counts2 } = v2.files[k];
      assertEquals(counts, counts2);
      const text = withoutMalformed(await Deno.readFile(join(dir, file.name)), file);
      const records = parse(text, { relax_column_count: false }) as string[][];
      assertEquals(records[0], [...COLUMNS_V2, "coupon_code"], "header");
      const coupons = records.slice(1).filter((r) => r[15] !== "");
      assert(
        coupons.every((r) => r[2] === "purchase" && /^(WELCOME10|SAVE5)$/.test(r[15])),
        "coupons only on purchases",
      );
      // valid rows carrying a coupon, as the manifest says (re-sends and invalid rows carry
      // one too, so the file holds at least as many)
      assert(extra!.coupon_code > 0 && coupons.length >= extra!.coupon_code, file.name);
    }
  });
});

Deno.test("files are valid RFC 4180 CSV apart from the malformed rows the manifest lists", async () => {
  await withTempDir(async (dir) => {
    const manifest = await generate({
      files: 2,
      events: 20_000,
      seed: 3,
      startTime: START,
      anomalyRate: 0.05,
      outDir: dir,
    });
    let quotedNewline = false;
    let quotedComma = false;
    let quotedQuote = false;
    for (const file of manifest.files) {
      const text = withoutMalformed(await Deno.readFile(join(dir, file.name)), file);
      assert(!text.includes("\r"), "LF line ends");
      const records = parse(text, { relax_column_count: false }) as string[][];
      assertEquals(records[0], [...COLUMNS_V2], "header");
      assertEquals(records.length - 1, file.rows - file.malformed_lines.length, "records");
      for (const r of records) {
        const q = r[13];
        quotedNewline ||= q.includes("\n");
        quotedComma ||= q.includes(",");
        quotedQuote ||= q.includes('"');
      }
      // every line is exactly what csv-stringify makes of its fields (the fast path included)
      const lines = stringify(records.slice(1), {
        record_delimiter: "unix",
        quote_record_delimiter: true,
      });
      assertEquals(lines.length, text.length - text.indexOf("\n") - 1, "byte length");
      assert(lines === text.slice(text.indexOf("\n") + 1), "rows equal csv-stringify output");
    }
    assert(quotedNewline && quotedComma && quotedQuote, "some fields needed quoting");
  });
});

Deno.test("the shop: event mix, guests, funnel fields, prices, times and ids", async () => {
  await withTempDir(async (dir) => {
    const manifest = await generate({
      files: 5,
      events: 10_000,
      seed: 21,
      startTime: START,
      anomalyRate: 0,
      duplicateRate: 0,
      lateRate: 0,
      outDir: dir,
    });
    assertEquals(manifest.totals.valid, 50_000);
    const types: Record<string, number> = {};
    const sessions = new Map<string, boolean>();
    let ones = 0;
    let quantities = 0;
    for (const file of manifest.files) {
      const rows = parse(await Deno.readTextFile(join(dir, file.name)), {
        columns: true,
      }) as Record<
        string,
        string
      >[];
      let previous = 0;
      const [from, to] = [Date.parse(file.window_start), Date.parse(file.window_end)];
      for (const r of rows) {
        types[r.event_type] = (types[r.event_type] ?? 0) + 1;
        sessions.set(r.session_id, r.user_id === "");
        const t = Date.parse(r.event_time);
        assert(t >= from && t < to && t >= previous, `time in window, increasing: ${r.event_time}`);
        previous = t;
        // UUIDv7 carries the event time in its first 48 bits
        assertEquals(r.event_id[14], "7", "uuid version");
        assertEquals(parseInt(r.event_id.replace(/-/g, "").slice(0, 12), 16), t, "uuid time");
        if (r.event_type === "search") {
          assert(r.product_id === "" && r.category === "" && r.search_query !== "", "search row");
        } else {
          assert(r.product_id !== "" && CATEGORIES.includes(r.category as never), "product row");
          const [min, max] = PRICE_RANGES[r.category as keyof typeof PRICE_RANGES];
          const price = Number(r.price);
          // the US price is in the category's range; EUR and GBP prices are converted (lower)
          const low = r.currency === "USD" ? min : Math.min(1, min * 0.7);
          assert(/^\d+\.\d\d$/.test(r.price) && price >= low && price <= max, `price ${r.price}`);
        }
        if (r.user_id === "") {
          assert(["view", "search"].includes(r.event_type), "guests only view and search");
          assertEquals(r.user_email, "");
        } else assert(/^[a-z.]+\d+@[a-z.-]+$/.test(r.user_email), `email ${r.user_email}`);
        if (["add_to_cart", "remove_from_cart", "purchase"].includes(r.event_type)) {
          quantities++;
          if (r.quantity === "1") ones++;
          assert(Number(r.quantity) >= 1 && Number(r.quantity) <= 12, `quantity ${r.quantity}`);
        } else assertEquals(r.quantity, "");
        assertEquals(r.payment_method !== "", r.event_type === "purchase", "payment on purchases");
        assert(r.device && r.traffic_source && r.currency, "device, source, currency");
      }
    }
    const share = (t: string) => (types[t] ?? 0) / 50_000;
    // a real shop's mix: mostly views, a few % of sessions cart, fewer buy (docs/generator.md)
    const target = {
      view: 0.77,
      search: 0.155,
      add_to_cart: 0.011,
      wishlist: 0.045,
      remove_from_cart: 0.006,
      purchase: 0.008,
    };
    for (const [t, want] of Object.entries(target)) {
      const tolerance = want < 0.05 ? want * 0.4 : 0.025;
      assert(Math.abs(share(t) - want) <= tolerance, `${t}: ${share(t).toFixed(4)} vs ${want}`);
    }
    assert(share("add_to_cart") > share("remove_from_cart"), "more adds than removes");
    const guests = [...sessions.values()].filter(Boolean).length / sessions.size;
    assert(guests > 0.07 && guests < 0.13, `guest sessions ${guests.toFixed(3)}`);
    assert(ones / quantities > 0.6, "quantity is mostly 1");
  });
});

Deno.test("late, future and too-old rows sit where the manifest promises", async () => {
  await withTempDir(async (dir) => {
    const manifest = await generate({
      files: 3,
      events: 5000,
      seed: 9,
      startTime: START,
      anomalyRate: 0.1,
      lateRate: 0.05,
      outDir: dir,
    });
    const from = Date.parse(manifest.valid_for_ingestion.from);
    const checker = new ReferenceChecker({ nowMs: from });
    for (const file of manifest.files) {
      const checked = checker.checkFile(await Deno.readFile(join(dir, file.name)));
      const windowStart = Date.parse(file.window_start);
      let late = 0;
      for (const row of checked.rows) {
        const t = Date.parse(row.values?.event_time ?? "");
        if (row.status === "valid" && t < windowStart) {
          const windowEnd = Date.parse(file.window_end);
          assert(t < windowEnd - 15 * 60_000 && t >= windowStart - 6 * 3_600_000, "late");
          late++;
        }
        if (row.reasons.includes("future_event_time")) assert(t >= from + 2 * DAY, "future");
        if (row.reasons.includes("too_old_event_time")) {
          assert(t <= Date.parse(START) - 450 * DAY, "too old");
        }
      }
      assertEquals(late, file.late_injected, `${file.name}: late rows`);
    }
  });
});

Deno.test("UUIDv4 ids on request", async () => {
  await withTempDir(async (dir) => {
    // no anomalies: a malformed row would stop the strict parser below
    const m = await generate({
      events: 200,
      seed: 1,
      startTime: START,
      idVersion: 4,
      anomalyRate: 0,
      outDir: dir,
    });
    const rows = parse(await Deno.readTextFile(join(dir, m.files[0].name)), { columns: true });
    for (const r of rows as { event_id: string }[]) {
      if (/^[0-9a-f-]{36}$/.test(r.event_id)) assertEquals(r.event_id[14], "4");
    }
  });
});

Deno.test("no partial .csv is ever visible: rows go to .tmp, then the file appears whole", async () => {
  await withTempDir(async (dir) => {
    const sizes = new Map<string, number>();
    let tmpSeen = 0;
    let done = false;
    const watch = (async () => {
      while (!done) {
        for await (const entry of Deno.readDir(dir)) {
          if (entry.name.endsWith(".tmp")) tmpSeen++;
          if (entry.name.endsWith(".csv") && !sizes.has(entry.name)) {
            sizes.set(entry.name, (await Deno.stat(join(dir, entry.name))).size);
          }
        }
        await new Promise((r) => setTimeout(r, 0));
      }
    })();
    const manifest = await generate({
      files: 3,
      events: 60_000,
      seed: 2,
      startTime: START,
      outDir: dir,
      onProgress: () => {},
    });
    done = true;
    await watch;
    assert(tmpSeen > 0, "the watcher ran while files were being written");
    for (const f of manifest.files) {
      const size = (await Deno.stat(join(dir, f.name))).size;
      assertEquals(size, f.bytes, `${f.name}: manifest bytes`);
      if (sizes.has(f.name)) assertEquals(sizes.get(f.name), size, `${f.name} seen complete`);
    }
    const left = [];
    for await (const e of Deno.readDir(dir)) if (e.name.endsWith(".tmp")) left.push(e.name);
    assertEquals(left, [], "no .tmp left");
  });
});

Deno.test("an existing file is never replaced", async () => {
  await withTempDir(async (dir) => {
    const options = { files: 2, events: 100, seed: 4, startTime: START, outDir: dir };
    const first = await generate(options);
    const path = join(dir, first.files[1].name);
    await Deno.writeTextFile(path, "mine\n");
    let failed: unknown;
    await generate(options).catch((e) => failed = e);
    assert(failed instanceof Error && /already exists/.test(failed.message), "refused");
    assertEquals(await Deno.readTextFile(path), "mine\n");
  });
});

async function cli(args: string[]) {
  const out = await new Deno.Command(DENO, {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-sys",
      "scripts/generate.ts",
      ...args,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("command line: bad flags exit 2 with one line naming the flag", async () => {
  const cases: [string[], RegExp][] = [
    [["--events", "abc"], /^error: --events must be a whole number from 1 to \d+ \(got "abc"\)$/],
    [["--files", "0"], /^error: --files must be a whole number/],
    [["--anomaly-rate", "1.5"], /^error: --anomaly-rate must be a number from 0 to 1/],
    [["--schema-version", "4"], /^error: --schema-version must be 1 or 2 or 3 \(got "4"\)$/],
    [["--id-version", "5"], /^error: --id-version must be 7 or 4/],
    [["--interval=-1"], /^error: --interval must be a number of seconds/],
    [
      ["--interval", "-1"],
      /^error: --interval needs a value \(one starting with "-" is written --interval=<value>\)$/,
    ],
    [["--start-time", "2026-11-21 10:00"], /^error: --start-time must be an ISO-8601 time/],
    [["--start-time", "2026-02-30T10:00:00Z"], /^error: --start-time must be an ISO-8601 time/],
    [["--seed=-3"], /^error: --seed must be a whole number/],
    [["--bogus"], /^error: Unknown flag "--bogus"/],
    [["--events"], /^error: --events needs a value/],
    [["--quiet=yes"], /^error: --quiet takes no value/],
    [["extra"], /^error: Unexpected argument "extra"/],
    [["--continuous", "--files", "2"], /^error: --files cannot be combined with --continuous/],
    [["--anomaly-rate", "0.7", "--duplicate-rate", "0.5"], /^error: --anomaly-rate plus/],
    [["--files", "400", "--interval", "86400"], /^error: --files × --interval must span/],
    [["--manifest", "out.csv"], /^error: --manifest must be a file path/],
  ];
  for (const [args, pattern] of cases) {
    const { code, stdout, stderr } = await cli(args);
    assertEquals(code, 2, `exit status for ${args.join(" ")}`);
    assertEquals(stdout, "", `no output for ${args.join(" ")}`);
    const lines = stderr.trimEnd().split("\n");
    assertEquals(lines.length, 1, `one line for ${args.join(" ")}: ${stderr}`);
    assert(pattern.test(lines[0]), `${args.join(" ")}: ${lines[0]}`);
  }
});

Deno.test("command line: --help documents every flag; a run prints its seed", async () => {
  const help = await cli(["--help"]);
  assertEquals(help.code, 0);
  for (
    const flag of [
      "--files",
      "--events",
      "--interval",
      "--continuous",
      "--seed",
      "--start-time",
      "--anomaly-rate",
      "--duplicate-rate",
      "--late-rate",
      "--schema-version",
      "--out",
      "--manifest",
      "--id-version",
      "--quiet",
      "--help",
    ]
  ) assert(help.stdout.includes(flag) && HELP.includes(flag), `help mentions ${flag}`);
  await withTempDir(async (dir) => {
    const run = await cli(["--events", "50", "--out", dir]);
    assertEquals(run.code, 0, run.stderr);
    assert(/seed \d+ \(random\)/.test(run.stderr), "random seed printed");
    const quiet = await cli(["--events", "50", "--out", dir, "--quiet", "--seed", "1"]);
    assertEquals([quiet.code, quiet.stdout, quiet.stderr], [0, "", ""]);
    // the default fixed run ends now
    const name = (await csvNames(dir)).find((n) => n.includes("-1-"))!;
    const stamp = name.slice(7, 26);
    const started = Date.parse(
      `${stamp.slice(0, 4)}-${stamp.slice(4, 6)}-${stamp.slice(6, 8)}T${stamp.slice(9, 11)}:${
        stamp.slice(11, 13)
      }:${stamp.slice(13, 15)}.${stamp.slice(15, 18)}Z`,
    );
    assert(Math.abs(started + 60_000 - Date.now()) < 60_000, `default start ${name}`);
    const again = await cli(["--events", "50", "--out", dir, "--seed", "1", "--start-time", START]);
    assertEquals(again.code, 0);
    const clash = await cli(["--events", "50", "--out", dir, "--seed", "1", "--start-time", START]);
    assertEquals(clash.code, 1, "an existing file stops the run");
    assert(/^error: File ".*" already exists/m.test(clash.stderr), clash.stderr);
  });
});

Deno.test("continuous: one file per interval until stopped, manifest kept up to date", async () => {
  await withTempDir(async (dir) => {
    const controller = new AbortController();
    const seen: string[] = [];
    const started = Date.now();
    const manifest = await generate({
      continuous: true,
      intervalSeconds: 0.2,
      events: 500,
      seed: 6,
      outDir: dir,
      manifestPath: join(dir, "m.json"),
      signal: controller.signal,
      onFile(file) {
        seen.push(file.name);
        if (seen.length === 3) controller.abort();
      },
    });
    assertEquals(manifest.files.map((f) => f.name), seen);
    assertEquals(await csvNames(dir), seen);
    assert(Date.now() - started >= 550, "paced by the interval");
    const [a, b] = manifest.files;
    assertEquals(a.window_end, b.window_start, "consecutive windows");
    assert(Date.parse(a.window_end) <= Date.now(), "a file is written once its window is over");
    assertEquals(JSON.parse(await Deno.readTextFile(join(dir, "m.json"))).files.length, 3);
  });
});

Deno.test("continuous with a start time in the past is still paced by the interval", async () => {
  await withTempDir(async (dir) => {
    const controller = new AbortController();
    const times: number[] = [];
    const manifest = await generate({
      continuous: true,
      intervalSeconds: 0.2,
      events: 100,
      seed: 6,
      startTime: START,
      outDir: dir,
      signal: controller.signal,
      onFile() {
        times.push(Date.now());
        if (times.length === 3) controller.abort();
      },
    });
    assertEquals(manifest.files[0].name, "events-20261121T100000000Z-6-000000.csv");
    assert(times[2] - times[0] >= 350, `paced: ${times[2] - times[0]} ms for two intervals`);
  });
});

Deno.test("continuous CLI stops cleanly on SIGINT after the file in hand", async () => {
  await withTempDir(async (dir) => {
    const child = new Deno.Command(DENO, {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "--allow-sys",
        "scripts/generate.ts",
        "--continuous",
        "--interval",
        "0.2",
        "--events",
        "300",
        "--out",
        dir,
      ],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (out.split("\n").length < 3) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    child.kill("SIGINT");
    for (let r = await reader.read(); !r.done; r = await reader.read()) out += r.value;
    const status = await child.status;
    await child.stderr.cancel();
    assertEquals(status.code, 0, "exit 0 on SIGINT");
    const lines = out.trim().split("\n").filter((l) => l.startsWith("events-"));
    assert(lines.length >= 2, out);
    assert(/^events-\S+\.csv rows=300 total=\d+ rate=\d+\/s$/.test(lines[0]), lines[0]);
    assertEquals((await csvNames(dir)).length, lines.length, "one line per file");
    for await (const e of Deno.readDir(dir)) assert(!e.name.endsWith(".tmp"), "no .tmp left");
  });
});

Deno.test("records split the way docs/rules.md says (the recount's own parser)", () => {
  const enc = new TextEncoder();
  const records = splitRecords(enc.encode('a,b\n1,"x\ny"\n\n2,3\r\n4,"open\n'));
  assertEquals(records.map((r) => [r.line, r.unterminated]), [[1, false], [2, false], [
    5,
    false,
  ], [6, true]]);
});
