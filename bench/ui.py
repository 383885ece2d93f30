"""The web dashboard's API against the direct Python calls it wraps, on ``bench/olap.py``'s dataset.

The dataset (``bench/olap_data.py``, without the PostgreSQL-only baseline tables): an
archive of ``--runs`` runs (50 flows, 5 steps each, 90 days) plus ``--runs / 100`` live
runs of the last day (at least 1,000). The dashboard is served by uvicorn on 127.0.0.1
in this process; every figure is the median of ``--repeat`` warm HTTP requests (httpx,
one keep-alive connection), set against the median of the same ``FlowRunStore`` call made
directly, in the same run on the same data:

* the overview's requests: statistics, the 30-day daily and 24-hour hourly timeseries,
  flows and top errors (both served from the dashboard's one-minute cache; their first,
  uncached computation is reported on its own);
* a runs page: page one, a status filter, a flow filter, a search, and one run's detail.

    python -P bench/ui.py --runs 100000      # smoke, a minute or two
    python -P bench/ui.py --runs 10000000    # the issue's scale

The data lives in ``--data`` (default ``/work/bench-data/ui-<runs>``) and is reused when
it already holds the same dataset.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import psycopg
import uvicorn

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
_spec = importlib.util.spec_from_file_location("olap_bench_data", _HERE / "olap_data.py")
assert _spec is not None and _spec.loader is not None
olap_data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(olap_data)

from flowrun import FlowRunStore, Granularity, embedded, insights  # noqa: E402
from flowrun.web import UiSettings, create_app  # noqa: E402
from oltp import migrate  # noqa: E402

END = olap_data.END
DAYS = 90
NOW = END - timedelta(hours=2)
SEARCH = "from service-17"  # as bench/olap.py: in 1/40 of failed runs' error messages


def median_seconds(fn: Callable[[], Any], repeat: int) -> float:
    """Median seconds of ``repeat`` calls after one warm-up."""
    fn()
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def prepare(data: Path, runs: int, live: int) -> tuple[Any, str, Path]:
    """Start the benchmark's server and build the dataset unless ``data`` already holds it."""
    marker = data / "dataset.json"
    wanted = {"runs": runs, "live": live, "days": DAYS, "version": 1}
    fresh = not marker.exists() or json.loads(marker.read_text()) != wanted
    if fresh and data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True, exist_ok=True)
    server = embedded.start(data / "pgdata")
    dsn = embedded.dsn(server, "bench")
    archive = data / "archive"
    if not fresh:
        return server, dsn, archive
    with psycopg.connect(embedded.dsn(server), autocommit=True) as conn:
        for setting, value in (("shared_buffers", "'2GB'"), ("work_mem", "'64MB'"), ("fsync", "off")):
            conn.execute(f"ALTER SYSTEM SET {setting} = {value}")
        conn.execute("CREATE DATABASE bench")
    embedded.restart(server)
    migrate.upgrade(dsn)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET memory_limit = '6GB'")
    con.execute(f"SET temp_directory = '{data / 'duckdb-tmp'}'")
    began = time.perf_counter()
    files = olap_data.write_archive(con, archive, runs, DAYS)
    files += olap_data.build_live(con, archive, live)
    olap_data.load_live(dsn, con, files, archive)
    print(f"dataset: {runs:,} archived + {live:,} live runs built in {time.perf_counter() - began:.0f} s", flush=True)
    marker.write_text(json.dumps(wanted))
    return server, dsn, archive


def serve(store: FlowRunStore) -> tuple[uvicorn.Server, threading.Thread, str]:
    """The dashboard on a free loopback port, in a thread of this process."""
    app = create_app(store, UiSettings(insights_ttl=3600), now=lambda: NOW)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000_000, help="archived runs")
    parser.add_argument("--live", type=int, default=None, help="live runs (default runs/100, at least 1,000)")
    parser.add_argument("--data", type=Path, default=None, help="where the server and archive live")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    live = args.live if args.live is not None else max(1_000, args.runs // 100)
    server_handle, dsn, archive = prepare(args.data or Path(f"/work/bench-data/ui-{args.runs}"), args.runs, live)
    del server_handle  # stopped at exit
    store = FlowRunStore.open(dsn=dsn, archive=archive, clock=lambda: NOW, migrate=False)
    server, thread, url = serve(store)
    http = httpx.Client(base_url=url, timeout=600)
    rows: list[tuple[str, float, float]] = []
    try:
        began = time.perf_counter()
        http.get("/api/flows").raise_for_status()  # fills the cache: flows and top errors
        cold = time.perf_counter() - began
        t_flows = median_seconds(lambda: insights.flows(store), 1)
        t_errors = median_seconds(lambda: insights.top_errors(store), 1)
        print(f"flows + top errors uncached: {cold:.2f} s over HTTP ({t_flows:.2f} + {t_errors:.2f} s direct)")
        store.analytics.warm_search()

        def api(path: str, **params: Any) -> Callable[[], Any]:
            return lambda: http.get(path, params=params).raise_for_status()

        day_until = (NOW + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        hour_until = (NOW + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
        # The direct counterpart of a cached answer is the cache's own lookup.
        app_insights = server.config.app.state.ui.insights  # type: ignore[union-attr]
        overview = [
            ("statistics", api("/api/statistics"), store.get_statistics),
            (
                "timeseries 30 d daily",
                api("/api/timeseries", granularity="day", window="30d"),
                lambda: store.get_run_timeseries(Granularity.DAY, day_until - timedelta(days=30), day_until),
            ),
            (
                "timeseries 24 h hourly",
                api("/api/timeseries", granularity="hour", window="24h"),
                lambda: store.get_run_timeseries(Granularity.HOUR, hour_until - timedelta(hours=24), hour_until),
            ),
            ("flows (cached)", api("/api/flows"), app_insights.get),
            ("top errors (cached)", api("/api/errors"), app_insights.get),
        ]
        flow = store.get_runs(take=1)[0].flow_id
        newest = store.get_runs(take=1)[0].id
        pages = [
            ("runs page 1", api("/api/runs"), lambda: store.get_runs_page(take=50)),
            ("runs, status Failed", api("/api/runs", status="failed"), lambda: store.get_runs_page(status="Failed")),
            ("runs, one flow", api("/api/runs", flow_id=str(flow)), lambda: store.get_runs_page(flow_id=flow)),
            ("runs, search", api("/api/runs", search=SEARCH), lambda: store.get_runs_page(search=SEARCH)),
            ("one run's detail", api(f"/api/runs/{newest}"), lambda: store.get_run_detail(newest)),
        ]
        for name, over_http, direct in overview + pages:
            rows.append((name, median_seconds(over_http, args.repeat), median_seconds(direct, args.repeat)))
        overview_total = sum(r[1] for r in rows[: len(overview)])
        overview_direct = sum(r[2] for r in rows[: len(overview)])
    finally:
        http.close()
        server.should_exit = True
        thread.join(timeout=10)
        store.close()
    print(f"\n{args.runs:,} archived + {live:,} live runs, median of {args.repeat} warm requests\n")
    print("| request | API s | direct Python s | API / direct |")
    print("|---|---:|---:|---:|")
    for name, t_api, t_direct in rows:
        ratio = f"{t_api / t_direct:.2f}x" if t_direct >= 0.001 else "—"
        print(f"| {name} | {t_api:.3f} | {t_direct:.3f} | {ratio} |")
    print(
        f"| **overview, all five requests** | {overview_total:.3f} | {overview_direct:.3f} |"
        f" {overview_total / overview_direct:.2f}x |"
    )


if __name__ == "__main__":
    main()
