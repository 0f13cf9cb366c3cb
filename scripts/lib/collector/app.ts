// The collector as one testable function: Request -> Response. serve.ts wires it to
// Deno.serve; tests call it directly or through a listener on port 0.
import type { Config } from "../common/config.ts";
import type { Sql } from "../common/db.ts";
import { settings } from "../batch/mod.ts";
import type { Logger } from "../common/log.ts";
import { isRetryable } from "../common/retry.ts";
import { DeferredAnalytics } from "../analytics/deferred.ts";
import { Catalog, createAnalyticsHandler } from "./analytics.ts";
import { ApiKeys } from "./auth.ts";
import { type Asset, createDashboard, CSP } from "./dashboard.ts";
import { createDeadLetterHandler, dashboardKpis, parseRange } from "./kpis.ts";
import { createEventsHandler } from "./events.ts";
import { createBrowserSource } from "../browser/mod.ts";
import { Limiter } from "./limiter.ts";
import { CONTENT_TYPE } from "../common/metrics.ts";
import { errorResponse, HttpError, json } from "./responses.ts";
import { inboxBacklog, pipelineStatus, schemaStatus } from "./status.ts";
import { createTelemetry, type Telemetry } from "./telemetry.ts";

export interface AppDeps {
  cfg: Config;
  /** pool acting as INGEST_ROLE (writes) */
  ingest: Sql;
  /** pool acting as ANALYST_ROLE (reads) */
  analyst: Sql;
  log: Logger;
  /** from loadAssets(); without them GET / answers 404 */
  assets?: Record<string, Asset>;
  /** default: DATA_DIR/incoming */
  inboxDir?: string;
  telemetry?: Telemetry;
}

export interface App {
  /** `info`: Deno.serve's, for the client address (the browser source's per-IP limit) */
  fetch(req: Request, info?: Deno.ServeHandlerInfo): Promise<Response>;
  /**
   * Graceful stop, first half: new requests get 503 from now on; resolves once the requests
   * in flight have finished (or after `timeoutMs`). Then shut the listener down.
   */
  drain(timeoutMs: number): Promise<void>;
  telemetry: Telemetry;
  limiter: Limiter;
  /**
   * With HTTP_ANALYTICS=deferred: the rounds that add queued batches to the rollups (serve.ts
   * starts and stops them; tests call flush()). Undefined with inline analytics.
   */
  deferred?: DeferredAnalytics;
}

/** Seconds a client should wait when the database is unreachable. */
export const DB_RETRY_AFTER = 5;

type Handler = (
  req: Request,
  url: URL,
  params: string[],
  info?: Deno.ServeHandlerInfo,
) => Promise<Response> | Response;
interface Route {
  method: string;
  pattern: RegExp;
  /** the route label in metrics and logs */
  label: string;
  handler: Handler;
}

export function createApp(deps: AppDeps): App {
  const { cfg, log } = deps;
  const telemetry = deps.telemetry ?? createTelemetry();
  const limiter = new Limiter(cfg.MAX_CONCURRENT_BATCHES);
  const inboxDir = deps.inboxDir ?? `${cfg.DATA_DIR}/incoming`;
  const catalog = new Catalog(deps.analyst);
  const started = Date.now();
  telemetry.maxInFlight.set({}, limiter.max);
  const deferred = cfg.HTTP_ANALYTICS === "deferred"
    ? new DeferredAnalytics(deps.ingest, cfg.ANALYTICS_INTERVAL_MS, log, (r) => {
      telemetry.deferredEvents.inc({}, r.events);
      if (r.oldestQueuedAt) {
        telemetry.deferredLag.set(
          {},
          Math.max(0, (Date.now() - r.oldestQueuedAt.getTime()) / 1000),
        );
      }
    })
    : undefined;
  telemetry.inFlight.set({}, 0);

  const postEvents = createEventsHandler({
    ingest: deps.ingest,
    keys: new ApiKeys(cfg.API_KEYS),
    limiter,
    telemetry,
    log,
    settings: settings(cfg),
    maxBodyBytes: cfg.MAX_BODY_BYTES,
    analytics: cfg.HTTP_ANALYTICS,
    groupCommitMs: cfg.GROUP_COMMIT_MS,
    // one group transaction per core (each holds one of the MAX_CONCURRENT_BATCHES connections)
    maxGroups: Math.max(1, Math.min(cfg.MAX_CONCURRENT_BATCHES, navigator.hardwareConcurrency)),
  });
  // the browser source (tracker.js, public write keys): its batches take the same path
  const browserPending = new Limiter(cfg.BROWSER_MAX_PENDING);
  const browser = createBrowserSource({
    ingest: deps.ingest,
    log,
    limits: {
      maxBodyBytes: cfg.BROWSER_MAX_BODY_BYTES,
      maxEvents: cfg.BROWSER_MAX_EVENTS,
      ipRequestsPerMinute: cfg.BROWSER_IP_REQUESTS_PER_MINUTE,
      trustProxy: cfg.BROWSER_TRUST_PROXY === "1",
    },
    submit: (client, csv, lineOf) =>
      postEvents.submitCsv(
        client,
        csv,
        lineOf,
        browserPending,
        "BROWSER_MAX_PENDING",
        cfg.BROWSER_GROUP_COMMIT_MS,
      ),
    count: (outcome, n) => telemetry.browserEvents.inc({ outcome }, n),
  });
  const analytics = createAnalyticsHandler({ analyst: deps.analyst, catalog });
  const deadLetter = createDeadLetterHandler({
    sql: deps.analyst,
    keys: cfg.DEAD_LETTER_KEYS,
    role: cfg.DEAD_LETTER_ROLE,
  });
  // READ_KEYS set: analytics and dashboard data need one of them (the page itself holds none)
  const readKeys = cfg.READ_KEYS.trim() === ""
    ? undefined
    : new ApiKeys(cfg.READ_KEYS, "READ_KEYS", "analytics");
  const reader = (h: Handler): Handler => (req, url, params) => {
    readKeys?.authenticate(req.headers.get("authorization"));
    return h(req, url, params);
  };
  const dashboard = createDashboard({
    analyst: deps.analyst,
    catalog,
    inboxDir,
    inFlight: () => ({ in_flight: limiter.inFlight, max: limiter.max }),
    cacheMs: cfg.DASHBOARD_CACHE_MS,
  });

  async function health(): Promise<Response> {
    const base = {
      batches_in_flight: limiter.inFlight,
      max_concurrent_batches: limiter.max,
      uptime_seconds: Math.round((Date.now() - started) / 1000),
    };
    try {
      const s = await pipelineStatus(deps.analyst);
      return json(200, { status: "ok", database: "reachable", last_batch: s.last_batch, ...base });
    } catch (error) {
      const down = isRetryable(error);
      log.warn(down ? "health: database unreachable" : "health: database error", {
        error: (error as Error).message,
      });
      return json(503, {
        status: "unavailable",
        database: down ? "unreachable" : "error",
        error: down
          ? "The database does not answer: batches are refused meanwhile; see the collector log"
          : `The database answered with an error (${
            (error as Error).message
          }): is it migrated? run make up`,
        ...base,
      }, { "retry-after": String(DB_RETRY_AFTER) });
    }
  }

  async function metrics(): Promise<Response> {
    const t = telemetry;
    try {
      const s = await pipelineStatus(deps.analyst);
      t.databaseUp.set({}, 1);
      t.dbRows.set({ outcome: "valid" }, s.valid);
      t.dbRows.set({ outcome: "invalid" }, s.invalid);
      t.dbRows.set({ outcome: "duplicate" }, s.duplicates);
      t.dbBatches.set({}, s.batches);
      t.queueAge.set({}, Number(s.analytics_queue_age_seconds ?? 0));
      t.files.reset();
      for (const status of ["loading", "done", "empty", "rejected"]) {
        t.files.set({ status }, s.files[status] ?? 0);
      }
      const schema = await schemaStatus(deps.analyst);
      t.schemaBatches.reset();
      for (const [version, n] of Object.entries(schema.versions)) {
        t.schemaBatches.set({ version }, n);
      }
      t.unknownColumnBatches.reset();
      for (const [column, n] of Object.entries(schema.unknown_columns)) {
        t.unknownColumnBatches.set({ column }, n);
      }
      t.schemaAlerts.reset();
      for (const [kind, n] of Object.entries(schema.alerts)) t.schemaAlerts.set({ kind }, n);
      t.lastBatchAge.reset();
      t.lastBatchValidity.reset();
      if (s.last_batch) {
        t.lastBatchAge.set({}, Number(s.last_batch.age_seconds));
        if (s.last_batch.validity_rate !== null) {
          t.lastBatchValidity.set({}, Number(s.last_batch.validity_rate));
        }
      }
    } catch (error) {
      // process figures are still worth a scrape; database ones are left out, not stale
      t.databaseUp.set({}, 0);
      for (
        const g of [
          t.dbRows,
          t.dbBatches,
          t.files,
          t.lastBatchAge,
          t.lastBatchValidity,
          t.schemaBatches,
          t.unknownColumnBatches,
          t.schemaAlerts,
          t.queueAge,
        ]
      ) {
        g.reset();
      }
      log.debug("metrics: database unreachable", { error: (error as Error).message });
    }
    t.inbox.set({}, await inboxBacklog(inboxDir));
    t.inFlight.set({}, limiter.inFlight);
    return new Response(t.registry.render(), {
      headers: { "content-type": CONTENT_TYPE, "cache-control": "no-store" },
    });
  }

  function asset(path: string): Response {
    const a = deps.assets?.[path];
    if (!a) throw new HttpError(404, `No such page "${path}"`);
    const headers: Record<string, string> = {
      "content-type": a.type,
      "cache-control": path === "/" ? "no-cache" : "public, max-age=300",
      "x-content-type-options": "nosniff",
    };
    if (path === "/") headers["content-security-policy"] = CSP;
    return new Response(a.body.slice(), { headers });
  }

  const routes: Route[] = [
    { method: "POST", pattern: /^\/v1\/events$/, label: "/v1/events", handler: postEvents },
    {
      method: "POST",
      pattern: /^\/v1\/collect$/,
      label: "/v1/collect",
      handler: (req, url, _p, info) =>
        browser.post(req, url, (info?.remoteAddr as Deno.NetAddr | undefined)?.hostname),
    },
    {
      method: "OPTIONS",
      pattern: /^\/v1\/collect$/,
      label: "/v1/collect",
      handler: (req, url) => browser.preflight(req, url),
    },
    {
      method: "GET",
      pattern: /^\/v1\/tracker\.js$/,
      label: "/v1/tracker.js",
      handler: browser.latest,
    },
    {
      method: "GET",
      pattern: /^\/v1\/tracker-[0-9a-f]{12}\.js$/,
      label: "/v1/tracker-:version.js",
      handler: (_req, url) => {
        if (url.pathname !== browser.tracker.path) {
          throw new HttpError(
            404,
            `No such tracker version: load /v1/tracker.js (now ${browser.tracker.path})`,
          );
        }
        return browser.versioned();
      },
    },
    { method: "GET", pattern: /^\/health$/, label: "/health", handler: health },
    { method: "GET", pattern: /^\/metrics$/, label: "/metrics", handler: metrics },
    {
      method: "GET",
      pattern: /^\/v1\/analytics\/?$/,
      label: "/v1/analytics",
      handler: reader(async () => json(200, await analytics.list())),
    },
    {
      method: "GET",
      pattern: /^\/v1\/analytics\/([^/]+)$/,
      label: "/v1/analytics/:view",
      handler: reader(async (_req, url, [view]) => {
        let name = view; // undecodable: looked up as is, and not found
        try {
          name = decodeURIComponent(view);
        } catch { /* keep the raw text */ }
        return json(200, await analytics.rows(name, url.searchParams));
      }),
    },
    {
      method: "GET",
      pattern: /^\/v1\/dashboard$/,
      label: "/v1/dashboard",
      handler: reader(async () => json(200, await dashboard.data())),
    },
    {
      method: "GET",
      pattern: /^\/v1\/dashboard\/kpis$/,
      label: "/v1/dashboard/kpis",
      handler: reader(async (_req, url) =>
        json(200, await dashboardKpis(deps.analyst, parseRange(url.searchParams)))
      ),
    },
    {
      method: "GET",
      pattern: /^\/v1\/dead-letter$/,
      label: "/v1/dead-letter",
      handler: async (req, url) => json(200, await deadLetter(req, url)),
    },
    { method: "GET", pattern: /^\/$/, label: "/", handler: () => asset("/") },
    {
      method: "GET",
      pattern: /^\/assets\/(dashboard\.js|dashboard_analyst\.js|chart\.umd\.min\.js)$/,
      label: "/assets",
      handler: (_req, url) => asset(url.pathname),
    },
  ];

  function toResponse(error: unknown, label: string): Response {
    if (error instanceof HttpError) return errorResponse(error);
    if (isRetryable(error)) {
      log.warn("database unavailable", { route: label, error: (error as Error).message });
      return errorResponse(
        new HttpError(
          503,
          "The database is unavailable: nothing was stored; retry later (with the same Idempotency-Key, if any)",
          { "retry-after": String(DB_RETRY_AFTER) },
        ),
      );
    }
    if (
      (error as { code?: string }).code === "42501" &&
      (label.startsWith("/v1/dashboard") || label.startsWith("/v1/analytics"))
    ) {
      // a read the database refuses the analyst role: a grant is missing (not an outage; a
      // write path that lacks one stays an internal error)
      log.warn("database refused permission", { route: label, error: (error as Error).message });
      return errorResponse(
        new HttpError(
          403,
          `The database refused permission (${
            (error as Error).message
          }): re-apply the grants with make up, or grant the role read access`,
        ),
      );
    }
    if ((error as { code?: string }).code === "57014") {
      return errorResponse(
        new HttpError(
          503,
          "The query took too long and was cancelled: narrow it (filters, limit)",
          {
            "retry-after": String(DB_RETRY_AFTER),
          },
        ),
      );
    }
    const ref = crypto.randomUUID();
    log.error("request failed", { route: label, ref, error: (error as Error).message });
    return errorResponse(
      new HttpError(
        500,
        `Internal error (reference ${ref}): nothing was stored; see the collector log`,
      ),
    );
  }

  let active = 0;
  let draining = false;
  let idle: (() => void) | undefined;

  function drain(timeoutMs: number): Promise<void> {
    draining = true;
    if (active === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      idle = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  async function fetch(req: Request, info?: Deno.ServeHandlerInfo): Promise<Response> {
    active++;
    try {
      return await handle(req, info);
    } finally {
      if (--active === 0) idle?.();
    }
  }

  async function handle(req: Request, info?: Deno.ServeHandlerInfo): Promise<Response> {
    const started = performance.now();
    const url = new URL(req.url);
    let label = "other";
    let response: Response;
    try {
      if (draining) {
        throw new HttpError(503, "The collector is shutting down: retry in a moment", {
          "retry-after": "2",
          connection: "close",
        });
      }
      const matching = routes.filter((r) => r.pattern.test(url.pathname));
      // HEAD is GET without a body (the server drops it)
      const method = req.method === "HEAD" ? "GET" : req.method;
      const route = matching.find((r) => r.method === method);
      if (route) {
        label = route.label;
        const params = route.pattern.exec(url.pathname)!.slice(1);
        response = await route.handler(req, url, params, info);
      } else if (matching.length) {
        label = matching[0].label;
        const allow = [...new Set(matching.map((r) => r.method))].join(", ");
        throw new HttpError(405, `${req.method} is not allowed on ${url.pathname}: use ${allow}`, {
          allow,
        });
      } else {
        throw new HttpError(404, `No such route "${url.pathname}"`);
      }
    } catch (error) {
      response = toResponse(error, label);
    }
    if (req.body && !req.bodyUsed) await req.body.cancel().catch(() => {});
    const seconds = (performance.now() - started) / 1000;
    telemetry.requests.inc({ route: label, status: String(response.status) });
    telemetry.requestDuration.observe({ route: label }, seconds);
    log.debug("request", {
      method: req.method,
      route: label,
      status: response.status,
      ms: Math.round(seconds * 1000),
    });
    return response;
  }

  return { fetch, drain, telemetry, limiter, deferred };
}
