// Shared helpers of the dashboard's pages: DOM building (text only, never markup), API calls, formatting.
"use strict";

const flowrun = (window.flowrun = window.flowrun || {});

// el("td", {class: "num"}, "12") builds an element; children are nodes or strings (set as text).
flowrun.el = function (tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
};

flowrun.ApiError = class extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.type = body && body.error ? body.error.type : "HTTPError";
  }
};

// GET /api/<path>?<params> as JSON; empty parameters are left out.
flowrun.api = async function (path, params, options) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== null && value !== undefined && value !== "") query.set(key, value);
  }
  const url = `/api/${path}${query.toString() ? "?" + query : ""}`;
  const response = await fetch(url, Object.assign({ headers: { accept: "application/json" } }, options || {}));
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new flowrun.ApiError(response.status, body);
  return body;
};

flowrun.duration = function (ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = s / 60;
  if (m < 60) return `${m.toFixed(1)} min`;
  return `${(m / 60).toFixed(1)} h`;
};

flowrun.time = function (iso) {
  if (!iso) return "–";
  return iso.replace("T", " ").replace(/\.\d+/, "").replace("+00:00", " UTC");
};

flowrun.number = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en"));

flowrun.badge = (status) => flowrun.el("span", { class: `badge s-${status}` }, status);

flowrun.where = function (run) {
  return run.archived
    ? flowrun.el("span", { class: "tag archived", title: "pruned from PostgreSQL, read from the archive" }, "archived")
    : flowrun.el("span", { class: "tag live", title: "in PostgreSQL" }, "live");
};

flowrun.problem = (error) => flowrun.el("div", { class: "problem" }, `${error.type || "Error"}: ${error.message}`);

// A JSON text shown pretty and collapsible; long values are cut with a button to show the rest, and a value
// the server cut (over its field limit) can be loaded whole from its own URL.
const SHOWN = 4000;
flowrun.jsonBlock = function (label, text, serverCut, loadWhole) {
  if (text === null || text === undefined) return null;
  const pre = flowrun.el("pre", { class: "json" });
  const box = flowrun.el("details", { class: "json", "data-field": label }, flowrun.el("summary", {}, `${label} (${text.length.toLocaleString("en")} chars${serverCut ? "+, cut by the server" : ""})`), pre);
  const render = (raw, cut) => {
    let pretty = raw;
    if (!cut) {
      try { pretty = JSON.stringify(JSON.parse(raw), null, 2); } catch (e) { pretty = raw; }
    }
    pre.textContent = pretty.length > SHOWN ? pretty.slice(0, SHOWN) + " …" : pretty;
    box.querySelectorAll("button.more").forEach((b) => b.remove());
    if (pretty.length > SHOWN) {
      box.append(flowrun.el("button", { class: "link more", onclick: () => { pre.textContent = pretty; box.querySelectorAll("button.more").forEach((b) => b.remove()); } }, `show all ${pretty.length.toLocaleString("en")} chars`));
    }
    if (cut && loadWhole) {
      box.append(flowrun.el("button", { class: "link more", onclick: async () => { const whole = await loadWhole(); render(whole, false); } }, " load the whole value"));
    }
  };
  render(text, serverCut);
  return box;
};
