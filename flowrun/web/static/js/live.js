// Live updates: an EventSource on /api/events; when the stream is down the page refreshes on a timer instead.
"use strict";

(function () {
  const flowrun = window.flowrun;
  const FALLBACK_MS = 10000; // periodic refresh while the stream is down
  const DEBOUNCE_MS = 250; // changes arriving together cause one refresh

  flowrun.live = function (onChanges) {
    const badge = document.getElementById("live");
    let timer = null;
    let pending = null;
    let source = null;
    const show = (state, text) => {
      badge.className = `live ${state}`;
      badge.textContent = text;
      badge.dataset.state = state;
      badge.dataset.drops = String(Number(badge.dataset.drops || 0) + (state === "off" ? 1 : 0)); // times the stream went down
    };
    const fallback = (on) => {
      if (on && !timer) timer = setInterval(() => onChanges([]), FALLBACK_MS);
      if (!on && timer) { clearInterval(timer); timer = null; }
    };
    const changed = (events) => {
      if (pending) { pending.push(...events); return; }
      pending = [...events];
      setTimeout(() => { const batch = pending; pending = null; onChanges(batch); }, DEBOUNCE_MS);
    };
    const connect = () => {
      source = new EventSource("/api/events");
      source.addEventListener("hello", (e) => {
        const hello = JSON.parse(e.data);
        show(hello.live ? "on" : "off", hello.live ? "live" : "refreshing every 10 s");
        fallback(!hello.live);
        changed([]); // catch up on whatever happened while the stream was down
      });
      source.addEventListener("changes", (e) => {
        const data = JSON.parse(e.data);
        const feedStates = data.events.filter((ev) => ev.kind === "feed");
        if (feedStates.length) {
          const live = feedStates[feedStates.length - 1].live;
          show(live ? "on" : "off", live ? "live" : "refreshing every 10 s");
          fallback(!live);
        }
        changed(data.events.filter((ev) => ev.kind !== "feed"));
      });
      source.onerror = () => { show("off", "refreshing every 10 s"); fallback(true); };
    };
    connect();
    return { close: () => { if (source) source.close(); fallback(false); } };
  };
})();
