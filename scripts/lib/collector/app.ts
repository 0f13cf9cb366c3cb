// The collector as one testable function: Request -> Response. serve.ts wires it to
// Deno.serve; tests call it directly or through a listener on port 0.
import type { Config } from "../common/config.ts";
import type { Sql } from "../common/db.ts";
import type { Logger } from "../common/log.ts";
import { isRetryable } from "../common/retry.ts";
import { DeferredAnalytics } from "../analytics/deferred.ts";
import type { Asset } from "./dashboard.ts";
import { Limiter } from "./limiter.ts";
import { DB_RETRY_AFTER, errorResponse, HttpError } from "./responses.ts";
import type { Route } from "./route.ts";
import { ingestRoutes } from "./ingest_routes.ts";
import { opsRoutes } from "./ops_routes.ts";
import { readRoutes } from "./read_routes.ts";
import { createTelemetry, type Telemetry } from "./telemetry.ts";

/** Seconds a client should wait when the database is unreachable (responses.ts). */
export { DB_RETRY_AFTER };

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

export function createApp(deps: AppDeps): App {
  const { cfg, log } = deps;
  const telemetry = deps.telemetry ?? createTelemetry();
  const limiter = new Limiter(cfg.MAX_CONCURRENT_BATCHES);
  const inboxDir = deps.inboxDir ?? `${cfg.DATA_DIR}/incoming`;
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

  const routes: Route[] = [
    ...ingestRoutes(deps, telemetry, limiter),
    ...opsRoutes(deps, telemetry, limiter, inboxDir, started),
    ...readRoutes(deps, limiter, inboxDir),
  ];

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
      response = toResponse(error, label, log);
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

/** The response to a request whose handler threw: the status says whose move it is. */
function toResponse(error: unknown, label: string, log: Logger): Response {
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
