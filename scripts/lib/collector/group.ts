// Group commit for POST /v1/events: requests that arrive within a few milliseconds of each
// other (and share a header line) are staged as one batch, validated in one pass and committed
// in one transaction; each is answered after that commit with its own counts and lines.
//
// Request i of a group is scanned on its own (so its malformed lines, even an unterminated
// quote, stay its own) with line numbers offset by i * PART; ingest.batch_parts splits the
// outcome back by request. Idempotency keys are claimed and stored per request inside the
// group's transaction. When the group transaction fails for any reason, every request in it is
// run again on its own (one request, one transaction, as without grouping), so a request that
// breaks a group only fails itself.
import type { Sql } from "../common/db.ts";
import {
  batchParts,
  type BatchResult,
  CsvScanner,
  HeaderError,
  type LoadResult,
  type Settings,
  stageBatch,
} from "../batch/mod.ts";
import type { Logger } from "../common/log.ts";
import { claim, store } from "./idempotency.ts";

/** Line numbers of request i in a group's staging: i * PART + its own line number. */
export const PART = 100_000_000;

export interface GroupRequest {
  client: string;
  key: string | null;
  fingerprint: string;
  /** the body as CSV (NDJSON already converted) */
  csv: Uint8Array;
  /** the body's own format, and its line numbers from the CSV's (for the reply) */
  format: string;
  lineOf(n: number): number;
}

export interface GroupReply {
  status: number;
  body: string;
  batchId: number | null;
  result?: LoadResult;
  replayed?: boolean;
}

export interface GroupOptions {
  sql: Sql;
  settings: Settings;
  log: Logger;
  /** how long the first request of a group waits for others */
  windowMs: number;
  /** group transactions at the same time (each holds one connection) */
  maxGroups: number;
  maxRequests?: number;
  maxBytes?: number;
  analytics?: "inline" | "deferred";
  /** a loaded request's reply (status and JSON body) */
  answer(r: LoadResult, req: GroupRequest): GroupReply;
  /** what a reused Idempotency-Key with another body gets */
  keyReused(): GroupReply;
  /** one request on its own, in its own transaction (the path without grouping) */
  single(req: GroupRequest): Promise<GroupReply>;
  /** after each group: how many requests it held and how long its transaction took */
  onGroup?(requests: number, ms: number): void;
}

interface Pending {
  req: GroupRequest;
  headerKey: string;
  resolve(r: GroupReply): void;
  reject(e: unknown): void;
}

interface Part {
  item: Pending;
  scanner: CsvScanner;
  copy: Uint8Array;
}

/** The first line of a CSV body (BOM and CR dropped): requests group only with their like. */
function firstLine(csv: Uint8Array): string {
  let start = 0;
  if (csv[0] === 0xef && csv[1] === 0xbb && csv[2] === 0xbf) start = 3;
  let end = csv.indexOf(0x0a, start);
  if (end < 0) end = csv.length;
  if (end > start && csv[end - 1] === 0x0d) end--;
  return new TextDecoder().decode(csv.subarray(start, end));
}

async function* chunksOf(chunks: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const c of chunks) yield c;
}

export class GroupCommitter {
  #pending: Pending[] = [];
  #running = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly o: GroupOptions) {}

  /** Answers the request after its group committed (or after it ran alone). */
  submit(req: GroupRequest): Promise<GroupReply> {
    return new Promise((resolve, reject) => {
      // one client per group: the schema registry's source pins are per client key
      this.#pending.push({
        req,
        headerKey: `${req.client}\n${firstLine(req.csv)}`,
        resolve,
        reject,
      });
      this.#kick();
    });
  }

  #kick() {
    if (this.#timer !== undefined || this.#pending.length === 0) return;
    if (this.#running >= this.o.maxGroups) return; // the next free slot kicks again
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#flush();
    }, this.o.windowMs);
  }

  #flush() {
    while (this.#running < this.o.maxGroups && this.#pending.length > 0) {
      const group = this.#take();
      this.#running++;
      this.#run(group).finally(() => {
        this.#running--;
        this.#kick();
      });
    }
  }

  /** The oldest request and those waiting behind it with the same header, within the caps. */
  #take(): Pending[] {
    const maxRequests = this.o.maxRequests ?? 64;
    const maxBytes = this.o.maxBytes ?? 16 << 20;
    const first = this.#pending[0];
    const group: Pending[] = [];
    const keys = new Set<string>();
    let bytes = 0;
    const rest: Pending[] = [];
    for (const p of this.#pending) {
      const idKey = p.req.key === null ? null : `${p.req.client}\n${p.req.key}`;
      const fits = group.length === 0 ||
        (group.length < maxRequests && bytes + p.req.csv.length <= maxBytes &&
          p.headerKey === first.headerKey && (idKey === null || !keys.has(idKey)));
      if (fits) {
        group.push(p);
        bytes += p.req.csv.length;
        if (idKey !== null) keys.add(idKey);
      } else rest.push(p);
    }
    this.#pending = rest;
    return group;
  }

  async #run(group: Pending[]) {
    const started = performance.now();
    // scanned before the transaction; a body without a usable header goes its own way
    const parts: Part[] = [];
    const alone: Pending[] = [];
    for (const [i, item] of group.entries()) {
      try {
        const scanner = new CsvScanner(i * PART);
        const head = scanner.push(item.req.csv);
        const tail = scanner.end();
        const copy = new Uint8Array(head.length + tail.length);
        copy.set(head);
        copy.set(tail, head.length);
        if (
          scanner.header === undefined ||
          (parts.length > 0 && scanner.header.join(",") !== parts[0].scanner.header!.join(","))
        ) {
          alone.push(item);
        } else parts.push({ item, scanner, copy });
      } catch (error) {
        if (!(error instanceof HeaderError)) throw error;
        alone.push(item);
      }
    }
    for (const item of alone) this.#alone(item);
    if (parts.length === 0) return;
    try {
      const replies = await this.#transaction(parts, group.length);
      parts.forEach((p, k) => p.item.resolve(replies[k]));
      this.o.onGroup?.(parts.length, performance.now() - started);
    } catch (error) {
      if (parts.length === 1) {
        parts[0].item.reject(error);
        return;
      }
      this.o.log.warn("group commit failed: its requests run one by one", {
        requests: parts.length,
        error: (error as Error).message,
      });
      for (const p of parts) this.#alone(p.item);
    }
  }

  #alone(item: Pending) {
    this.o.single(item.req).then(item.resolve, item.reject);
  }

  async #transaction(parts: Part[], slots: number): Promise<GroupReply[]> {
    const { sql, settings } = this.o;
    return await sql.begin(async (tx) => {
      const replies: (GroupReply | undefined)[] = parts.map(() => undefined);
      const load: number[] = [];
      for (const [k, p] of parts.entries()) {
        const { client, key, fingerprint } = p.item.req;
        if (key) {
          const prior = await claim(tx, client, key, fingerprint);
          if (prior) {
            replies[k] = prior.request_sha256 !== fingerprint ? this.o.keyReused() : {
              status: prior.status,
              body: prior.body,
              batchId: prior.batch_id,
              replayed: true,
            };
            continue;
          }
        }
        load.push(k);
      }
      if (load.length > 0) {
        const bytes = load.reduce((a, k) => a + parts[k].item.req.csv.length, 0);
        const name = `http:${crypto.randomUUID()}`;
        // the schema registry checks the source's pinned version (every request of a group
        // comes from one client)
        const staged = await stageBatch(tx, {
          kind: "http",
          name,
          bytes,
          header: parts[load[0]].scanner.header!,
          records: chunksOf(load.map((k) => parts[k].copy)),
          counted: () => ({
            rows: load.reduce((a, k) => a + parts[k].scanner.rows, 0),
            malformed: load.flatMap((k) => parts[k].scanner.malformed),
          }),
          settings,
          analytics: this.o.analytics,
          sourceKey: parts[load[0]].item.req.client,
        });
        const { opened } = staged;
        if (!staged.result) {
          for (const k of load) {
            replies[k] = this.o.answer({
              outcome: "rejected",
              name,
              bytes: parts[k].item.req.csv.length,
              totalMs: 0,
              reason: opened.reason,
              schemaVersion: opened.schema_version,
            }, parts[k].item.req);
          }
        } else {
          const copyMs = staged.copyMs;
          const byPart = await batchParts(tx, opened.batch_id, PART, slots);
          for (const k of load) {
            const p = parts[k];
            const slot = p.scanner.lineOffset / PART;
            const b = byPart[slot];
            const rows = p.scanner.rows + p.scanner.malformed.length;
            if (b.staged !== p.scanner.rows || b.valid + b.duplicates + b.invalid !== rows) {
              throw new Error(
                `group batch ${opened.batch_id}: request ${slot} sent ${rows} rows, the database accounts for ${
                  b.valid + b.duplicates + b.invalid
                }`,
              );
            }
            const result = {
              batch_id: Number(opened.batch_id),
              rows,
              valid: b.valid,
              invalid: b.invalid,
              duplicates: b.duplicates,
              late: b.late,
              validity_rate: b.validity_rate === null ? null : Number(b.validity_rate),
              invalid_rows: b.invalid_rows,
            } as unknown as BatchResult;
            replies[k] = this.o.answer({
              outcome: rows === 0 ? "empty" : "loaded",
              name,
              bytes: p.item.req.csv.length,
              totalMs: 0,
              copyMs,
              unknownColumns: opened.unknown_columns ?? [],
              schemaVersion: opened.schema_version,
              result,
            }, p.item.req);
          }
        }
        for (const k of load) {
          const { client, key } = parts[k].item.req;
          const r = replies[k]!;
          if (key) await store(tx, client, key, r.status, r.body, r.batchId);
        }
      }
      return replies as GroupReply[];
    });
  }
}
