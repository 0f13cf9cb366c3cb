// The read routes: the analytics catalogue and its views, the dashboard's data and KPIs, the
// dead letters, and the dashboard page with its assets.
import type { Config } from "../common/config.ts";
import type { Sql } from "../common/db.ts";
import { Catalog, createAnalyticsHandler } from "./analytics.ts";
import { ApiKeys } from "./auth.ts";
import { type Asset, createDashboard, CSP } from "./dashboard.ts";
import { createDeadLetterHandler, dashboardKpis, parseRange } from "./kpis.ts";
import type { Limiter } from "./limiter.ts";
import { HttpError, json } from "./responses.ts";
import type { Handler, Route } from "./route.ts";

export function readRoutes(
  deps: { cfg: Config; analyst: Sql; assets?: Record<string, Asset> },
  limiter: Limiter,
  inboxDir: string,
): Route[] {
  const { cfg } = deps;
  const catalog = new Catalog(deps.analyst);
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

  return [
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
}
