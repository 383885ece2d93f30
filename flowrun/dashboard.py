"""The dashboard the demo prints: read back through the store's reporting methods, drawn in the terminal.

``collect`` asks the store the questions a run-history dashboard asks — the
overview counters, a daily and a last-24-hours timeseries with p50/p95/p99, the
slowest flows, the most frequent step errors, re-run lineage — using only the
public reporting surface (``get_statistics``, ``get_run_timeseries``,
``get_derived_runs``, ``sql``, and ``flowrun.insights``), so whatever it shows comes from live and
archived runs together. ``render`` draws it with rich: stacked bars per day and
unicode sparklines per hour (durations on a log scale, where outliers live).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from flowrun import insights, jsonable
from flowrun.demo import DemoSummary
from flowrun.store import FlowRunStore
from flowrun.tables import Column, duration_text, fit, one_line, short_ids, statistics_table, status_text, time_text
from oltp.records import DashboardStatistics, FlowRunRecord, Granularity, RunTimeseriesBucket

DAYS = 30
BAR_WIDTH = 36
SPARKS = "▁▂▃▄▅▆▇█"

# DuckDB SQL over the store's unified views; durations in milliseconds, like the timeseries.
STATUS_TOTALS = "select status, count(*) as runs from runs group by status order by runs desc, status"
MOST_RERUN = """
select source_run_id, count(*) as reruns from runs
 where source_run_id is not null
 group by source_run_id order by reruns desc, source_run_id limit 1
"""
RERUN_TOTALS = (
    "select count(*) as reruns, count(distinct source_run_id) as sources from runs where source_run_id is not null"
)


@dataclass(frozen=True)
class Lineage:
    """One run and the re-runs derived from it."""

    source: FlowRunRecord | None
    derived: list[FlowRunRecord]
    reruns: int
    sources: int


@dataclass(frozen=True)
class Dashboard:
    """Everything the dashboard shows, as the store answered it."""

    at: datetime
    statistics: DashboardStatistics
    status_totals: list[dict[str, Any]]
    daily: list[RunTimeseriesBucket]
    hourly: list[RunTimeseriesBucket]
    slowest_flows: list[dict[str, Any]]
    top_errors: list[dict[str, Any]]
    lineage: Lineage

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, for ``flowrun demo --json``."""
        result = jsonable.jsonable(self)
        assert isinstance(result, dict)
        return result


def collect(store: FlowRunStore, now: datetime | None = None) -> Dashboard:
    """Ask the store every question the dashboard shows."""
    at = now or datetime.now(UTC)
    today = at.replace(hour=0, minute=0, second=0, microsecond=0)
    this_hour = at.replace(minute=0, second=0, microsecond=0)
    daily = store.get_run_timeseries(Granularity.DAY, today - timedelta(days=DAYS - 1), today + timedelta(days=1))
    hourly = store.get_run_timeseries(Granularity.HOUR, this_hour - timedelta(hours=23), this_hour + timedelta(hours=1))
    totals = store.sql(RERUN_TOTALS).row(0, named=True)
    most = store.sql(MOST_RERUN)
    source = derived = None
    if most.height:
        source_id = most.item(0, "source_run_id")
        derived = store.get_derived_runs(source_id)
        source = store.get_run_detail(source_id)
    return Dashboard(
        at=at,
        statistics=store.get_statistics(),
        status_totals=store.sql(STATUS_TOTALS).to_dicts(),
        daily=daily,
        hourly=hourly,
        slowest_flows=insights.slowest_flows(insights.flows(store)),
        top_errors=insights.top_errors(store)[:8],
        lineage=Lineage(
            source=source, derived=derived or [], reruns=int(totals["reruns"]), sources=int(totals["sources"])
        ),
    )


# -- drawing -----------------------------------------------------------------------------


def render(board: Dashboard, summary: DemoSummary | None = None, width: int = 120) -> RenderableType:
    """The whole dashboard for a terminal ``width`` columns wide, with the demo's summary on top when given.

    Every table is drawn by ``tables.fit``, as the other reports are: one line per row, long text cut with an
    ellipsis to fit ``width``, never wrapped.
    """
    parts: list[RenderableType] = []
    if summary is not None:
        parts.append(_summary_panel(summary))
    overview = Table.grid(padding=(0, 4))
    overview.add_row(statistics_table(board.statistics), _status_totals(board.status_totals))
    # The daily table's other columns and their gaps take under 50 characters; the bars get the rest.
    bar_width = max(10, min(BAR_WIDTH, width - 50))
    parts += [overview, _daily_chart(board.daily, bar_width, width), _hourly_chart(board.hourly, width)]
    parts.append(_slowest_flows(board.slowest_flows, width))
    parts.append(_top_errors(board.top_errors, width))
    parts.append(_lineage(board.lineage, width))
    return Group(*parts)


def _summary_panel(summary: DemoSummary) -> Panel:
    p = summary.played
    rate = p.calls / p.seconds if p.seconds else 0.0
    e = summary.exported
    lines = [
        f"played [bold]{p.runs:,}[/bold] runs over the last {DAYS} days in {p.seconds:.1f}s"
        f" ({p.calls:,} store calls, {rate:,.0f}/s): {p.reruns:,} re-runs, {p.reopened:,} failed runs retried,"
        f" {p.step_retries:,} step retries, {p.polls:,} polls released and re-dispatched,"
        f" {p.refused_dispatches:,} duplicate dispatches refused",
        f"exported [bold]{e.runs:,}[/bold] completed runs ({e.steps:,} steps, {e.attempts:,} attempts)"
        f" in {e.files} Delta commit(s), {e.seconds:.1f}s",
        f"pruned [bold]{summary.pruned:,}[/bold] archived runs older than {summary.prune_older_than.days} days"
        " from PostgreSQL; everything below reads live and archived runs together",
        f"total {summary.seconds:.1f}s",
    ]
    return Panel("\n".join(lines), title="flowrun demo", title_align="left", border_style="blue")


def _status_totals(rows: list[dict[str, Any]]) -> Table:
    columns = [
        Column("status", [status_text(str(row["status"])) for row in rows]),
        Column("runs", [f"{row['runs']:,}" for row in rows], justify="right"),
    ]
    return fit(columns, None, title="Runs by status")


def _daily_chart(buckets: list[RunTimeseriesBucket], bar_width: int, width: int) -> Table:
    span = f"{buckets[0].timestamp:%Y-%m-%d} to {buckets[-1].timestamp:%Y-%m-%d}" if buckets else ""
    peak = max((b.total for b in buckets), default=0)
    columns = [
        Column("day", [b.timestamp.strftime("%a %d") for b in buckets]),
        Column("runs", [_stacked_bar(b, peak, bar_width) for b in buckets]),
        Column("total", [f"{b.total:,}" for b in buckets], justify="right"),
        Column("failed", [Text(str(b.failed), style="red" if b.failed else "dim") for b in buckets], justify="right"),
        Column("p50", [duration_text(b.p50_duration_ms) for b in buckets], justify="right"),
        Column("p95", [duration_text(b.p95_duration_ms) for b in buckets], justify="right"),
        Column("p99", [duration_text(b.p99_duration_ms) for b in buckets], justify="right"),
    ]
    caption = Text.from_markup(
        "[green]█[/green] succeeded  [red]█[/red] failed  [yellow]█[/yellow] timed out / cancelled / skipped"
        "  [cyan]█[/cyan] running"
    )
    return fit(columns, width, title=f"Runs per day, last {DAYS} days: {span} (UTC)", caption=caption)


def _stacked_bar(b: RunTimeseriesBucket, peak: int, width: int) -> Text:
    bar = Text()
    if not peak:
        return bar
    other = b.timed_out + b.cancelled + b.skipped
    segments = ((b.succeeded, "green"), (b.failed, "red"), (other, "yellow"), (b.running, "cyan"))
    # Cumulative rounding keeps the bar's length proportional to the total.
    drawn = 0
    cumulative = 0
    for count, style in segments:
        cumulative += count
        end = round(cumulative * width / peak)
        if count and end == drawn:
            end = drawn + 1  # every non-empty segment stays visible
        bar.append("█" * (end - drawn), style=style)
        drawn = max(drawn, end)
    return bar


def _hourly_chart(buckets: list[RunTimeseriesBucket], width: int) -> Table:
    start = buckets[0].timestamp.strftime("%m-%d %H:00") if buckets else ""
    totals = [float(b.total) for b in buckets]
    failed = [float(b.failed) for b in buckets]
    rows: list[tuple[str, Text, str, str]] = [
        (
            "runs",
            Text(sparkline(totals), style="bold"),
            f"{min(totals, default=0):.0f}",
            f"{max(totals, default=0):.0f}",
        ),
        (
            "failed",
            Text(sparkline(failed), style="red"),
            f"{min(failed, default=0):.0f}",
            f"{max(failed, default=0):.0f}",
        ),
    ]
    for name, values in (
        ("p50", [b.p50_duration_ms for b in buckets]),
        ("p95", [b.p95_duration_ms for b in buckets]),
        ("p99", [b.p99_duration_ms for b in buckets]),
    ):
        present = [v for v in values if v is not None]
        rows.append(
            (
                f"{name} duration",
                Text(sparkline(values, log=True), style="magenta"),
                duration_text(min(present)) if present else "-",
                duration_text(max(present)) if present else "-",
            )
        )
    columns = [
        Column("series", [row[0] for row in rows]),
        Column("per hour", [row[1] for row in rows]),
        Column("min", [row[2] for row in rows], justify="right"),
        Column("max", [row[3] for row in rows], justify="right"),
    ]
    return fit(columns, width, title=f"Last 24 hours, hourly from {start} UTC")


def sparkline(values: Sequence[float | None], *, log: bool = False) -> str:
    """One block character per value, scaled between the smallest and largest; None is a blank."""
    scaled = [None if v is None else (math.log10(max(v, 1.0)) if log else v) for v in values]
    present = [v for v in scaled if v is not None]
    if not present:
        return " " * len(values)
    low, high = min(present), max(present)
    if log is False:
        low = min(low, 0.0)
    span = high - low
    chars = []
    for v in scaled:
        if v is None:
            chars.append(" ")
        else:
            level = 0 if span == 0 else round((v - low) / span * (len(SPARKS) - 1))
            chars.append(SPARKS[level])
    return "".join(chars)


def _slowest_flows(rows: list[dict[str, Any]], width: int) -> Table:
    columns = [
        Column("flow", [str(row["flow"]) for row in rows], flex=True, min_width=8),
        Column("runs", [f"{row['runs']:,}" for row in rows], justify="right"),
        Column("failed", [f"{row['failed_pct']}%" for row in rows], justify="right"),
        Column("p50", [duration_text(row["p50_ms"]) for row in rows], justify="right"),
        Column("p95", [duration_text(row["p95_ms"]) for row in rows], justify="right"),
        Column("p99", [duration_text(row["p99_ms"]) for row in rows], justify="right"),
    ]
    return fit(columns, width, title="Slowest flows (completed runs, by p95)")


def _top_errors(rows: list[dict[str, Any]], width: int) -> Table:
    columns = [
        Column("flow", [str(row["flow"]) for row in rows], flex=True, min_width=8),
        Column("step", [str(row["step"]) for row in rows], flex=True, min_width=8),
        Column("error", [Text(one_line(str(row["error"])), style="red") for row in rows], flex=True, min_width=10),
        Column("failures", [str(row["failures"]) for row in rows], justify="right"),
        Column("runs", [str(row["runs"]) for row in rows], justify="right"),
    ]
    return fit(columns, width, title="Most frequent step errors (every attempt)")


def _lineage(lineage: Lineage, width: int) -> RenderableType:
    head = f"Re-runs: {lineage.reruns:,} runs re-run from {lineage.sources:,} earlier runs"
    if lineage.source is None:
        return Text(head, style="bold")
    runs = [lineage.source, *lineage.derived]
    ids = short_ids([run.id for run in runs])
    columns = [
        Column("run", [ids[run.id] if run is lineage.source else f"└─ {ids[run.id]}" for run in runs]),
        Column("flow", [run.flow_name for run in runs], flex=True, min_width=8),
        Column("status", [status_text(run.status) for run in runs]),
        Column("started (UTC)", [time_text(run.started_at) for run in runs]),
    ]
    return fit(columns, width, title=head, caption="the run re-run most often, and its re-runs")
