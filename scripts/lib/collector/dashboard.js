// The dashboard: fetches /v1/dashboard every few seconds and redraws the charts (Chart.js).
// Also the page's shared presentation helpers (dashboard_analyst.js uses them): the read key
// and its prompt, what a failed request means (key, permission, database, server), UTC times
// and money with its currency and thousands separators. The page computes no figure.
/* global Chart */
"use strict";

/** The read key: kept in the address after # (never sent anywhere but this server). */
function readKey() {
  return new URLSearchParams(location.hash.slice(1)).get("key") || "";
}

function authHeaders() {
  const key = readKey();
  return key ? { authorization: `Bearer ${key}` } : {};
}

/** A failed request, classified: key (401), permission (403), range (400), database, server. */
class DashboardError extends Error {
  constructor(kind, message, status) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

/** GET a JSON endpoint with the read key; throws a DashboardError naming what went wrong. */
async function getJson(url) {
  let res;
  try {
    res = await fetch(url, { cache: "no-store", headers: authHeaders() });
  } catch (error) {
    throw new DashboardError(
      "server",
      `The dashboard server does not answer (${error.message}): is deno task serve running?`,
      0,
    );
  }
  let data = {};
  try {
    data = await res.json();
  } catch {
    // a proxy's HTML error page: the status says enough
  }
  if (res.ok) return data;
  const message = data.error || `HTTP ${res.status}`;
  const kind = res.status === 401
    ? "key"
    : res.status === 403
    ? "permission"
    : res.status === 400
    ? "range"
    : res.status === 503
    ? "database"
    : "server";
  throw new DashboardError(kind, message, res.status);
}

/** What the page says for a failed request (one sentence, then what to do). */
function problemText(error) {
  const retry = `Retrying every ${Math.round(REFRESH_MS / 1000)} s.`;
  switch (error.kind) {
    case "key":
      return readKey()
        ? "The read key was not accepted: it is not one of the server's READ_KEYS."
        : "This dashboard needs a read key: the server has READ_KEYS set.";
    case "permission":
      // the server's message names what was refused and what to do
      return `No permission. ${error.message}. Nothing is shown. ${retry}`;
    case "database":
      return "The database is unreachable, so no figure is shown" +
        (error.status === 503 ? "" : ` (${error.message})`) + `. ${retry} Check that ` +
        "PostgreSQL runs (make up).";
    case "range":
      return `Cannot show this range: ${error.message}`;
    default:
      return `The server could not answer: ${error.message}. ${retry}`;
  }
}

/** Shows the key prompt (401) or clears it; returns true when it is shown. */
function showKeyPrompt(error) {
  const banner = document.getElementById("key-state");
  const needed = error?.kind === "key";
  banner.hidden = !needed;
  if (needed) document.body.dataset.problem = "key";
  else delete document.body.dataset.problem;
  if (needed) {
    document.getElementById("key-title").textContent = problemText(error);
    document.getElementById("key-reason").textContent = readKey()
      ? "Enter another key (it stays in this browser tab, in the address after #)."
      : "Enter one of them (it stays in this browser tab, in the address after #, and is " +
        "sent only to this server).";
  }
  return needed;
}

/** Marks the sections of a part as not current (or current again, with null). */
function markStale(root, text) {
  for (const s of root.querySelectorAll("section")) {
    if (text) s.dataset.stale = text;
    else delete s.dataset.stale;
  }
}

/** What a panel says when its reading failed (`last`: the time of the last good one). */
function staleText(kind, last) {
  if (kind === "key") return "not shown: a read key is needed";
  if (kind === "range") return "not shown: this range failed";
  const what = { permission: "no permission", database: "database unreachable" }[kind] ??
    "the server could not answer";
  return `not current: ${what}${last ? ` (last reading ${utcClock(last)})` : ""}`;
}

/** 23:28:13 UTC, from an ISO time or a Date. */
function utcClock(t) {
  return `${new Date(t).toISOString().slice(11, 19)} UTC`;
}

/** 1,234,567.89 USD (always two decimals, en-US separators, the currency after). */
function formatMoney(n, currency) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return "–";
  return `${
    Number(n).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })
  } ${currency}`;
}

/** Axis ticks of a money axis: 16,000 USD (no decimals on round ticks). */
function moneyTick(currency) {
  return (v) => `${Number(v).toLocaleString("en-US", { maximumFractionDigits: 2 })} ${currency}`;
}

document.getElementById("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const key = document.getElementById("key-input").value.trim();
  if (!key) return;
  const hash = new URLSearchParams(location.hash.slice(1));
  hash.set("key", key);
  location.hash = hash.toString();
  document.getElementById("key-input").value = "";
  globalThis.dispatchEvent(new Event("dashboard:refresh"));
});

const REFRESH_MS = Number(new URLSearchParams(location.search).get("refresh") || 5000);
const TYPES = ["view", "search", "add_to_cart", "remove_from_cart", "wishlist", "purchase"];
const COLORS = [
  "#4e79a7",
  "#f28e2b",
  "#59a14f",
  "#e15759",
  "#b07aa1",
  "#76b7b2",
  "#edc948",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
];
const charts = {};

Chart.defaults.animation = false;
Chart.defaults.maintainAspectRatio = false;

function chart(id, config) {
  if (!charts[id]) charts[id] = new Chart(document.getElementById(`chart-${id}`), config);
  return charts[id];
}

function note(id, text) {
  const el = document.getElementById(`note-${id}`);
  if (el) el.textContent = text;
}

const hhmm = (iso) => iso.slice(11, 16);

function drawEvents(rows) {
  const minutes = [];
  const now = Date.now();
  for (let i = 59; i >= 0; i--) {
    const t = new Date(Math.floor(now / 60000) * 60000 - i * 60000);
    minutes.push(t.toISOString().slice(0, 16));
  }
  const types = [...new Set([...TYPES, ...rows.map((r) => r.event_type)])];
  const datasets = types.map((type, i) => {
    const by = new Map(
      rows.filter((r) => r.event_type === type)
        .map((r) => [r.minute.slice(0, 16), r.events]),
    );
    return { label: type, data: minutes.map((m) => by.get(m) ?? 0), backgroundColor: COLORS[i] };
  });
  const c = chart("events", {
    type: "bar",
    data: { labels: [], datasets: [] },
    options: {
      scales: {
        x: { stacked: true, title: { display: true, text: "minute (UTC)" } },
        y: { stacked: true, beginAtZero: true },
      },
    },
  });
  c.data.labels = minutes.map((m) => m.slice(11));
  c.data.datasets = datasets;
  c.update();
  note("events", rows.length ? "" : "no events with an event time in the last hour");
}

function drawRevenue(rows, currency) {
  const c = chart("revenue", {
    type: "line",
    data: {
      labels: [],
      datasets: [{
        label: `revenue (${currency})`,
        data: [],
        borderColor: COLORS[0],
        backgroundColor: "rgba(78,121,167,0.2)",
        fill: true,
        tension: 0.2,
      }],
    },
    options: {
      scales: {
        x: { title: { display: true, text: "hour (UTC)" } },
        y: { beginAtZero: true, ticks: { callback: moneyTick(currency) } },
      },
      plugins: {
        legend: { display: false },
        tooltip: { callbacks: { label: (ctx) => formatMoney(ctx.parsed.y, currency) } },
      },
    },
  });
  c.options.scales.y.ticks.callback = moneyTick(currency);
  c.options.plugins.tooltip.callbacks.label = (ctx) => formatMoney(ctx.parsed.y, currency);
  c.data.datasets[0].label = `revenue (${currency})`;
  c.data.labels = rows.map((r) => `${r.hour.slice(5, 10)} ${hhmm(r.hour)}`);
  c.data.datasets[0].data = rows.map((r) => r.revenue);
  c.update();
  note(
    "revenue",
    rows.length
      ? `in ${currency} (what was paid in EUR or GBP converted at its day's rate), hours ` +
        `${rows[0].hour.slice(0, 10)} ${hhmm(rows[0].hour)} to ` +
        `${rows[rows.length - 1].hour.slice(0, 10)} ${hhmm(rows[rows.length - 1].hour)} UTC`
      : "no data",
  );
}

function drawValidity(rows) {
  const c = chart("validity", {
    type: "line",
    data: {
      labels: [],
      datasets: [{ label: "validity %", data: [], borderColor: COLORS[2], pointRadius: 2 }],
    },
    options: { scales: { y: { min: 0, max: 100 } }, plugins: { legend: { display: false } } },
  });
  const rated = rows.filter((r) => r.validity_rate !== null);
  c.data.labels = rated.map((r) => `#${r.batch_id}`);
  c.data.datasets[0].data = rated.map((r) => Math.round(r.validity_rate * 10000) / 100);
  c.update();
  const last = rated[rated.length - 1];
  note(
    "validity",
    last
      ? `last batch #${last.batch_id}: ${(last.validity_rate * 100).toFixed(2)} %`
      : "no batches yet",
  );
}

function drawFunnel(funnel) {
  const c = chart("funnel", {
    type: "bar",
    data: { labels: [], datasets: [{ label: "sessions", data: [], backgroundColor: COLORS[1] }] },
    options: {
      indexAxis: "y",
      plugins: { legend: { display: false } },
      scales: { x: { beginAtZero: true } },
    },
  });
  c.data.labels = funnel.steps.map((s) => s.step.replace(/_/g, " "));
  c.data.datasets[0].data = funnel.steps.map((s) => s.sessions);
  c.update();
  note("funnel", funnel.day ? `UTC day ${funnel.day}` : "no data");
}

function drawCategories(rows, currency) {
  const c = chart("categories", {
    type: "bar",
    data: { labels: [], datasets: [{ label: "revenue", data: [], backgroundColor: COLORS[0] }] },
    options: {
      plugins: {
        legend: { display: false },
        tooltip: { callbacks: { label: (ctx) => formatMoney(ctx.parsed.y, currency) } },
      },
      scales: { y: { beginAtZero: true, ticks: { callback: moneyTick(currency) } } },
    },
  });
  c.options.scales.y.ticks.callback = moneyTick(currency);
  c.options.plugins.tooltip.callbacks.label = (ctx) => formatMoney(ctx.parsed.y, currency);
  c.data.labels = rows.map((r) => r.category);
  c.data.datasets[0].data = rows.map((r) => r.revenue);
  c.update();
  note("categories", rows.length ? `revenue in ${currency}, all time` : "no data");
}

function drawReasons(all) {
  const rows = all.slice(0, 12);
  const c = chart("reasons", {
    type: "bar",
    data: { labels: [], datasets: [{ label: "rows", data: [], backgroundColor: COLORS[3] }] },
    options: {
      indexAxis: "y",
      plugins: { legend: { display: false } },
      scales: {
        x: { beginAtZero: true },
        y: { ticks: { autoSkip: false, font: { size: 11 } } },
      },
    },
  });
  c.data.labels = rows.map((r) => r.reason);
  c.data.datasets[0].data = rows.map((r) => r.rows);
  c.update();
  note(
    "reasons",
    all.length > rows.length
      ? `top ${rows.length} of ${all.length} reason codes`
      : rows.length
      ? ""
      : "no invalid rows in the last 24 h",
  );
}

function drawHealth(h) {
  const rows = h.rows || { valid: 0, invalid: 0, duplicates: 0 };
  const c = chart("health", {
    type: "doughnut",
    data: {
      labels: ["valid", "invalid", "duplicates"],
      datasets: [{ data: [], backgroundColor: [COLORS[2], COLORS[3], COLORS[9]] }],
    },
    options: { plugins: { legend: { position: "right" } } },
  });
  c.data.datasets[0].data = [rows.valid, rows.invalid, rows.duplicates];
  c.update();
  const last = h.last_batch;
  const files = Object.entries(h.files || {}).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
  const items = [
    ["database", h.database],
    [
      "last batch",
      last
        ? `#${last.batch_id} (${last.source_kind}), ${Math.round(last.age_seconds)} s ago`
        : "none yet",
    ],
    ["batches", h.batches],
    ["files", files],
    ["inbox backlog", h.inbox_files],
    ["batches in flight", `${h.in_flight} / ${h.max}`],
  ];
  const p = h.pipeline_health;
  if (p) {
    items.push(
      ["rows/s (1 min)", p.rows_per_second_1m],
      [
        "validity (1 h)",
        p.validity_rate_1h === null ? "n/a" : `${(p.validity_rate_1h * 100).toFixed(2)} %`,
      ],
      ["open alerts", p.open_alerts],
    );
    if (Number(p.kafka_partitions) > 0) {
      items.push(["Kafka lag (messages)", `${p.kafka_lag} over ${p.kafka_partitions} partitions`]);
    }
  }
  const dl = document.getElementById("health");
  dl.replaceChildren(...items.flatMap(([k, v]) => {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = String(v ?? "");
    return [dt, dd];
  }));
}

let refreshes = 0;

let lastUpdate = null;

async function refresh() {
  const status = document.getElementById("status");
  const ops = document.getElementById("ops");
  try {
    // with READ_KEYS set, the key comes from the prompt (kept in the address after #)
    const data = await getJson("/v1/dashboard");
    showKeyPrompt(null);
    markStale(ops, null);
    drawEvents(data.events_per_minute);
    const currency = data.reporting_currency ?? "?";
    for (const id of ["revenue", "categories"]) {
      document.getElementById(`currency-${id}`).textContent = currency;
    }
    drawRevenue(data.revenue_per_hour, currency);
    drawValidity(data.validity);
    drawFunnel(data.funnel);
    drawCategories(data.top_categories, currency);
    drawReasons(data.dead_letter_reasons);
    drawHealth(data.health);
    status.className = "";
    delete status.dataset.problem;
    lastUpdate = data.generated_at;
    status.textContent = `updated ${utcClock(data.generated_at)}` +
      (data.views_missing.length ? ` · views missing: ${data.views_missing.join(", ")}` : "");
  } catch (error) {
    const kind = error.kind ?? "server";
    showKeyPrompt(error);
    status.className = "down";
    status.dataset.problem = kind;
    status.textContent = {
      key: "read key needed",
      permission: "no permission",
      database: "database unreachable",
    }[kind] ?? "cannot refresh";
    if (lastUpdate) status.textContent += ` · last updated ${utcClock(lastUpdate)}`;
    // the charts keep the last reading, marked as not current
    markStale(ops, staleText(kind, lastUpdate));
  } finally {
    refreshes++;
    document.body.dataset.refreshes = String(refreshes);
  }
}

globalThis.addEventListener("dashboard:refresh", refresh);
refresh();
setInterval(refresh, REFRESH_MS);
