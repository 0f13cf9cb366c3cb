// The analyst part of the dashboard: KPI cards with the change vs the previous period, hourly
// trend vs last week (the current hour marked partial), funnel, traffic sources, top products,
// segments and data quality with a drill-down to example rejected rows (needs a dead-letter
// key). Reads /v1/dashboard/kpis?from=&to= (UTC days) every few seconds. Presentation only:
// every figure comes from the API; the helpers (key, errors, money, UTC) from dashboard.js.
/* global Chart, getJson, showKeyPrompt, problemText, markStale, staleText, formatMoney,
   moneyTick */
"use strict";

(() => {
  const params = new URLSearchParams(location.search);
  const REFRESH_MS = Number(params.get("refresh") || 5000);
  const DAY = 86_400_000;
  const $ = (id) => document.getElementById(id);
  const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);
  let currency = "";
  let range = { from: params.get("from"), to: params.get("to") };
  let trendChart;
  let refreshes = 0;

  function setRange(days) {
    const today = Math.floor(Date.now() / DAY) * DAY;
    range = { from: isoDay(today - (days - 1) * DAY), to: isoDay(today) };
    refresh();
  }

  const fmtMoney = (n) => formatMoney(n, currency);
  const fmtInt = (n) =>
    n === null || n === undefined ? "–" : Math.round(Number(n)).toLocaleString("en-US");
  const fmtPct = (r) => (r === null || r === undefined ? "–" : `${(Number(r) * 100).toFixed(2)} %`);

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  /** A table from rows: columns [title, key, format, numeric]. */
  function table(id, columns, rows, emptyText, extra) {
    const head = el("tr");
    for (const [title, , , n] of columns) head.append(el("th", title, n ? "n" : ""));
    const body = rows.map((r) => {
      const tr = el("tr");
      for (const [, key, fmt, n] of columns) tr.append(el("td", fmt(r[key], r), n ? "n" : ""));
      if (extra) tr.append(extra(r));
      return tr;
    });
    if (rows.length === 0) {
      const tr = el("tr");
      const td = el("td", emptyText);
      td.colSpan = columns.length;
      tr.append(td);
      body.push(tr);
    }
    $(id).replaceChildren(head, ...body);
  }

  function drawCard(name, c, fmt) {
    const root = $(`card-${name}`);
    root.querySelector(".value").textContent = fmt(c.value);
    const ch = root.querySelector(".change");
    // comparability and its reason come from SQL (analytics.period_metrics)
    if (c.change === null) {
      ch.className = "change";
      ch.textContent = c.comparison;
    } else {
      ch.className = `change ${c.change > 0 ? "up" : c.change < 0 ? "down" : ""}`;
      const arrow = c.change > 0 ? "▲" : c.change < 0 ? "▼" : "=";
      ch.textContent = `${arrow} ${(Math.abs(c.change) * 100).toFixed(1)} % (${
        fmt(c.previous)
      }): ${c.comparison}`;
    }
  }

  function drawTrend(d) {
    const day = d.range.to;
    const hours = [...Array(24).keys()].map((h) => `${day}T${String(h).padStart(2, "0")}:00`);
    const by = new Map(d.trend.map((t) => [t.hour.slice(0, 16), t]));
    const nowHour = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000).toISOString()
      .slice(0, 16);
    // hours after the current one have not happened: no point, not a drop to zero
    const today = hours.map((h) => (h > nowHour ? null : by.get(h)?.revenue ?? null));
    const lastWeek = hours.map((h) => by.get(h)?.last_week_revenue ?? null);
    const partial = d.trend.find((t) => t.is_partial);
    const partialIndex = partial ? hours.indexOf(partial.hour.slice(0, 16)) : -1;
    $("trend-title").textContent =
      `Revenue per hour on ${day} (UTC, ${currency}) vs the same hour a week earlier`;
    if (!trendChart) {
      trendChart = new Chart($("chart-trend"), {
        type: "line",
        data: { labels: [], datasets: [] },
        options: {
          scales: {
            x: { title: { display: true, text: "hour (UTC)" } },
            y: {
              beginAtZero: true,
              title: { display: true, text: `revenue (${currency})` },
              ticks: { callback: moneyTick(currency) },
            },
          },
          plugins: {
            tooltip: {
              callbacks: { label: (ctx) => `${ctx.dataset.label}: ${fmtMoney(ctx.parsed.y)}` },
            },
          },
        },
      });
    }
    trendChart.options.scales.y.title.text = `revenue (${currency})`;
    trendChart.options.scales.y.ticks.callback = moneyTick(currency);
    trendChart.data.labels = hours.map((h) => h.slice(11));
    trendChart.data.datasets = [
      {
        label: day,
        data: today,
        borderColor: "#4e79a7",
        backgroundColor: "#4e79a7",
        spanGaps: false,
        // the hour in progress: a hollow point and a dashed segment leading to it
        pointStyle: today.map((_, i) => (i === partialIndex ? "rectRot" : "circle")),
        pointRadius: today.map((_, i) => (i === partialIndex ? 6 : 2)),
        segment: {
          borderDash: (ctx) => (ctx.p1DataIndex === partialIndex ? [4, 4] : undefined),
        },
      },
      {
        label: "same hour last week",
        data: lastWeek,
        borderColor: "#bab0ac",
        backgroundColor: "#bab0ac",
        borderDash: [2, 2],
        pointRadius: 2,
      },
    ];
    trendChart.update();
    $("note-trend").textContent = partial
      ? `${partial.hour.slice(11, 16)} UTC is in progress: partial (${
        fmtMoney(partial.revenue)
      } so far), marked ◆ and dashed`
      : "";
  }

  function drawFunnel(steps) {
    const top = steps[0]?.sessions || 0;
    $("funnel").replaceChildren(...steps.map((s) => {
      const row = el("div", undefined, "funnel-row");
      row.append(el("span", s.step));
      const bar = el("div", undefined, "bar");
      bar.style.width = `${top ? Math.max(1, (s.sessions / top) * 100) : 0}%`;
      row.append(bar);
      row.append(el(
        "span",
        `${fmtInt(s.sessions)} sessions` +
          (s.rate_from_previous === null ? "" : ` · ${fmtPct(s.rate_from_previous)} of previous`),
      ));
      return row;
    }));
  }

  function drawQuality(q) {
    $("quality-summary").textContent = `${fmtInt(q.rows)} rows: ${fmtInt(q.valid)} valid, ` +
      `${fmtInt(q.invalid)} rejected, ${fmtInt(q.duplicates)} duplicates`;
    table(
      "reasons",
      [["reason code", "reason", String], ["rows", "rows", fmtInt, true]],
      q.reasons,
      "no rejected rows in the range",
      (r) => {
        const td = el("td");
        const b = el("button", "examples");
        b.type = "button";
        b.dataset.reason = r.reason;
        b.addEventListener("click", () => openDrill(r.reason));
        td.append(b);
        return td;
      },
    );
  }

  let drillReason = "";
  function openDrill(reason) {
    drillReason = reason;
    $("drill").hidden = false;
    $("drill-title").textContent = `Example rejected rows: ${reason}`;
    $("drill-rows").replaceChildren();
    $("drill-note").textContent = "The dead letter needs a key with read access to it.";
    if ($("drill-key").value) loadDrill();
  }

  async function loadDrill() {
    const note = $("drill-note");
    try {
      const res = await fetch(
        `/v1/dead-letter?reason=${encodeURIComponent(drillReason)}&limit=20`,
        {
          headers: { authorization: `Bearer ${$("drill-key").value}` },
          cache: "no-store",
        },
      );
      const data = await res.json();
      if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
      note.textContent =
        `${data.count} newest rows with ${data.reason} (e-mail addresses are never shown)`;
      const v = (x) => (x === null || x === undefined ? "" : String(x));
      table(
        "drill-rows",
        [
          ["source", "source", v],
          ["line", "line_no", v, true],
          ["reasons", "reasons", (r) => r.join(", ")],
          ["event_type", "event_type", v],
          ["event_time", "event_time", v],
          ["user_id", "user_id", v],
          ["product_id", "product_id", v],
          ["price", "price", v],
          ["quantity", "quantity", v],
          ["e-mail", "has_email", (h) => (h ? "(hidden)" : "")],
        ],
        data.rows,
        "no rows (replayed or none kept)",
      );
    } catch (error) {
      $("drill-rows").replaceChildren();
      note.textContent = `cannot show examples: ${error.message}`;
    }
  }

  function draw(d) {
    currency = d.currency;
    for (const c of document.querySelectorAll(".currency")) c.textContent = currency;
    $("from").value = d.range.from;
    $("to").value = d.range.to;
    $("empty-state").hidden = d.has_events;
    drawCard("revenue", d.cards.revenue, fmtMoney);
    drawCard("orders", d.cards.orders, fmtInt);
    drawCard("aov", d.cards.aov, fmtMoney);
    drawCard("conversion", d.cards.session_conversion_rate, fmtPct);
    drawTrend(d);
    drawFunnel(d.funnel);
    table(
      "traffic",
      [
        ["source", "traffic_source", String],
        ["sessions", "sessions", fmtInt, true],
        ["orders", "orders", fmtInt, true],
        ["revenue", "revenue", fmtMoney, true],
        ["session conversion", "session_conversion_rate", fmtPct, true],
        ["AOV", "aov", fmtMoney, true],
      ],
      d.traffic_sources,
      "no sessions in the range",
    );
    table(
      "products",
      [
        ["rank", "revenue_rank", String, true],
        ["product", "product_id", String],
        ["orders", "orders", fmtInt, true],
        ["units", "units", fmtInt, true],
        ["revenue", "revenue", fmtMoney, true],
      ],
      d.top_products,
      "no products sold yet",
    );
    table(
      "segments",
      [
        ["segment", "segment", String],
        ["customers", "customers", fmtInt, true],
        ["share", "share", fmtPct, true],
        ["lifetime value", "ltv", fmtMoney, true],
        ["avg LTV", "avg_ltv", fmtMoney, true],
      ],
      d.segments,
      "no customers yet",
    );
    drawQuality(d.quality);
  }

  /** Every analyst panel emptied (a failed reading shows no figure of an earlier one). */
  function clearPanels() {
    for (const c of document.querySelectorAll(".card .value")) c.textContent = "–";
    for (const c of document.querySelectorAll(".card .change")) c.textContent = "";
    if (trendChart) {
      trendChart.data.datasets = [];
      trendChart.update();
    }
    $("note-trend").textContent = "";
    $("funnel").replaceChildren();
    for (const id of ["traffic", "products", "segments", "reasons"]) $(id).replaceChildren();
    $("quality-summary").textContent = "";
  }

  let lastUpdate = null;

  async function refresh() {
    const down = $("down-state");
    const panels = [$("analyst"), document.querySelector(".cards")];
    try {
      const q = new URLSearchParams();
      if (range.from) q.set("from", range.from);
      if (range.to) q.set("to", range.to);
      const data = await getJson(`/v1/dashboard/kpis?${q}`);
      range = { from: data.range.from, to: data.range.to };
      down.hidden = true;
      delete down.dataset.problem;
      showKeyPrompt(null);
      for (const p of panels) markStale(p, null);
      lastUpdate = data.generated_at;
      draw(data);
    } catch (error) {
      const kind = error.kind ?? "server";
      const keyNeeded = showKeyPrompt(error);
      down.hidden = keyNeeded;
      down.dataset.problem = kind;
      down.textContent = problemText(error);
      $("empty-state").hidden = true;
      clearPanels();
      for (const p of panels) markStale(p, staleText(kind, lastUpdate));
    } finally {
      refreshes++;
      document.body.dataset.kpiRefreshes = String(refreshes);
    }
  }

  $("range-form").addEventListener("submit", (e) => {
    e.preventDefault();
    range = { from: $("from").value, to: $("to").value };
    refresh();
  });
  for (const b of document.querySelectorAll("[data-days]")) {
    b.addEventListener("click", () => setRange(Number(b.dataset.days)));
  }
  $("drill-form").addEventListener("submit", (e) => {
    e.preventDefault();
    loadDrill();
  });

  globalThis.addEventListener("dashboard:refresh", refresh);
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
