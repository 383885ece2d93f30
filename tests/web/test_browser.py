"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright.

One browser for the session, one page per test. Each test checks what a person
would (the chart's buckets, a search narrowing the list, a click opening a run,
a run completed elsewhere appearing by itself) against the store's own answers,
and leaves a screenshot in ``tests/artifacts/ui/`` to look at.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from flowrun import FlowRunStore, StepStatus, insights
from tests.web.conftest import Served, wait_feed_live

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "ui"

pytestmark = [
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed"),
    # One browser and one seeded dashboard, on the worker that runs the tests reading it.
    pytest.mark.xdist_group("web-ui"),
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page; any console error (a CSP violation, a script error, a failed fetch) fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    opened.on("console", console)
    opened.on("pageerror", lambda error: problems.append(str(error)))
    yield opened
    context.close()
    assert problems == []


def _loaded(page: Page) -> None:
    # (wait_for_function would evaluate a string in the page, which the dashboard's CSP rightly forbids)
    page.wait_for_selector("#app[data-loaded]")


def test_the_overview_charts_the_stores_buckets(ui: Served, page: Page) -> None:
    page.goto(f"{ui.url}/?granularity=day&window=7d")
    _loaded(page)
    expect(page.locator("#timeseries")).to_have_attribute("data-buckets", "7")
    answer = ui.http.get("/api/timeseries", params={"granularity": "day", "window": "7d"}).json()
    since, until = datetime.fromisoformat(answer["since"]), datetime.fromisoformat(answer["until"])
    truth = ui.store.get_run_timeseries("day", since, until)
    drawn = page.evaluate(
        "() => { const c = Chart.getChart('timeseries');"
        " return c.data.labels.map((_, i) => c.data.datasets.slice(0, 6).reduce((n, d) => n + d.data[i], 0)); }"
    )
    assert drawn == [b.total for b in truth] and sum(drawn) > 0
    statistics = ui.store.get_statistics()
    expect(page.locator("#stat-flows .value")).to_have_text(str(statistics.total_flows))
    expect(page.locator("#slowest tbody tr")).to_have_count(min(8, statistics.total_flows))
    expect(page.locator("#errors tbody tr").first).to_be_visible()
    page.screenshot(path=SHOTS / "overview-day.png", full_page=True)
    page.click("[data-control=granularity] button[data-value=hour]")
    expect(page.locator("#timeseries")).to_have_attribute("data-buckets", "24")
    assert "granularity=hour" in page.url and "window=24h" in page.url
    page.go_back()
    expect(page.locator("#timeseries")).to_have_attribute("data-buckets", "7")
    page.screenshot(path=SHOTS / "overview-back.png")


def test_typing_a_search_narrows_the_list_to_the_stores_runs(ui: Served, page: Page) -> None:
    page.goto(f"{ui.url}/runs")
    _loaded(page)
    total = ui.store.get_runs_page(take=1).total_count
    expect(page.locator("#summary")).to_have_attribute("data-total", str(total))
    expect(page.locator("tr[data-run-id]")).to_have_count(50)
    # A step error of the demo's, as a person would paste it: it matches a few runs, not all.
    term = min((row["error"] for row in insights.top_errors(ui.store)), key=len)
    expected = ui.store.get_runs_page(search=term, take=50)
    assert 0 < expected.total_count < total
    page.fill("#search", term)
    expect(page.locator("#summary")).to_have_attribute("data-total", str(expected.total_count))
    ids = page.locator("tr[data-run-id]").evaluate_all("rows => rows.map(r => r.dataset.runId)")
    assert ids == [str(run.id) for run in expected.runs]
    assert "search=" in page.url and page.evaluate("() => new URL(location.href).searchParams.get('search')") == term
    page.screenshot(path=SHOTS / "runs-search.png", full_page=True)
    page.select_option("#status", "Failed")
    failed = ui.store.get_runs_page(search=term, status="Failed", take=50)
    expect(page.locator("#summary")).to_have_attribute("data-total", str(failed.total_count))
    page.go_back()
    expect(page.locator("#summary")).to_have_attribute("data-total", str(expected.total_count))


def test_clicking_a_run_opens_it_with_its_steps(ui: Served, page: Page) -> None:
    page.goto(f"{ui.url}/runs?status=Failed")
    _loaded(page)
    first = page.locator("tr[data-run-id]").first
    run_id = uuid.UUID(first.get_attribute("data-run-id") or "")
    first.click()
    page.wait_for_url(f"**/runs/{run_id}")
    _loaded(page)
    run = ui.store.get_run_detail(run_id)
    assert run is not None and run.steps
    keys = [s.step_key for s in run.steps]
    assert page.locator("#steps details.step").evaluate_all("d => d.map(x => x.dataset.stepKey)") == keys
    assert page.locator("#gantt .row").evaluate_all("d => d.map(x => x.dataset.stepKey)") == keys
    bars = sum(len(s.attempts or []) for s in run.steps)
    expect(page.locator("#gantt .bar")).to_have_count(bars)
    expect(page.locator("#run-status .badge")).to_have_text("Failed")
    failed = next(s for s in run.steps if s.status == StepStatus.FAILED)
    failed_box = page.locator(f"details.step[data-step-key='{failed.step_key}']")
    expect(failed_box).to_have_attribute("open", "")  # failed steps open by themselves
    expect(failed_box.locator(".error").first).to_have_text(failed.attempts[-1].error_message or "")
    page.screenshot(path=SHOTS / "run-detail.png", full_page=True)


def test_a_run_completed_elsewhere_appears_within_two_seconds(fresh: Served, page: Page) -> None:
    store: FlowRunStore = fresh.store
    wait_feed_live(fresh.http)
    page.goto(f"{fresh.url}/runs")
    _loaded(page)
    expect(page.locator("#live")).to_have_attribute("data-state", "on")
    expect(page.locator("tr[data-run-id]")).to_have_count(0)
    rid = uuid.uuid4()
    store.start_run(uuid.uuid4(), "live-flow", rid, "webhook")
    store.record_step_start(rid, "only", "task")
    store.record_step_complete(rid, "only", StepStatus.SUCCEEDED, output_json='{"ok": true}')
    started = time.monotonic()
    store.complete_run(rid, "Succeeded")
    row = page.locator(f"tr[data-run-id='{rid}']")
    expect(row).to_have_attribute("data-status", "Succeeded", timeout=2000)
    assert time.monotonic() - started < 2.0
    page.screenshot(path=SHOTS / "runs-live.png", full_page=True)


def test_a_page_falls_back_to_refreshing_when_the_feed_drops_and_goes_live_again(
    fresh: Served, page: Page, db: psycopg.Connection[Any]
) -> None:
    wait_feed_live(fresh.http)
    page.goto(f"{fresh.url}/runs")
    _loaded(page)
    badge = page.locator("#live")
    expect(badge).to_have_attribute("data-state", "on")
    # Cut the server's LISTEN connection, as a database restart or a network blip would.
    killed = db.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND query LIKE 'LISTEN%%' AND pid <> pg_backend_pid()"
    ).fetchone()
    assert killed == (1,)
    expect(badge).not_to_have_attribute("data-drops", "0")  # the page was told, and fell back to refreshing
    expect(badge).to_have_attribute("data-state", "on", timeout=15_000)  # the feed reconnected by itself
    rid = uuid.uuid4()
    fresh.store.start_run(uuid.uuid4(), "after-the-blip", rid, "manual")
    expect(page.locator(f"tr[data-run-id='{rid}']")).to_have_attribute("data-status", "Running", timeout=2000)
