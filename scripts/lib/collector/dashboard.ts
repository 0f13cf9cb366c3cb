// GET / (the dashboard page), its script and Chart.js (served from Deno's npm cache: the
// machines have no internet), and GET /v1/dashboard: every series of the page in one call.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type postgres from "postgres";
import type { Sql } from "../common/db.ts";
import { type Catalog, plain, read } from "./analytics.ts";
import { inboxBacklog, type PipelineStatus, pipelineStatus } from "./status.ts";

const here = dirname(new URL(import.meta.url).pathname);

export interface Asset {
  body: Uint8Array;
  type: string;
}

/** The page, its script and the Chart.js UMD build, read once. */
export async function loadAssets(): Promise<Record<string, Asset>> {
  // the dynamic import puts chart.js in Deno's module graph (downloaded and resolvable)
  await import("chart.js");
  const chartDir = dirname(createRequire(import.meta.url).resolve("chart.js"));
  return {
    "/": {
      body: await Deno.readFile(join(here, "dashboard.html")),
      type: "text/html; charset=utf-8",
    },
    "/assets/dashboard.js": {
      body: await Deno.readFile(join(here, "dashboard.js")),
      type: "text/javascript; charset=utf-8",
    },
    "/assets/dashboard_analyst.js": {
      body: await Deno.readFile(join(here, "dashboard_analyst.js")),
      type: "text/javascript; charset=utf-8",
    },
    "/assets/chart.umd.min.js": {
      body: await Deno.readFile(join(chartDir, "chart.umd.min.js")),
      type: "text/javascript; charset=utf-8",
    },
  };
}

export const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

export interface DashboardDeps {
  analyst: Sql;
  catalog: Catalog;
  inboxDir: string;
  inFlight: () => { in_flight: number; max: number };
  /** how long one reading is shared between viewers */
  cacheMs?: number;
}

type Rows = Record<string, unknown>[];

export interface DashboardData {
  generated_at: string;
  database: "reachable" | "unreachable";
  /** analytics views the page uses that do not exist (yet) */
  views_missing: string[];
  /** the currency of revenue_per_hour and top_categories (analytics.reporting_currency) */
  reporting_currency: string | null;
  events_per_minute: { minute: string; event_type: string; events: number }[];
  revenue_per_hour: { hour: string; revenue: number }[];
  validity: Rows;
  funnel: { day: string | null; steps: { step: string; sessions: number }[] };
  top_categories: { category: string; revenue: number; orders: number }[];
  dead_letter_reasons: { reason: string; rows: number }[];
  health: Record<string, unknown>;
}

function empty(database: DashboardData["database"]): DashboardData {
  return {
    generated_at: new Date().toISOString(),
    database,
    views_missing: [],
    reporting_currency: null,
    events_per_minute: [],
    revenue_per_hour: [],
    validity: [],
    funnel: { day: null, steps: [] },
    top_categories: [],
    dead_letter_reasons: [],
    health: {},
  };
}

const num = (v: unknown) => (v === null || v === undefined ? 0 : Number(v));

export function createDashboard(deps: DashboardDeps) {
  const cacheMs = deps.cacheMs ?? 2_000;
  let cached: { at: number; data: Promise<DashboardData> } | undefined;

  async function collect(): Promise<DashboardData> {
    const views = await deps.catalog.views();
    const out = empty("reachable");
    const cols = (view: string) => new Set(views.get(view)?.columns.map((c) => c.name) ?? []);
    const want = (view: string, columns: string[]) => {
      const have = cols(view);
      const ok = views.has(view) && columns.every((c) => have.has(c));
      if (!ok) out.views_missing.push(view);
      return ok;
    };
    const status: PipelineStatus = await pipelineStatus(deps.analyst);
    await read(deps.analyst, async (tx: postgres.TransactionSql) => {
      out.events_per_minute = (await tx`
        select minute, event_type, events
        from analytics.collector_events_per_minute(60)`).map((r) => ({
        minute: (r.minute as Date).toISOString(),
        event_type: r.event_type,
        events: num(r.events),
      }));
      out.validity = plain(await tx`select * from analytics.collector_batches(50)`);
      out.dead_letter_reasons = (await tx`select * from analytics.collector_reasons(24)`).map((
        r,
      ) => ({ reason: r.reason, rows: num(r.rows) }));
      if (want("reporting_currency", ["reporting_currency"])) {
        const [c] = await tx`select reporting_currency from analytics.reporting_currency`;
        out.reporting_currency = c?.reporting_currency ?? null;
      }
      if (want("hourly_trend", ["hour", "revenue"])) {
        // the last 24 hours up to the watermark, zero-filled by the view
        out.revenue_per_hour = (await tx`
          select hour, revenue from analytics.hourly_trend
          order by hour desc limit 24`).reverse().map((r) => ({
          hour: (r.hour as Date).toISOString(),
          revenue: num(r.revenue),
        }));
      }
      if (want("category_performance", ["category", "revenue", "orders"])) {
        out.top_categories = (await tx`
          select category, revenue, orders from analytics.category_performance
          order by revenue desc nulls last, category limit 8`).map((r) => ({
          category: r.category,
          revenue: num(r.revenue),
          orders: num(r.orders),
        }));
      }
      if (want("funnel", ["day"])) {
        const steps = [...cols("funnel")].filter((c) => /sessions/.test(c));
        const [last] = await tx`select * from analytics.funnel order by day desc limit 1`;
        if (last) {
          out.funnel = {
            day: last.day instanceof Date ? last.day.toISOString().slice(0, 10) : String(last.day),
            steps: steps.map((s) => ({ step: s, sessions: num(last[s]) })),
          };
        }
      }
      if (views.has("pipeline_health")) {
        const [h] = plain(await tx`select * from analytics.pipeline_health limit 1`);
        if (h) out.health.pipeline_health = h;
      } else out.views_missing.push("pipeline_health");
    });
    out.health = {
      ...out.health,
      database: "reachable",
      last_batch: status.last_batch,
      batches: status.batches,
      rows: { valid: status.valid, invalid: status.invalid, duplicates: status.duplicates },
      files: status.files,
      inbox_files: await inboxBacklog(deps.inboxDir),
      ...deps.inFlight(),
    };
    return out;
  }

  /** One reading shared by the viewers of the last `cacheMs`. Throws when the database is down. */
  function data(): Promise<DashboardData> {
    const now = performance.now();
    if (!cached || now - cached.at > cacheMs) {
      const p = collect();
      cached = { at: now, data: p };
      p.catch(() => {
        if (cached?.data === p) cached = undefined;
      });
    }
    return cached.data;
  }

  return { data };
}
