// The overview: statistics, the timeseries chart (hour/day, window, flow), slowest flows, top step errors.
"use strict";

(function () {
  const flowrun = window.flowrun;
  const el = flowrun.el;
  const WINDOWS = { hour: ["6h", "24h", "48h", "7d"], day: ["7d", "30d", "90d", "365d"] };
  const SERIES = [
    ["succeeded", "Succeeded", "#2e9d57"], ["failed", "Failed", "#d64545"], ["timed_out", "TimedOut", "#e0892b"],
    ["cancelled", "Cancelled", "#8a8f99"], ["skipped", "Skipped", "#b9c0cc"], ["running", "Running", "#2f8fdb"],
  ];
  const LINES = [["p50_duration_ms", "p50", "#6b4bb8"], ["p95_duration_ms", "p95", "#b03aa0"], ["p99_duration_ms", "p99", "#1d2330"]];

  function state() {
    const q = new URLSearchParams(location.search);
    const granularity = q.get("granularity") === "hour" ? "hour" : "day";
    const window_ = q.get("window") || (granularity === "hour" ? "24h" : "30d");
    return { granularity, window: window_, flow_id: q.get("flow_id") || "" };
  }

  function setState(changes) {
    const next = Object.assign(state(), changes);
    const q = new URLSearchParams();
    q.set("granularity", next.granularity);
    q.set("window", next.window);
    if (next.flow_id) q.set("flow_id", next.flow_id);
    history.pushState(null, "", `/?${q}`);
  }

  function label(ts, granularity) {
    return granularity === "hour" ? ts.slice(5, 13).replace("T", " ") + ":00" : ts.slice(0, 10);
  }

  flowrun.overviewPage = function (root) {
    let chart = null;
    const cards = el("div", { class: "cards", id: "stats" });
    const toolbar = el("div", { class: "toolbar" });
    const canvas = el("canvas", { id: "timeseries", "data-buckets": "" });
    const chartPanel = el("div", { class: "panel" }, el("h2", { id: "chart-title" }, "Runs"), toolbar, el("div", { class: "chart-box" }, canvas));
    const slow = el("div", { class: "panel", id: "slowest" }, el("h2", {}, "Slowest flows (p95 of completed runs)"), el("p", { class: "muted" }, "computing over the whole history…"));
    const errors = el("div", { class: "panel", id: "errors" }, el("h2", {}, "Most frequent step errors"), el("p", { class: "muted" }, "computing over the whole history…"));
    root.replaceChildren(el("h1", {}, "Overview"), cards, chartPanel, el("div", { class: "grid2" }, slow, errors));

    let flows = [];

    function drawToolbar() {
      const s = state();
      const seg = (values, current, key) => el("span", { class: "seg", "data-control": key }, values.map((v) =>
        el("button", { class: v === current ? "on" : "", "data-value": v, onclick: () => {
          const change = { [key]: v };
          if (key === "granularity") change.window = v === "hour" ? "24h" : "30d";
          setState(change); refresh();
        } }, v)));
      const select = el("select", { id: "flow", onchange: (e) => { setState({ flow_id: e.target.value }); refresh(); } },
        el("option", { value: "" }, "all flows"),
        flows.map((f) => el("option", { value: f.flow_id, selected: f.flow_id === s.flow_id }, f.flow)));
      toolbar.replaceChildren(
        el("label", {}, "buckets"), seg(["hour", "day"], s.granularity, "granularity"),
        el("label", {}, "window"), seg(WINDOWS[s.granularity].includes(s.window) ? WINDOWS[s.granularity] : [...WINDOWS[s.granularity], s.window], s.window, "window"),
        el("label", {}, "flow"), select);
    }

    function drawChart(series) {
      const s = state();
      const labels = series.buckets.map((b) => label(b.timestamp, s.granularity));
      const datasets = SERIES.map(([key, name, color]) => ({
        type: "bar", label: name, data: series.buckets.map((b) => b[key]), backgroundColor: color, stack: "runs", yAxisID: "y", order: 2,
      })).concat(LINES.map(([key, name, color]) => ({
        type: "line", label: `${name} duration`, data: series.buckets.map((b) => b[key]), borderColor: color, backgroundColor: color,
        yAxisID: "y1", pointRadius: 0, borderWidth: 1.5, spanGaps: false, order: 1,
      })));
      if (!chart) {
        chart = new Chart(canvas, {
          data: { labels, datasets },
          options: {
            animation: false, maintainAspectRatio: false, interaction: { mode: "index", intersect: false },
            scales: {
              x: { stacked: true, ticks: { maxTicksLimit: 16, autoSkip: true } },
              y: { stacked: true, beginAtZero: true, title: { display: true, text: "runs" } },
              y1: { type: "logarithmic", position: "right", grid: { drawOnChartArea: false }, title: { display: true, text: "duration (ms, log)" } },
            },
            plugins: { legend: { position: "bottom" }, tooltip: { callbacks: { label: (c) => c.dataset.yAxisID === "y1" ? `${c.dataset.label}: ${flowrun.duration(c.raw)}` : `${c.dataset.label}: ${c.raw}` } } },
          },
        });
      } else {
        chart.data.labels = labels;
        chart.data.datasets.forEach((d, i) => { d.data = datasets[i].data; });
        chart.update("none");
      }
      canvas.dataset.buckets = String(labels.length);
      const flow = flows.find((f) => f.flow_id === s.flow_id);
      document.getElementById("chart-title").textContent =
        `Runs per ${s.granularity}, ${flowrun.time(series.since)} to ${flowrun.time(series.until)}${flow ? " · " + flow.flow : ""}`;
    }

    function drawStats(stats) {
      const card = (label, value, id) => el("div", { class: "card", id }, el("div", { class: "value" }, flowrun.number(value)), el("div", { class: "label" }, label));
      cards.replaceChildren(card("flows", stats.total_flows, "stat-flows"), card("active runs", stats.active_runs, "stat-active"),
        card("succeeded today (UTC)", stats.completed_today, "stat-completed"), card("failed today (UTC)", stats.failed_today, "stat-failed"));
    }

    function drawSlowest(top) {
      slow.replaceChildren(slow.firstChild, el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "flow"), el("th", { class: "num" }, "runs"),
        el("th", { class: "num" }, "failed"), el("th", { class: "num" }, "p50"), el("th", { class: "num" }, "p95"), el("th", { class: "num" }, "p99"))),
        el("tbody", {}, top.map((r) => el("tr", { class: "clickable", onclick: () => { location.href = `/runs?flow_id=${encodeURIComponent(r.flow_id)}`; } },
          el("td", {}, r.flow), el("td", { class: "num" }, flowrun.number(r.runs)), el("td", { class: "num" }, `${r.failed_pct}%`),
          el("td", { class: "num" }, flowrun.duration(r.p50_ms)), el("td", { class: "num" }, flowrun.duration(r.p95_ms)), el("td", { class: "num" }, flowrun.duration(r.p99_ms)))))));
    }

    function drawErrors(rows) {
      errors.replaceChildren(errors.firstChild, rows.length ? el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "flow / step"), el("th", {}, "error"),
        el("th", { class: "num" }, "failures"), el("th", { class: "num" }, "runs"))),
        el("tbody", {}, rows.map((r) => el("tr", { class: "clickable", title: "runs with this error", onclick: () => { location.href = `/runs?status=&search=${encodeURIComponent(r.error.slice(0, 200))}`; } },
          el("td", {}, r.flow, el("div", { class: "mono muted" }, r.step)), el("td", { class: "error" }, r.error),
          el("td", { class: "num" }, flowrun.number(r.failures)), el("td", { class: "num" }, flowrun.number(r.runs)))))) : el("p", { class: "muted" }, "No failed attempts."));
    }

    // The statistics and the chart are quick; flows and errors are whole-history aggregates the server may
    // still be computing when it has just started: each part is drawn as soon as its answer arrives.
    let busy = false;
    async function refresh() {
      if (busy) return;
      busy = true;
      const s = state();
      const shown = (error) => {
        root.querySelectorAll(".problem").forEach((p) => p.remove());
        if (error) root.prepend(flowrun.problem(error));
      };
      const core = Promise.all([
        flowrun.api("statistics"),
        flowrun.api("timeseries", { granularity: s.granularity, window: s.window, flow_id: s.flow_id }),
      ]).then(([stats, series]) => {
        drawToolbar(); drawStats(stats); drawChart(series);
        root.dataset.loaded = String(Number(root.dataset.loaded || 0) + 1);
      });
      const aggregates = Promise.all([flowrun.api("flows"), flowrun.api("errors")]).then(([flowList, errorList]) => {
        flows = flowList.flows;
        drawToolbar(); drawSlowest(flowList.slowest); drawErrors(errorList.errors);
        slow.dataset.loaded = "1";
      });
      try {
        await Promise.all([core, aggregates]);
        shown(null);
      } catch (error) {
        shown(error);
      } finally {
        busy = false;
      }
    }

    window.addEventListener("popstate", refresh);
    refresh();
    return refresh;
  };
})();
