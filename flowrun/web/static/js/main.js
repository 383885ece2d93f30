// Entry point: draws the page the server named (body[data-page]) and wires live updates to its refresh.
"use strict";

(function () {
  const flowrun = window.flowrun;
  document.addEventListener("DOMContentLoaded", () => {
    const page = document.body.dataset.page;
    const root = document.getElementById("app");
    document.querySelectorAll("header nav a").forEach((a) => a.classList.toggle("active", a.dataset.nav === (page === "run" ? "runs" : page)));
    let refresh;
    if (page === "overview") refresh = flowrun.overviewPage(root);
    else if (page === "runs") refresh = flowrun.runsPage(root);
    else if (page === "run") refresh = flowrun.runPage(root, document.body.dataset.run);
    if (refresh) flowrun.live(refresh);
  });
})();
