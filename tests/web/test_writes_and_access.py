"""The API over a store the test writes to: cut fields, size limits, auth, actions, the event stream."""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flowrun import FlowRunStore, StepStatus
from flowrun.web import UiSettings
from flowrun.web.settings import check_exposure
from oltp.errors import InvalidArgument
from tests.fixtures.s3_server import closed_endpoint
from tests.flowrun.conftest import FLOWRUN, clean_env
from tests.web.conftest import served, wait_feed_live

FLOW = uuid.UUID("5a1d0c3e-0000-4000-8000-00000000f10e")
TOKEN = "s3cret-token-for-tests"


def _run_with_steps(store: FlowRunStore, output: str | None = None) -> uuid.UUID:
    rid = uuid.uuid4()
    store.start_run(FLOW, "uploads", rid, "manual", trigger_data='{"who": "test"}')
    store.record_step_start(rid, "fetch", "http", input_json='{"url": "https://example.invalid"}')
    store.record_step_complete(rid, "fetch", StepStatus.SUCCEEDED, output_json=output)
    store.record_step_start(rid, "store", "sql")
    store.record_step_complete(rid, "store", StepStatus.FAILED, error_message="disk full")
    store.complete_run(rid, "Failed")
    return rid


def test_large_fields_are_cut_and_served_whole(dsn: str, tmp_path: Path) -> None:
    big = json.dumps({"rows": ["x" * 100 for _ in range(1000)]})  # about 100 KB
    settings = UiSettings(max_field_chars=1000, max_response_bytes=300_000)
    with FlowRunStore.open(dsn=dsn, archive=tmp_path / "a", migrate=False) as store, served(store, settings) as ui:
        rid = _run_with_steps(store, output=big)
        detail = ui.http.get(f"/api/runs/{rid}").json()
        fetch = next(s for s in detail["steps"] if s["step_key"] == "fetch")
        assert fetch["truncated"] == ["output_json"] and len(fetch["output_json"]) == 1000
        assert fetch["attempts"][0]["truncated"] == ["output_json"]
        assert big.startswith(fetch["output_json"])
        whole = ui.http.get(f"/api/runs/{rid}/value", params={"field": "output_json", "step": "fetch", "attempt": "1"})
        assert whole.json()["value"] == big
        current = ui.http.get(f"/api/runs/{rid}/value", params={"field": "output_json", "step": "fetch"})
        assert current.json()["value"] == big
        trigger = ui.http.get(f"/api/runs/{rid}/value", params={"field": "trigger_data_json"}).json()
        assert trigger["value"] == '{"who": "test"}'
        for params in (
            {"field": "output_json", "step": "nope"},
            {"field": "output_json", "step": "fetch", "attempt": "7"},
            {"field": "flow_name", "step": "fetch"},
        ):
            missing = ui.http.get(f"/api/runs/{rid}/value", params=params)
            assert missing.status_code == 404 and missing.json()["error"]["type"] == "NotFound", params
        # A page of runs holding bigger trigger data than the limit is refused, not sent.
        for _ in range(3):
            store.start_run(FLOW, "uploads", uuid.uuid4(), "manual", trigger_data=big)
        refused = ui.http.get("/api/runs", params={"take": 10})
        assert refused.status_code == 413 and refused.json()["error"]["type"] == "ResponseTooLarge"
        assert ui.http.get("/api/runs", params={"take": 1}).status_code == 200


def test_a_token_guards_everything_and_bad_credentials_get_401(dsn: str, tmp_path: Path) -> None:
    with (
        FlowRunStore.open(dsn=dsn, archive=tmp_path / "a", migrate=False) as store,
        served(store, UiSettings(token=TOKEN)) as ui,
    ):
        basic = base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
        wrong = base64.b64encode(b"anyone:guess").decode()
        for path in ("/", "/api/statistics", "/static/js/main.js", "/api/openapi.json", "/api/events"):
            denied = ui.http.get(path)
            assert denied.status_code == 401, path
            assert denied.headers["www-authenticate"].startswith("Basic")
            assert denied.json()["error"]["type"] == "Unauthorized"
        for header in (f"Bearer {TOKEN}x", f"Basic {wrong}", "Basic !!!", f"Token {TOKEN}", "Bearer"):
            assert ui.http.get("/api/statistics", headers={"authorization": header}).status_code == 401, header
        for header in (f"Bearer {TOKEN}", f"Basic {basic}"):
            assert ui.http.get("/api/statistics", headers={"authorization": header}).status_code == 200, header


def test_no_token_no_network_address() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_exposure(host, UiSettings())
    for host in ("0.0.0.0", "::", "192.0.2.10", "example.invalid"):
        with pytest.raises(InvalidArgument, match="FLOWRUN_UI_TOKEN"):
            check_exposure(host, UiSettings())
        check_exposure(host, UiSettings(token=TOKEN))
    with pytest.raises(InvalidArgument, match="at least 16"):
        UiSettings(token="short")
    with pytest.raises(InvalidArgument, match="authentication"):
        UiSettings(actions=True)
    assert UiSettings.from_env({"FLOWRUN_UI_TOKEN": TOKEN, "FLOWRUN_UI_ACTIONS": "yes"}).actions
    # The command refuses before opening anything: one line, exit 2.
    done = subprocess.run(
        [str(FLOWRUN), "--dsn", "postgresql://nobody@127.0.0.1:1/x", "ui", "--host", "0.0.0.0"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: refusing to serve on 0.0.0.0"), done.stderr


def test_actions_need_enabling_a_token_and_the_action_header(dsn: str, tmp_path: Path) -> None:
    auth = {"authorization": f"Bearer {TOKEN}"}
    with FlowRunStore.open(dsn=dsn, archive=tmp_path / "a", migrate=False) as store:
        rid = _run_with_steps(store)
        with served(store) as read_only:
            refused = read_only.http.post(
                f"/api/runs/{rid}/retry", json={"step_key": "store"}, headers={"x-flowrun-action": "1"}
            )
            assert refused.status_code == 403 and "disabled" in refused.json()["error"]["message"]
        with served(store, UiSettings(token=TOKEN, actions=True)) as ui:
            no_header = ui.http.post(f"/api/runs/{rid}/retry", json={"step_key": "store"}, headers=auth)
            assert no_header.status_code == 403
            headers = {**auth, "x-flowrun-action": "1"}
            unknown = ui.http.post(f"/api/runs/{rid}/retry", json={"step_key": "nope"}, headers=headers)
            assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "StepNotFound"
            bad = ui.http.post(f"/api/runs/{rid}/retry", json={"step": 1}, headers=headers)
            assert bad.status_code == 400 and bad.json()["error"]["type"] == "InvalidArgument"
            assert store.get_run_detail(rid).status == "Failed"  # type: ignore[union-attr]
            done = ui.http.post(f"/api/runs/{rid}/retry", json={"step_key": "store"}, headers=headers)
            assert done.status_code == 200 and done.json()["retried"] is True
            after = store.get_run_detail(rid)
            assert after is not None and after.status == "Running"
            assert {s.step_key: s.status for s in after.steps or []}["store"] == "Pending"
            detail = ui.http.get(f"/api/runs/{rid}", headers=auth).json()
            assert detail["actions"] is True and detail["cancel_requested"] is False
            # Cancelling: the first request records it, a repeat does not; an unknown run is a 404.
            assert ui.http.post(f"/api/runs/{rid}/cancel", headers=auth).status_code == 403  # no action header
            first = ui.http.post(f"/api/runs/{rid}/cancel", headers=headers).json()
            again = ui.http.post(f"/api/runs/{rid}/cancel", headers=headers).json()
            assert (first["requested"], again["requested"]) == (True, False)
            assert store.is_cancel_requested(rid)
            assert ui.http.get(f"/api/runs/{rid}", headers=auth).json()["cancel_requested"] is True
            missing = ui.http.post(f"/api/runs/{uuid.uuid4()}/cancel", headers=headers)
            assert missing.status_code == 404 and missing.json()["error"]["type"] == "RunNotFound"


def _events(lines: Iterator[str], until: float) -> list[tuple[str, str]]:
    """(event, data) pairs and comment lines (``(":", text)``) read until ``until`` (monotonic)."""
    found: list[tuple[str, str]] = []
    event = "message"
    for line in lines:
        if line.startswith(":"):
            found.append((":", line[1:].strip()))
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            found.append((event, line[5:].strip()))
            event = "message"
        if time.monotonic() > until or (found and found[-1][0] == "changes"):
            break
    return found


def test_the_event_stream_says_hello_beats_and_pushes_changes_within_two_seconds(dsn: str, tmp_path: Path) -> None:
    settings = UiSettings(heartbeat=0.2)
    with FlowRunStore.open(dsn=dsn, archive=tmp_path / "a", migrate=False) as store, served(store, settings) as ui:
        wait_feed_live(ui.http)
        with ui.http.stream("GET", "/api/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            assert next(lines).startswith("retry:")
            assert next(lines) == "event: hello"
            assert json.loads(next(lines)[5:]) == {"live": True}
            beats = _events(lines, time.monotonic() + 0.5)
            assert (":", "heartbeat") in beats
            rid = uuid.uuid4()
            started = time.monotonic()
            store.start_run(FLOW, "uploads", rid, "manual")
            changes = _events(lines, started + 5)
            assert time.monotonic() - started < 2.0
        data = json.loads(changes[-1][1])
        assert {"kind": "run", "run_id": str(rid), "flow_id": str(FLOW), "status": "Running"} in data["events"]
        deadline = time.monotonic() + 10
        while ui.http.get("/api/health").json()["streams"]:  # a closed stream is unsubscribed
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_flows_and_errors_are_kept_then_refreshed_in_the_background(dsn: str, tmp_path: Path) -> None:
    settings = UiSettings(insights_ttl=3, warm_insights=False)
    with FlowRunStore.open(dsn=dsn, archive=tmp_path / "a", migrate=False) as store, served(store, settings) as ui:
        _run_with_steps(store)
        first = ui.http.get("/api/flows").json()
        assert [(f["flow"], f["runs"]) for f in first["flows"]] == [("uploads", 1)]
        assert [e["error"] for e in ui.http.get("/api/errors").json()["errors"]] == ["disk full"]
        _run_with_steps(store)
        kept = ui.http.get("/api/flows").json()
        assert kept == first  # within the ttl: the kept answer, not a new computation
        deadline = time.monotonic() + 20
        while (fresh := ui.http.get("/api/flows").json())["flows"][0]["runs"] != 2:
            assert time.monotonic() < deadline, "the kept answer was never refreshed"
            time.sleep(0.1)
        assert fresh["computed_at"] > first["computed_at"]
        assert ui.http.get("/api/errors").json()["errors"][0]["failures"] == 2


def test_flowrun_ui_serves_until_interrupted(dsn: str, tmp_path: Path) -> None:
    with socket.socket() as probe:  # a free port (released just before the server binds it)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [str(FLOWRUN), "--dsn", dsn, "--archive", str(tmp_path / "a"), "ui", "--port", str(port)],
        env=clean_env(FLOWRUN_HOME=str(tmp_path / "home")),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "flowrun ui did not answer"
                time.sleep(0.2)
        assert health.status_code == 200 and health.json()["actions"] is False
        assert "<title>Overview · flowrun</title>" in httpx.get(f"http://127.0.0.1:{port}/").text
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    # Stopped gracefully by the signal, and said so, as every command (exit 128 + SIGINT).
    assert proc.returncode == 130, stderr
    assert f"serving http://127.0.0.1:{port}/" in stderr and "stopped by SIGINT" in stderr
    assert "Traceback" not in stderr and "terminate called" not in stderr


def test_an_archive_awaiting_an_operator_is_a_503_json_naming_the_command(dsn: str, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    (archive / "steps").mkdir(parents=True)  # what a v1 archive that was never upgraded leaves beside its runs
    with FlowRunStore.open(dsn=dsn, archive=archive, migrate=False) as store, served(store) as ui:
        answer = ui.http.get("/api/statistics")
        assert answer.status_code == 503, answer.text
        error = answer.json()["error"]
        assert error["type"] == "ArchiveUpgradeRequired"
        assert "flowrun upgrade-archive" in error["message"]


def test_an_unreachable_archive_store_is_a_503_json_naming_the_archive(dsn: str) -> None:
    options = {"AWS_ENDPOINT_URL": closed_endpoint(), "AWS_ALLOW_HTTP": "true", "max_retries": "0"}
    archive = "s3://nobucket/archive"
    with (
        FlowRunStore.open(dsn=dsn, archive=archive, migrate=False, storage_options=options) as store,
        served(store) as ui,
    ):
        answer = ui.http.get("/api/statistics")
        assert answer.status_code == 503, answer.text
        error = answer.json()["error"]
        assert error["type"] == "ArchiveUnavailable"
        assert error["message"].startswith(f"the archive {archive} is unavailable: ")
