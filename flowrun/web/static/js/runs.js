// The run list: flow, status and search filters and paging, all kept in the URL (shareable; back works).
"use strict";

(function () {
  const flowrun = window.flowrun;
  const el = flowrun.el;
  const STATUSES = ["Running", "Succeeded", "Failed", "Cancelled", "TimedOut", "Skipped"];
  const TAKE = 50;

  function state() {
    const q = new URLSearchParams(location.search);
    return {
      flow_id: q.get("flow_id") || "", status: q.get("status") || "", search: q.get("search") || "",
      skip: Math.max(0, parseInt(q.get("skip") || "0", 10) || 0), take: parseInt(q.get("take") || String(TAKE), 10) || TAKE,
    };
  }

  // Typing replaces the history entry (one entry per search, not per key); other changes push one.
  function setState(changes, replace) {
    const next = Object.assign(state(), changes);
    const q = new URLSearchParams();
    for (const key of ["flow_id", "status", "search"]) if (next[key]) q.set(key, next[key]);
    if (next.skip) q.set("skip", next.skip);
    if (next.take !== TAKE) q.set("take", next.take);
    const url = `/runs${q.toString() ? "?" + q : ""}`;
    if (replace) history.replaceState(null, "", url); else history.pushState(null, "", url);
  }

  flowrun.runsPage = function (root) {
    const s0 = state();
    const search = el("input", { type: "search", id: "search", placeholder: "search ids, flows, trigger keys, steps, errors, outputs", value: s0.search });
    const status = el("select", { id: "status" }, el("option", { value: "" }, "any status"), STATUSES.map((v) => el("option", { value: v }, v)));
    const flow = el("select", { id: "flow" }, el("option", { value: "" }, "all flows"));
    const summary = el("span", { class: "muted", id: "summary" });
    const body = el("tbody", { id: "runs" });
    const prev = el("button", { id: "prev" }, "← newer");
    const next = el("button", { id: "next" }, "older →");
    root.replaceChildren(
      el("h1", {}, "Runs"),
      el("div", { class: "toolbar" }, search, status, flow, summary),
      el("div", { class: "panel" }, el("table", {}, el("thead", {}, el("tr", {}, ["run", "flow", "status", "started (UTC)", "duration", "trigger", "where"].map((h) => el("th", {}, h)))), body),
        el("div", { class: "pager" }, prev, next)));

    let typing = null;
    search.addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(() => { setState({ search: search.value, skip: 0 }, true); refresh(); }, 250);
    });
    status.addEventListener("change", () => { setState({ status: status.value, skip: 0 }); refresh(); });
    flow.addEventListener("change", () => { setState({ flow_id: flow.value, skip: 0 }); refresh(); });
    prev.addEventListener("click", () => { const s = state(); setState({ skip: Math.max(0, s.skip - s.take) }); refresh(); });
    next.addEventListener("click", () => { const s = state(); setState({ skip: s.skip + s.take }); refresh(); });

    flowrun.api("flows").then((found) => {
      flow.append(...found.flows.map((f) => el("option", { value: f.flow_id }, f.flow)));
      flow.value = state().flow_id;
    }).catch(() => {});

    let generation = 0;
    async function refresh() {
      const s = state();
      const mine = ++generation; // a slower, older answer never overwrites a newer one
      if (document.activeElement !== search) search.value = s.search;
      status.value = s.status;
      if (flow.options.length > 1) flow.value = s.flow_id;
      try {
        const page = await flowrun.api("runs", s);
        if (mine !== generation) return;
        root.querySelectorAll(".problem").forEach((p) => p.remove());
        body.replaceChildren(...page.runs.map((r) => el("tr", { class: "clickable", "data-run-id": r.id, "data-status": r.status, onclick: () => { location.href = `/runs/${r.id}`; } },
          el("td", {}, el("a", { href: `/runs/${r.id}`, class: "mono" }, r.id.slice(0, 8))),
          el("td", {}, r.flow_name), el("td", {}, flowrun.badge(r.status)), el("td", {}, flowrun.time(r.started_at)),
          el("td", { class: "num" }, r.completed_at ? flowrun.duration(Date.parse(r.completed_at) - Date.parse(r.started_at)) : "–"),
          el("td", { class: "mono" }, r.trigger_key), el("td", {}, flowrun.where(r)))));
        const last = Math.min(page.skip + page.runs.length, page.total_count);
        summary.textContent = page.total_count ? `${flowrun.number(page.skip + 1)}–${flowrun.number(last)} of ${flowrun.number(page.total_count)}` : "no runs match";
        summary.dataset.total = String(page.total_count);
        prev.disabled = page.skip === 0;
        next.disabled = page.skip + page.runs.length >= page.total_count;
        root.dataset.loaded = String(Number(root.dataset.loaded || 0) + 1);
      } catch (error) {
        if (mine !== generation) return;
        root.querySelectorAll(".problem").forEach((p) => p.remove());
        root.prepend(flowrun.problem(error));
      }
    }

    window.addEventListener("popstate", refresh);
    refresh();
    return refresh;
  };
})();
