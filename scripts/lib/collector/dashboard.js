// The dashboard: fetches /v1/dashboard every few seconds and redraws the charts (Chart.js).
/* global Chart */
"use strict";

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
const money = (n) => n.toLocaleString(undefined, { maximumFractionDigits: 0 });

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
    options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
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
    options: { scales: { y: { beginAtZero: true } }, plugins: { legend: { display: false } } },
  });
  c.data.labels = rows.map((r) => `${r.hour.slice(5, 10)} ${hhmm(r.hour)}`);
  c.data.datasets[0].data = rows.map((r) => r.revenue);
  c.update();
  note(
    "revenue",
    rows.length
      ? `total ${money(rows.reduce((s, r) => s + r.revenue, 0))} ${currency}, ` +
        "each currency converted at its day's rate"
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
  note("funnel", funnel.day ? `day ${funnel.day}` : "no data");
}

function drawCategories(rows, currency) {
  const c = chart("categories", {
    type: "bar",
    data: { labels: [], datasets: [{ label: "revenue", data: [], backgroundColor: COLORS[0] }] },
    options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } },
  });
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

async function refresh() {
  const status = document.getElementById("status");
  try {
    // with READ_KEYS set, open the page as /#key=<read key> (the fragment never leaves the browser)
    const key = new URLSearchParams(location.hash.slice(1)).get("key");
    const res = await fetch("/v1/dashboard", {
      cache: "no-store",
      headers: key ? { authorization: `Bearer ${key}` } : {},
    });
    const data = await res.json();
    if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
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
    status.textContent = `updated ${new Date(data.generated_at).toLocaleTimeString()}` +
      (data.views_missing.length ? ` · views missing: ${data.views_missing.join(", ")}` : "");
  } catch (error) {
    status.className = "down";
    status.textContent = `cannot refresh: ${error.message}`;
  } finally {
    refreshes++;
    document.body.dataset.refreshes = String(refreshes);
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
