"""The REST API against the store's own answers, on the seeded store (live and archived runs)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from flowrun import FlowRunRecord, FlowRunStore, Granularity, RunStatus, insights, jsonable
from tests.flowrun.conftest import Seeded
from tests.web.conftest import Served, served

# The seeded dashboard is built once, on the worker that runs the tests reading it.
pytestmark = pytest.mark.xdist_group("web-ui")


def _runs_json(store: FlowRunStore, runs: list[FlowRunRecord]) -> list[dict[str, object]]:
    out = []
    for run in runs:
        item = jsonable.jsonable(run)
        item.pop("steps")
        out.append(item)
    return out


def _without_archived(items: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{k: v for k, v in item.items() if k != "archived"} for item in items]


def test_statistics_and_timeseries_are_the_stores(ui: Served) -> None:
    assert ui.http.get("/api/statistics").json() == jsonable.jsonable(ui.store.get_statistics())
    since, until = "2026-11-01T00:00:00+00:00", "2026-12-31T00:00:00+00:00"
    for grain in ("day", "hour"):
        got = ui.http.get("/api/timeseries", params={"granularity": grain, "since": since, "until": until}).json()
        start, end = datetime.fromisoformat(since), datetime.fromisoformat(until)
        assert got["buckets"] == jsonable.jsonable(ui.store.get_run_timeseries(grain, start, end))
        assert got["granularity"] == grain
    # Default window: the 30 days up to the end of today (UTC), or 24 hours for hourly buckets.
    days = ui.http.get("/api/timeseries").json()
    assert len(days["buckets"]) == 30
    assert datetime.fromisoformat(days["until"]) > datetime.now(UTC)
    hours = ui.http.get("/api/timeseries", params={"granularity": "hour", "window": "6h"}).json()
    assert len(hours["buckets"]) == 6
    flow = ui.store.get_runs(take=1)[0].flow_id
    one_flow = ui.http.get("/api/timeseries", params={"window": "40d", "flow_id": str(flow)}).json()
    expected = ui.store.get_run_timeseries(
        Granularity.DAY, datetime.fromisoformat(one_flow["since"]), datetime.fromisoformat(one_flow["until"]), flow
    )
    assert one_flow["buckets"] == jsonable.jsonable(expected)


def test_runs_pages_filters_search_and_where_each_run_lives(ui: Served, ui_seeded: Seeded) -> None:
    store = ui.store
    everything = ui.http.get("/api/runs", params={"take": 1000}).json()
    page = store.get_runs_page(take=1000)
    assert everything["total_count"] == page.total_count == ui_seeded.summary.played.runs
    assert _without_archived(everything["runs"]) == _runs_json(store, page.runs)
    with psycopg.connect(ui_seeded.dsn) as conn:
        live = {row[0] for row in conn.execute("SELECT id FROM flowrun.flow_runs")}
    marks = {uuid.UUID(r["id"]): r["archived"] for r in everything["runs"]}
    assert marks == {rid: rid not in live for rid in marks}
    assert any(marks.values()) and not all(marks.values())  # the seed pruned its older half
    flow = page.runs[0].flow_id
    cases = [
        ({"status": "failed", "skip": "1", "take": "3"}, {"status": RunStatus.FAILED, "skip": 1, "take": 3}),
        ({"flow_id": str(flow), "search": "ok", "take": "10"}, {"flow_id": flow, "search": "ok", "take": 10}),
        ({"search": "   "}, {}),
        ({"search": "%"}, {"search": "%"}),
    ]
    for query, call in cases:
        got = ui.http.get("/api/runs", params=query).json()
        expected = store.get_runs_page(**call)  # type: ignore[arg-type]
        assert got["total_count"] == expected.total_count, query
        assert _without_archived(got["runs"]) == _runs_json(store, expected.runs), query


def test_run_detail_lineage_and_flows(ui: Served) -> None:
    store = ui.store
    derived = store.sql("select source_run_id from runs where source_run_id is not null limit 1")
    source = uuid.UUID(str(derived.item(0, 0)))
    detail = ui.http.get(f"/api/runs/{source}").json()
    expected = jsonable.jsonable(store.get_run_detail(source))
    assert detail["id"] == expected["id"] and detail["status"] == expected["status"]
    assert [s["step_key"] for s in detail["steps"]] == [s["step_key"] for s in expected["steps"]]
    for got, want in zip(detail["steps"], expected["steps"], strict=True):
        assert got["truncated"] == [] and got["attempts"][0]["truncated"] == []
        assert {k: v for k, v in got.items() if k not in ("truncated", "attempts")} == {
            k: v for k, v in want.items() if k != "attempts"
        }
    assert detail["dispatched_step_keys"] == sorted(store.get_dispatched_step_keys(source))
    reruns = ui.http.get(f"/api/runs/{source}/derived").json()
    assert _without_archived(reruns["runs"]) == _runs_json(store, store.get_derived_runs(source))
    assert reruns["runs"], "the seeded source run has re-runs"
    flows = ui.http.get("/api/flows").json()
    assert flows["flows"] == jsonable.jsonable(insights.flows(store))
    assert flows["slowest"] == jsonable.jsonable(insights.slowest_flows(insights.flows(store), 8))
    assert sum(f["runs"] for f in flows["flows"]) == store.get_runs_page(take=1).total_count
    errors = ui.http.get("/api/errors").json()["errors"]
    assert errors == jsonable.jsonable(insights.top_errors(store)) and errors


def test_an_archived_run_is_served_from_the_archive(ui: Served) -> None:
    oldest = ui.http.get("/api/runs", params={"take": 1000}).json()["runs"][-1]
    assert oldest["archived"] is True
    detail = ui.http.get(f"/api/runs/{oldest['id']}").json()
    assert detail["archived"] is True and detail["steps"]
    assert detail["dispatched_step_keys"] == []


# (path, status, error type): the CLI's table of mistakes and then some, over HTTP.
HOSTILE = [
    ("/api/runs?status=Exploded", 400, "InvalidStatus"),
    ("/api/runs?flow_id=not-a-uuid", 400, "InvalidArgument"),
    ("/api/runs?take=5000", 400, "InvalidPaging"),
    ("/api/runs?take=0", 400, "InvalidPaging"),
    ("/api/runs?skip=-1", 400, "InvalidPaging"),
    ("/api/runs?take=abc", 400, "InvalidArgument"),
    ("/api/runs?take=1e3", 400, "InvalidArgument"),
    ("/api/runs?skip=99999999999999999999999999", 400, "InvalidArgument"),
    ("/api/runs?skip=%EF%BC%91", 400, "InvalidArgument"),  # a full-width digit
    ("/api/runs?search=a%00b", 400, "InvalidArgument"),
    ("/api/runs?search=" + "x" * 1001, 400, "InvalidArgument"),
    ("/api/runs?status=Running%00", 400, "InvalidStatus"),
    ("/api/runs/12345", 400, "InvalidArgument"),
    ("/api/runs/%27%3B%20drop%20table%20flow_runs%3B--", 400, "InvalidArgument"),
    ("/api/runs/00000000-0000-0000-0000-000000000000", 404, "RunNotFound"),
    ("/api/runs/00000000-0000-0000-0000-000000000000/value?field=output_json&step=s", 404, "RunNotFound"),
    ("/api/runs/12345/derived", 400, "InvalidArgument"),
    ("/api/timeseries?since=2026-03-01T00:00", 400, "InvalidArgument"),
    ("/api/timeseries?until=yesterday", 400, "InvalidArgument"),
    ("/api/timeseries?granularity=week", 400, "InvalidArgument"),
    ("/api/timeseries?since=2026-03-02T00:00Z&until=2026-03-01T00:00Z", 400, "InvalidTimeRange"),
    ("/api/timeseries?granularity=hour&since=2020-01-01T00:00Z&until=2026-01-01T00:00Z", 400, "InvalidTimeRange"),
    ("/api/timeseries?window=soon", 400, "InvalidArgument"),
    ("/api/timeseries?window=-5d", 400, "InvalidArgument"),
    ("/api/timeseries?window=0s", 400, "InvalidArgument"),
    ("/api/timeseries?window=99999999999w", 400, "InvalidArgument"),
    ("/api/timeseries?window=1e400", 400, "InvalidArgument"),
    ("/api/timeseries?since=0001-01-01T00:00Z", 400, "InvalidTimeRange"),
    ("/api/timeseries?until=0001-01-01T00:00Z&window=1d", 400, "InvalidArgument"),
    ("/api/timeseries?flow_id=%00", 400, "InvalidArgument"),
    ("/api/sql?query=select%201", 404, "NotFound"),
    ("/api/nothing-here", 404, "NotFound"),
    ("/runs/not-a-uuid", 400, "InvalidArgument"),
]


def test_hostile_parameters_are_4xx_json_never_a_server_error(ui: Served) -> None:
    for path, status, kind in HOSTILE:
        answer = ui.http.get(path)
        assert answer.status_code == status, (path, answer.status_code, answer.text)
        body = answer.json()
        assert body["error"]["type"] == kind, (path, body)
        assert body["error"]["message"] and "\n" not in body["error"]["message"], path
    for method, path in (("POST", "/api/runs"), ("DELETE", "/api/runs/00000000-0000-0000-0000-000000000000")):
        answer = ui.http.request(method, path)
        assert answer.status_code == 405 and answer.json()["error"]["type"] == "MethodNotAllowed"
    # The same bad input through the Python API is a ValueError too: one validation for every door.
    try:
        ui.store.get_runs_page(take=5000)
    except ValueError as exc:
        assert "take" in str(exc)
    else:
        raise AssertionError("take=5000 was accepted")


def test_the_openapi_schema_documents_every_endpoint_and_nothing_runs_sql(ui: Served) -> None:
    schema = ui.http.get("/api/openapi.json").json()
    paths = set(schema["paths"])
    assert {
        "/api/statistics",
        "/api/timeseries",
        "/api/runs",
        "/api/runs/{run_id}",
        "/api/runs/{run_id}/derived",
        "/api/runs/{run_id}/value",
        "/api/flows",
        "/api/errors",
        "/api/events",
        "/api/runs/{run_id}/retry",
        "/api/runs/{run_id}/cancel",
    } <= paths
    assert not any("sql" in p for p in paths)
    runs_params = {p["name"] for p in schema["paths"]["/api/runs"]["get"]["parameters"]}
    assert runs_params == {"flow_id", "status", "search", "skip", "take"}
    assert ui.http.get("/docs").status_code == 404  # the CDN-loading docs page is off


def test_pages_and_static_files_carry_the_security_headers(ui: Served) -> None:
    for path in ("/", "/runs", f"/runs/{uuid.uuid4()}", "/static/js/main.js", "/api/statistics"):
        answer = ui.http.get(path)
        assert answer.status_code == 200, path
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
    page = ui.http.get("/").text
    assert "<script>" not in page and "http://" not in page and "https://" not in page  # no inline code, no CDN
    chart = ui.http.get("/static/vendor/chart.umd.min.js")
    assert chart.status_code == 200 and "Chart.js v4" in chart.text[:200]


def test_the_default_windows_follow_the_injected_clock(ui_seeded: Seeded) -> None:
    noon = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    with ui_seeded.open() as store, served(store, now=lambda: noon) as running:
        days = running.http.get("/api/timeseries").json()
        hours = running.http.get("/api/timeseries", params={"granularity": "hour"}).json()
    assert (days["since"], days["until"]) == ("2026-01-31T00:00:00+00:00", "2026-03-02T00:00:00+00:00")
    assert (hours["since"], hours["until"]) == ("2026-02-28T13:00:00+00:00", "2026-03-01T13:00:00+00:00")
    assert len(days["buckets"]) == 30 and len(hours["buckets"]) == 24


def test_answers_match_their_documented_schemas(ui: Served) -> None:
    from pydantic import TypeAdapter

    from flowrun.web import schemas

    run = ui.store.get_runs(take=1)[0].id
    derived = ui.store.sql("select source_run_id from runs where source_run_id is not null limit 1").item(0, 0)
    checks: list[tuple[str, Any]] = [
        ("/api/statistics", schemas.Statistics),
        ("/api/timeseries", schemas.Timeseries),
        ("/api/runs?take=1000", schemas.RunsPage),
        (f"/api/runs/{run}", schemas.RunDetail),
        (f"/api/runs/{derived}/derived", schemas.Derived),
        ("/api/flows", schemas.Flows),
        ("/api/errors", schemas.TopErrors),
        ("/api/health", schemas.Health),
        ("/api/runs?take=0", schemas.ErrorBody),
    ]
    for path, model in checks:
        TypeAdapter(model).validate_python(ui.http.get(path).json(), strict=False)
    documented = ui.http.get("/api/openapi.json").json()["paths"]["/api/runs"]["get"]["responses"]
    assert documented["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/RunsPage")
    assert documented["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
