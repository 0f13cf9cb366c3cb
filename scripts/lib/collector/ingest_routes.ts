// The ingest routes: POST /v1/events (server-side senders, API keys) and the browser
// tracker's /v1/collect with tracker.js, whose batches take the same group-commit path.
import type { Config } from "../common/config.ts";
import type { Sql } from "../common/db.ts";
import type { Logger } from "../common/log.ts";
import { settings } from "../batch/mod.ts";
import { createBrowserSource } from "../browser/mod.ts";
import { ApiKeys } from "./auth.ts";
import { createEventsHandler } from "./events.ts";
import { Limiter } from "./limiter.ts";
import { HttpError } from "./responses.ts";
import type { Route } from "./route.ts";
import type { Telemetry } from "./telemetry.ts";

export function ingestRoutes(
  deps: { cfg: Config; ingest: Sql; log: Logger },
  telemetry: Telemetry,
  limiter: Limiter,
): Route[] {
  const { cfg, log } = deps;
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

  return [
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
  ];
}
