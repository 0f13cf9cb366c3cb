// POST /v1/collect: batches from tracker.js in shoppers' browsers, with a public write key.
// This source reads its input (a JSON batch), enriches it (device from the User-Agent,
// traffic_source from the session's landing page and referrer through SQL, event_time corrected
// for the browser's clock) and hands a CSV batch on to the shared batch path, where the
// contract's checks, the dead letter and the deduplication apply as to any batch.
// Preflight and CORS headers only for the key's allowed origins. docs/tracking.md.
import { createHash } from "node:crypto";
import { csvLine, lineCount } from "../batch/mod.ts";
import { COLUMNS_V2 } from "../common/contract.ts";
import type { Sql } from "../common/db.ts";
import type { Logger } from "../common/log.ts";
import { KEY_FORM, type SiteKey, SiteKeys } from "./keys.ts";
import { parseLanding } from "./landing.ts";
import { RateLimits } from "./limits.ts";
import { parseUserAgent } from "./ua.ts";

/**
 * The columns of a browser batch: schema version 2 but the e-mail (a tracker never sends one),
 * plus two kept in `extra`.
 */
export const COLUMNS = [
  ...COLUMNS_V2.filter((c) => c !== "user_email"),
  "anonymous_id",
  "utm_campaign",
] as const;

/** Fields an event of the tracker may carry, copied as they are. */
const COPIED = [
  "event_id",
  "event_type",
  "user_id",
  "session_id",
  "product_id",
  "category",
  "price",
  "quantity",
  "currency",
  "payment_method",
  "search_query",
  "anonymous_id",
] as const;

/** The shared batch path's answer: status and the JSON body of POST /v1/events. */
export interface BatchReply {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

export interface BrowserLimits {
  /** BROWSER_MAX_BODY_BYTES */
  maxBodyBytes: number;
  /** BROWSER_MAX_EVENTS: events in one request */
  maxEvents: number;
  /** BROWSER_IP_REQUESTS_PER_MINUTE */
  ipRequestsPerMinute: number;
  /** BROWSER_TRUST_PROXY: the client IP is the last X-Forwarded-For address */
  trustProxy: boolean;
}

export interface CollectDeps {
  ingest: Sql;
  log: Logger;
  limits: BrowserLimits;
  /** hands a CSV batch (header line + rows) to the shared batch path */
  submit(client: string, csv: Uint8Array, lineOf: (n: number) => number): Promise<BatchReply>;
  /** counts events by outcome: received, bot, rate_limited (the per-key limit; refused requests
   * of every kind are counted by status in pipeline_http_requests_total) */
  count(outcome: string, n: number): void;
  now?: () => number;
}

/** Rounding step of the clock correction (docs/tracking.md#clock): retries correct alike. */
export const SKEW_STEP_MS = 60_000;

/**
 * The event_time to store: the browser's time moved by the browser's clock offset (server
 * receive time minus the batch's sent_at), rounded to whole minutes, so a clock within 30 s
 * is trusted as it is and a retried batch gets the same time as its first send.
 */
export function correctedTime(eventTime: string, sentAt: number, receivedAt: number): string {
  const t = Date.parse(eventTime);
  if (!Number.isFinite(t) || !Number.isFinite(sentAt)) return eventTime;
  const shift = Math.round((receivedAt - sentAt) / SKEW_STEP_MS) * SKEW_STEP_MS;
  return shift === 0 ? eventTime : new Date(t + shift).toISOString();
}

class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

function answer(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
      ...headers,
    },
  });
}

const cell = (v: unknown): string =>
  v === undefined || v === null
    ? ""
    : typeof v === "string"
    ? v
    : typeof v === "object"
    ? JSON.stringify(v) // not a scalar: kept as text, the contract's checks name the field
    : String(v);

export function createCollect(deps: CollectDeps) {
  const keys = new SiteKeys(deps.ingest);
  const buckets = new RateLimits(deps.now);
  const now = deps.now ?? Date.now;
  const { limits, log } = deps;
  // ingest.traffic_source() answers, by input; the function is stable, so they are reused for a
  // minute (a change to ingest.traffic_referrers shows within a minute)
  let sources = new Map<string, string>();
  let sourcesAt = now();

  function clientIp(req: Request, remote: string | undefined): string {
    if (limits.trustProxy) {
      const forwarded = req.headers.get("x-forwarded-for");
      if (forwarded) return forwarded.split(",").at(-1)!.trim();
    }
    return remote ?? "unknown";
  }

  function cors(origin: string): Record<string, string> {
    // Retry-After is not a CORS-safelisted response header: without this the tracker could not
    // read how long to wait after a 429 or 503
    return {
      "access-control-allow-origin": origin,
      "access-control-expose-headers": "Retry-After",
      vary: "Origin",
    };
  }

  /** The key's record when the request carries a known key and an allowed Origin. */
  async function admit(req: Request, url: URL): Promise<{ site: SiteKey; origin: string }> {
    const key = url.searchParams.get("key") ?? "";
    if (!KEY_FORM.test(key)) {
      throw new Refusal(
        401,
        key === ""
          ? "No public write key: add ?key=pk_… (deno task sites add) to the endpoint URL"
          : `"${
            key.slice(0, 40)
          }" is not a public write key (pk_ and 32 hex digits): see deno task sites list`,
      );
    }
    const site = await keys.get(key);
    if (!site) {
      throw new Refusal(
        401,
        "Unknown or revoked public write key: see deno task sites list",
      );
    }
    const origin = req.headers.get("origin") ?? "";
    if (!site.allowed_origins.includes(origin)) {
      throw new Refusal(
        403,
        origin === ""
          ? `No Origin header: a public key writes only from pages of site "${site.site}"'s allowed origins (server-side producers use POST /v1/events with a secret key)`
          : `Origin "${
            origin.slice(0, 100)
          }" is not allowed for site "${site.site}": add it with deno task sites add, or use the key of its own site`,
      );
    }
    return { site, origin };
  }

  async function trafficSources(inputs: string[][]): Promise<string[]> {
    if (now() - sourcesAt > 60_000 || sources.size > 10_000) {
      sources = new Map();
      sourcesAt = now();
    }
    const keyOf = (x: string[]) => JSON.stringify(x);
    const missing = [...new Set(inputs.map(keyOf))].filter((k) => !sources.has(k));
    if (missing.length > 0) {
      const args = missing.map((k) => {
        const [s, m, c, r, p] = JSON.parse(k) as string[];
        return [s, m, c === "1", r, p];
      });
      const rows = await deps.ingest<{ i: number; traffic_source: string }[]>`
        select i, traffic_source from ingest.traffic_sources(${deps.ingest.json(args)}::jsonb)`;
      for (const r of rows) sources.set(missing[r.i], r.traffic_source);
    }
    return inputs.map((x) => sources.get(keyOf(x))!);
  }

  async function readJson(req: Request): Promise<unknown> {
    const declared = Number(req.headers.get("content-length") ?? "0");
    const tooLarge = () =>
      new Refusal(
        413,
        `Request body larger than ${limits.maxBodyBytes} bytes (BROWSER_MAX_BODY_BYTES): send fewer events a request`,
      );
    if (declared > limits.maxBodyBytes) throw tooLarge();
    const reader = req.body?.getReader();
    const parts: Uint8Array[] = [];
    let size = 0;
    while (reader) {
      const { done, value } = await reader.read().catch((error) => {
        throw new Refusal(
          400,
          `The body could not be read to its end (${
            (error as Error).message
          }): nothing was stored; send it again`,
        );
      });
      if (done) break;
      size += value.length;
      if (size > limits.maxBodyBytes) {
        await reader.cancel().catch(() => {});
        throw tooLarge();
      }
      parts.push(value);
    }
    const bytes = new Uint8Array(size);
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.length;
    }
    try {
      return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch (error) {
      throw new Refusal(
        400,
        `The body is not UTF-8 JSON (${
          (error as Error).message
        }): send {"sent_at": "<ISO time>", "events": [{…}, …]}`,
      );
    }
  }

  async function post(req: Request, url: URL, remote?: string): Promise<Response> {
    const received = now();
    let cors_: Record<string, string> = {};
    try {
      const { site, origin } = await admit(req, url);
      cors_ = cors(origin);
      const ip = clientIp(req, remote);
      const ipWait = buckets.take(`ip:${ip}`, 1, limits.ipRequestsPerMinute);
      if (ipWait > 0) {
        throw new Refusal(
          429,
          `Too many requests from this address (BROWSER_IP_REQUESTS_PER_MINUTE ${limits.ipRequestsPerMinute}): retry after ${ipWait} s`,
          { "retry-after": String(ipWait) },
        );
      }
      const body = await readJson(req) as { sent_at?: unknown; events?: unknown };
      if (typeof body !== "object" || body === null || !Array.isArray(body.events)) {
        throw new Refusal(
          400,
          'The body is not a batch: send {"sent_at": "<ISO time>", "events": [{…}, …]}',
        );
      }
      const events = body.events as unknown[];
      if (events.length > limits.maxEvents) {
        throw new Refusal(
          413,
          `${events.length} events in one request, at most ${limits.maxEvents} (BROWSER_MAX_EVENTS): split the batch`,
        );
      }
      const bad = events.findIndex((e) => typeof e !== "object" || e === null || Array.isArray(e));
      if (bad >= 0) {
        throw new Refusal(400, `Event ${bad} is not a JSON object: send one object per event`, {}, {
          index: bad,
        });
      }
      const ua = parseUserAgent(req.headers.get("user-agent"));
      if (ua.bot) {
        deps.count("bot", events.length);
        return answer(202, { accepted: 0, dropped_bot: events.length }, cors_);
      }
      if (events.length === 0) return answer(200, { accepted: 0 }, cors_);
      const keyWait = buckets.take(`key:${site.site_key}`, events.length, site.events_per_minute);
      if (keyWait > 0) {
        deps.count("rate_limited", events.length);
        throw new Refusal(
          429,
          `Site "${site.site}" is over its limit of ${site.events_per_minute} events a minute: retry after ${keyWait} s`,
          { "retry-after": String(keyWait) },
        );
      }
      deps.count("received", events.length);
      const sentAt = typeof body.sent_at === "string" ? Date.parse(body.sent_at) : NaN;
      const rows = events as Record<string, unknown>[];
      const landings = rows.map((e) => parseLanding(cell(e.landing_url), cell(e.referrer)));
      const traffic = await trafficSources(
        landings.map((l) => [
          l.utm_source,
          l.utm_medium,
          l.click_id ? "1" : "0",
          l.referrer_host,
          l.page_host,
        ]),
      );
      let csv = csvLine(COLUMNS);
      const firstLine: number[] = [];
      let line = 2;
      rows.forEach((e, i) => {
        const v: Record<string, string> = {};
        for (const f of COPIED) v[f] = cell(e[f]);
        v.event_time = correctedTime(cell(e.event_time), sentAt, received);
        v.device = ua.device;
        v.traffic_source = traffic[i];
        v.utm_campaign = landings[i].utm_campaign;
        const text = csvLine(COLUMNS.map((c) => v[c]));
        firstLine.push(line);
        line += lineCount(text);
        csv += text;
      });
      // the batch path numbers a row by its first physical line: back to the event's index
      const indexOf = new Map(firstLine.map((l, i) => [l, i]));
      const client = createHash("sha256").update(site.site_key, "utf8").digest("hex").slice(0, 32);
      const reply = await deps.submit(
        client,
        new TextEncoder().encode(csv),
        (n) => indexOf.get(n) ?? -1,
      );
      if (reply.status !== 200) {
        return new Response(reply.body, {
          status: reply.status,
          headers: {
            "content-type": "application/json; charset=utf-8",
            ...reply.headers,
            ...cors_,
          },
        });
      }
      const r = JSON.parse(reply.body) as {
        batch_id: number;
        accepted: number;
        duplicates: number;
        invalid: number;
        invalid_rows: { line: number; reasons: string[] }[];
      };
      return answer(200, {
        batch_id: r.batch_id,
        accepted: r.accepted,
        duplicates: r.duplicates,
        invalid: r.invalid,
        invalid_events: r.invalid_rows.map((x) => ({ index: x.line, reasons: x.reasons })),
      }, cors_);
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      log.debug("collect refused", { status: error.status, error: error.message });
      return answer(error.status, { error: error.message, ...error.extra }, {
        ...error.headers,
        ...cors_,
      });
    }
  }

  /** CORS preflight: 204 with the allow headers only for a known key and an allowed Origin. */
  async function preflight(req: Request, url: URL): Promise<Response> {
    try {
      const { origin } = await admit(req, url);
      return new Response(null, {
        status: 204,
        headers: {
          ...cors(origin),
          "access-control-allow-methods": "POST",
          "access-control-allow-headers": "content-type",
          "access-control-max-age": "86400",
        },
      });
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      return answer(error.status, { error: error.message });
    }
  }

  return { post, preflight };
}
