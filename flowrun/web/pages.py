"""The dashboard's pages: small server-rendered HTML shells that the scripts in ``static/`` fill from the API.

Three pages — the overview (``/``), the run list (``/runs``) and one run
(``/runs/{id}``) — share one layout: a navigation bar, a live/refresh indicator,
Chart.js (shipped in the wheel; no CDN) and the scripts of ``static/js``. Nothing from a request
reaches the HTML except a run id already parsed as a UUID; all data is drawn by
the scripts with ``textContent``, never as markup, and the Content Security
Policy forbids inline scripts anyway.
"""

from __future__ import annotations

import html

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from flowrun.web import params

router = APIRouter(include_in_schema=False)

LAYOUT = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · flowrun</title>
<link rel="stylesheet" href="/static/app.css">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<script src="/static/vendor/chart.umd.min.js" defer></script>
<script src="/static/js/common.js" defer></script>
<script src="/static/js/live.js" defer></script>
<script src="/static/js/overview.js" defer></script>
<script src="/static/js/runs.js" defer></script>
<script src="/static/js/run.js" defer></script>
<script src="/static/js/main.js" defer></script>
</head>
<body data-page="{page}"{extra}>
<header>
  <a class="brand" href="/">flowrun</a>
  <nav><a href="/" data-nav="overview">Overview</a><a href="/runs" data-nav="runs">Runs</a></nav>
  <span id="live" class="live" title="live updates">connecting…</span>
</header>
<main id="app"><p class="muted">Loading…</p></main>
<noscript><p>This dashboard needs JavaScript; the same data is at <a href="/api/openapi.json">/api</a>.</p></noscript>
</body>
</html>
"""


def _page(title: str, page: str, **data: str) -> HTMLResponse:
    extra = "".join(f' data-{name}="{html.escape(value)}"' for name, value in data.items())
    body = LAYOUT.format(title=html.escape(title), page=page, extra=extra)
    return HTMLResponse(body, headers={"cache-control": "no-store"})


@router.get("/")
def overview() -> HTMLResponse:
    return _page("Overview", "overview")


@router.get("/runs")
def run_list() -> HTMLResponse:
    return _page("Runs", "runs")


@router.get("/runs/{run_id}")
def run_page(run_id: str) -> HTMLResponse:
    rid = params.run_id(run_id)
    return _page(f"Run {rid}", "run", run=str(rid))
