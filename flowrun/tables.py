"""Rich renderables for the CLI: run lists, run detail, statistics, timeseries, query results.

Pure presentation: each function takes what the store returned and gives back a
``rich`` table or group, so the commands stay one call to the store and one
call here, and the demo's dashboard reuses the same pieces.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from oltp.records import (
    DashboardStatistics,
    FlowRunRecord,
    FlowStepRecord,
    RunsPage,
    RunStatus,
    RunTimeseriesBucket,
    StepStatus,
)

STATUS_STYLE = {
    RunStatus.RUNNING.value: "cyan",
    RunStatus.SUCCEEDED.value: "green",
    RunStatus.FAILED.value: "red",
    RunStatus.CANCELLED.value: "magenta",
    RunStatus.TIMED_OUT.value: "yellow",
    RunStatus.SKIPPED.value: "dim",
    StepStatus.PENDING.value: "blue",
}


def status_text(status: str) -> Text:
    """A status word in its colour."""
    return Text(str(status), style=STATUS_STYLE.get(str(status), ""))


def duration_text(ms: float | None) -> str:
    """Milliseconds as a short human duration: ``850ms``, ``12.3s``, ``4m05s``, ``2h03m``."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def time_text(value: datetime | None) -> str:
    """A UTC instant to the second, without the offset noise."""
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def run_duration_ms(started: datetime | None, completed: datetime | None) -> float | None:
    """Elapsed milliseconds between two instants, or None while still open."""
    if started is None or completed is None:
        return None
    return (completed - started).total_seconds() * 1000


def runs_table(page: RunsPage, skip: int) -> Table:
    """A page of runs, newest first, with the page's place in the total as caption."""
    table = Table(title="Runs", caption=_page_caption(len(page.runs), skip, page.total_count))
    for column in ("run id", "flow", "status", "trigger", "started (UTC)", "duration", "re-run of"):
        table.add_column(column, no_wrap=column in ("run id", "started (UTC)"))
    for run in page.runs:
        table.add_row(
            str(run.id),
            run.flow_name,
            status_text(run.status),
            run.trigger_key,
            time_text(run.started_at),
            duration_text(run_duration_ms(run.started_at, run.completed_at)),
            str(run.source_run_id)[:8] if run.source_run_id else "",
        )
    return table


def _page_caption(count: int, skip: int, total: int) -> str:
    if count == 0:
        return f"no runs on this page ({total} match)"
    return f"runs {skip + 1}-{skip + count} of {total}"


def run_detail(run: FlowRunRecord) -> RenderableType:
    """One run: its fields, then every step with each of its attempts."""
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    rows: list[tuple[str, Any]] = [
        ("run", str(run.id)),
        ("flow", f"{run.flow_name} ({run.flow_id})"),
        ("status", status_text(run.status)),
        ("trigger", run.trigger_key),
        ("trigger data", run.trigger_data_json or "-"),
        ("job", run.background_job_id or "-"),
        ("started", time_text(run.started_at)),
        ("completed", time_text(run.completed_at)),
        ("duration", duration_text(run_duration_ms(run.started_at, run.completed_at))),
        ("re-run of", str(run.source_run_id) if run.source_run_id else "-"),
    ]
    for label, value in rows:
        head.add_row(label, value)
    return Group(head, _steps_table(run.steps or ()))


def _steps_table(steps: tuple[FlowStepRecord, ...]) -> Table:
    table = Table(title="Steps and attempts", title_justify="left")
    for column in ("step", "attempt", "type", "status", "started (UTC)", "duration", "job", "error / output"):
        table.add_column(column, overflow="fold")
    for step in steps:
        table.add_row(
            Text(step.step_key, style="bold"),
            f"{step.attempt_count} attempt(s)",
            step.step_type,
            status_text(step.status),
            time_text(step.started_at),
            duration_text(run_duration_ms(step.started_at, step.completed_at)),
            step.job_id or "",
            step.error_message or step.output_json or "",
        )
        for attempt in step.attempts:
            table.add_row(
                "",
                f"#{attempt.attempt}",
                attempt.step_type,
                status_text(attempt.status),
                time_text(attempt.started_at),
                duration_text(run_duration_ms(attempt.started_at, attempt.completed_at)),
                attempt.job_id or "",
                Text(attempt.error_message or attempt.output_json or "", style="dim"),
            )
    return table


def statistics_table(stats: DashboardStatistics) -> Table:
    """The dashboard's four counters."""
    table = Table(title="Statistics", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("flows", str(stats.total_flows))
    table.add_row("active runs", Text(str(stats.active_runs), style="cyan"))
    table.add_row("succeeded today (UTC)", Text(str(stats.completed_today), style="green"))
    table.add_row("failed today (UTC)", Text(str(stats.failed_today), style="red"))
    return table


def timeseries_table(buckets: list[RunTimeseriesBucket], title: str) -> Table:
    """Every bucket with its counts and p50/p95/p99 durations."""
    table = Table(title=title, title_justify="left")
    table.add_column("bucket (UTC)", no_wrap=True)
    for column in ("total", "ok", "failed", "cancelled", "timed out", "skipped", "running", "p50", "p95", "p99"):
        table.add_column(column, justify="right")
    for b in buckets:
        table.add_row(
            b.timestamp.strftime("%Y-%m-%d %H:%M"),
            str(b.total),
            str(b.succeeded),
            _count(b.failed, "red"),
            _count(b.cancelled, "magenta"),
            _count(b.timed_out, "yellow"),
            str(b.skipped),
            _count(b.running, "cyan"),
            duration_text(b.p50_duration_ms),
            duration_text(b.p95_duration_ms),
            duration_text(b.p99_duration_ms),
        )
    return table


def _count(value: int, style: str) -> Text:
    return Text(str(value), style=style if value else "dim")


def frame_table(frame: pl.DataFrame, title: str | None = None, max_rows: int = 200) -> Table:
    """A polars DataFrame as a table (the first ``max_rows`` rows)."""
    caption = f"{frame.height} row(s)" if frame.height <= max_rows else f"first {max_rows} of {frame.height} rows"
    table = Table(title=title, caption=caption, title_justify="left")
    for name, dtype in frame.schema.items():
        table.add_column(name, justify="right" if dtype.is_numeric() else "left", overflow="fold")
    for row in frame.head(max_rows).iter_rows():
        table.add_row(*(_cell(value) for value in row))
    return table


def _cell(value: object) -> str | Text:
    if value is None:
        return Text("null", style="dim")
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value)
