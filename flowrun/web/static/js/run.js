// One run: facts, lineage, a Gantt of every attempt, and each step's attempts with inputs, outputs and errors.
"use strict";

(function () {
  const flowrun = window.flowrun;
  const el = flowrun.el;
  const COLORS = { Succeeded: "#2e9d57", Failed: "#d64545", Running: "#2f8fdb", Pending: "#c9b458", Skipped: "#b9c0cc" };

  function gantt(run) {
    const attempts = (run.steps || []).flatMap((s) => (s.attempts || []).map((a) => ({ step: s.step_key, a })));
    if (!attempts.length) return el("p", { class: "muted" }, "No step has started.");
    const t = (iso) => Date.parse(iso);
    const start = Math.min(t(run.started_at), ...attempts.map((x) => t(x.a.started_at)));
    const now = Date.now();
    const end = Math.max(run.completed_at ? t(run.completed_at) : 0, ...attempts.map((x) => (x.a.completed_at ? t(x.a.completed_at) : now)), start + 1);
    const span = end - start;
    const rows = (run.steps || []).map((s) => el("div", { class: "row", "data-step-key": s.step_key },
      el("div", { class: "key mono", title: s.step_key }, s.step_key),
      el("div", { class: "track" }, (s.attempts || []).map((a) => {
        const left = ((t(a.started_at) - start) / span) * 100;
        const width = (((a.completed_at ? t(a.completed_at) : now) - t(a.started_at)) / span) * 100;
        const bar = el("div", { class: "bar", title: `${s.step_key} attempt ${a.attempt}: ${a.status}, ${flowrun.duration(a.completed_at ? t(a.completed_at) - t(a.started_at) : null)}` });
        bar.style.left = `${left}%`;
        bar.style.width = `${Math.max(width, 0.3)}%`;
        bar.style.background = COLORS[a.status] || "#8a8f99";
        return bar;
      }))));
    return el("div", { class: "gantt", id: "gantt" }, ...rows,
      el("div", { class: "axis" }, el("span", {}), el("div", { class: "ticks" }, el("span", {}, "0"), el("span", {}, flowrun.duration(span / 2)), el("span", {}, flowrun.duration(span)))));
  }

  function whole(runId, field, step, attempt) {
    return async () => (await flowrun.api(`runs/${runId}/value`, { field, step, attempt })).value;
  }

  function jsonFields(runId, item, step, attempt) {
    const cut = item.truncated || [];
    return [["input_json", "input"], ["output_json", "output"]].map(([field, label]) =>
      flowrun.jsonBlock(label, item[field], cut.includes(field), whole(runId, field, step, attempt)));
  }

  function stepBox(run, step, dispatched, refresh) {
    const attempts = (step.attempts || []).map((a) => el("div", { class: "attempt", "data-attempt": a.attempt },
      el("div", {}, el("strong", {}, `attempt ${a.attempt} `), flowrun.badge(a.status), ` ${flowrun.time(a.started_at)} → ${flowrun.time(a.completed_at)}`,
        a.completed_at ? ` (${flowrun.duration(Date.parse(a.completed_at) - Date.parse(a.started_at))})` : "", a.job_id ? el("span", { class: "muted mono" }, ` job ${a.job_id}`) : null),
      a.error_message ? el("div", { class: "error" }, a.error_message) : null,
      ...jsonFields(run.id, a, step.step_key, a.attempt)));
    const retry = run.actions && !run.archived && step.status !== "Pending"
      ? el("button", { class: "action", onclick: async (e) => {
          e.preventDefault();
          if (!confirm(`Retry step ${step.step_key}?`)) return;
          try {
            await flowrun.api(`runs/${run.id}/retry`, {}, { method: "POST", headers: { "content-type": "application/json", "x-flowrun-action": "1" }, body: JSON.stringify({ step_key: step.step_key }) });
          } catch (error) { alert(error.message); }
          refresh();
        } }, "retry step")
      : null;
    return el("details", { class: "step", "data-step-key": step.step_key, open: step.status === "Failed" },
      el("summary", {}, el("strong", { class: "mono" }, step.step_key), flowrun.badge(step.status), el("span", { class: "muted" }, step.step_type),
        el("span", { class: "muted" }, `${step.attempt_count} attempt${step.attempt_count === 1 ? "" : "s"}`),
        dispatched.includes(step.step_key) ? el("span", { class: "tag dispatched", title: "dispatched: a worker holds this step" }, "dispatched") : null, retry),
      el("div", { class: "body" }, attempts));
  }

  flowrun.runPage = function (root, runId) {
    const openSteps = new Set();
    async function refresh() {
      try {
        const [run, derived] = await Promise.all([flowrun.api(`runs/${runId}`), flowrun.api(`runs/${runId}/derived`)]);
        root.querySelectorAll("details.step[open]").forEach((d) => openSteps.add(d.dataset.stepKey));
        const duration = run.completed_at ? flowrun.duration(Date.parse(run.completed_at) - Date.parse(run.started_at)) : "running";
        const facts = el("dl", { class: "facts" },
          el("dt", {}, "run"), el("dd", { class: "mono", id: "run-id" }, run.id),
          el("dt", {}, "flow"), el("dd", {}, el("a", { href: `/runs?flow_id=${run.flow_id}` }, run.flow_name), el("span", { class: "muted mono" }, ` ${run.flow_id}`)),
          el("dt", {}, "status"), el("dd", { id: "run-status" }, flowrun.badge(run.status), " ", flowrun.where(run)),
          el("dt", {}, "started"), el("dd", {}, flowrun.time(run.started_at)),
          el("dt", {}, "completed"), el("dd", {}, flowrun.time(run.completed_at), ` (${duration})`),
          el("dt", {}, "trigger"), el("dd", { class: "mono" }, run.trigger_key),
          el("dt", {}, "job"), el("dd", { class: "mono" }, run.background_job_id || "–"),
          el("dt", {}, "dispatched"), el("dd", {}, run.dispatched_step_keys.length ? run.dispatched_step_keys.join(", ") : "no step"),
          el("dt", {}, "re-run of"), el("dd", { id: "source" }, run.source_run_id ? el("a", { href: `/runs/${run.source_run_id}`, class: "mono" }, run.source_run_id) : "–"),
          el("dt", {}, "re-runs"), el("dd", { id: "derived" }, derived.runs.length ? derived.runs.map((d) => el("div", {}, el("a", { href: `/runs/${d.id}`, class: "mono" }, d.id), " ", flowrun.badge(d.status), ` ${flowrun.time(d.started_at)}`)) : "none"));
        const trigger = flowrun.jsonBlock("trigger data", run.trigger_data_json, (run.truncated || []).includes("trigger_data_json"), whole(run.id, "trigger_data_json"));
        const steps = (run.steps || []).map((s) => stepBox(run, s, run.dispatched_step_keys, refresh));
        steps.forEach((d) => { if (openSteps.has(d.dataset.stepKey)) d.open = true; });
        const cancel = run.actions && !run.archived && run.status === "Running" && !run.cancel_requested
          ? el("button", { class: "action", id: "cancel", onclick: async () => {
              if (!confirm("Ask this run's workers to stop?")) return;
              try {
                await flowrun.api(`runs/${run.id}/cancel`, {}, { method: "POST", headers: { "x-flowrun-action": "1" } });
              } catch (error) { alert(error.message); }
              refresh();
            } }, "request cancel")
          : null;
        root.replaceChildren(
          el("h1", {}, `${run.flow_name} `, flowrun.badge(run.status), run.cancel_requested ? el("span", { class: "tag", id: "cancel-requested" }, " cancel requested") : null, " ", cancel),
          el("div", { class: "panel" }, facts, trigger),
          el("div", { class: "panel" }, el("h2", {}, "Timeline (every attempt)"), gantt(run)),
          el("h2", {}, `Steps (${(run.steps || []).length})`), el("div", { id: "steps" }, steps));
        root.dataset.loaded = String(Number(root.dataset.loaded || 0) + 1);
      } catch (error) {
        root.replaceChildren(flowrun.problem(error));
      }
    }
    refresh();
    return (events) => {
      if (!events.length || events.some((e) => e.run_id === runId)) refresh();
    };
  };
})();
