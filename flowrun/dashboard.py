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
from flowrun.tables import duration_text, statistics_table, status_text
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
    """The whole dashboard for a terminal ``width`` columns wide, with the demo's summary on top when given."""
    parts: list[RenderableType] = []
    if summary is not None:
        parts.append(_summary_panel(summary))
    overview = Table.grid(padding=(0, 4))
    overview.add_row(statistics_table(board.statistics), _status_totals(board.status_totals))
    # The daily table's other columns take about 60 characters; the bars get the rest.
    bar_width = max(10, min(BAR_WIDTH, width - 60))
    parts += [overview, _daily_chart(board.daily, bar_width), _hourly_chart(board.hourly)]
    parts.append(_slowest_flows(board.slowest_flows))
    parts.append(_top_errors(board.top_errors))
    parts.append(_lineage(board.lineage))
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
    table = Table(title="Runs by status", title_justify="left")
    table.add_column("status")
    table.add_column("runs", justify="right")
    for row in rows:
        table.add_row(status_text(str(row["status"])), f"{row['runs']:,}")
    return table


def _daily_chart(buckets: list[RunTimeseriesBucket], bar_width: int) -> Table:
    span = f"{buckets[0].timestamp:%Y-%m-%d} to {buckets[-1].timestamp:%Y-%m-%d}" if buckets else ""
    table = Table(
        title=f"Runs per day, last {DAYS} days: {span} (UTC)",
        title_justify="left",
        caption="[green]█[/green] succeeded  [red]█[/red] failed  [yellow]█[/yellow] timed out / cancelled / "
        "skipped  [cyan]█[/cyan] running",
        caption_justify="left",
    )
    table.add_column("day", no_wrap=True)
    table.add_column("runs", no_wrap=True, min_width=bar_width)
    for column in ("total", "failed", "p50", "p95", "p99"):
        table.add_column(column, justify="right", no_wrap=True)
    peak = max((b.total for b in buckets), default=0)
    for b in buckets:
        table.add_row(
            b.timestamp.strftime("%a %d"),
            _stacked_bar(b, peak, bar_width),
            f"{b.total:,}",
            Text(str(b.failed), style="red" if b.failed else "dim"),
            duration_text(b.p50_duration_ms),
            duration_text(b.p95_duration_ms),
            duration_text(b.p99_duration_ms),
        )
    return table


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


def _hourly_chart(buckets: list[RunTimeseriesBucket]) -> Table:
    start = buckets[0].timestamp.strftime("%m-%d %H:00") if buckets else ""
    table = Table(title=f"Last 24 hours, hourly from {start} UTC", title_justify="left")
    table.add_column("series", no_wrap=True)
    table.add_column("per hour", no_wrap=True)
    table.add_column("min", justify="right", no_wrap=True)
    table.add_column("max", justify="right", no_wrap=True)
    totals = [float(b.total) for b in buckets]
    table.add_row(
        "runs", Text(sparkline(totals), style="bold"), f"{min(totals, default=0):.0f}", f"{max(totals, default=0):.0f}"
    )
    failed = [float(b.failed) for b in buckets]
    table.add_row(
        "failed", Text(sparkline(failed), style="red"), f"{min(failed, default=0):.0f}", f"{max(failed, default=0):.0f}"
    )
    for name, values in (
        ("p50", [b.p50_duration_ms for b in buckets]),
        ("p95", [b.p95_duration_ms for b in buckets]),
        ("p99", [b.p99_duration_ms for b in buckets]),
    ):
        present = [v for v in values if v is not None]
        table.add_row(
            f"{name} duration",
            Text(sparkline(values, log=True), style="magenta"),
            duration_text(min(present)) if present else "-",
            duration_text(max(present)) if present else "-",
        )
    return table


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


def _slowest_flows(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Slowest flows (completed runs, by p95)", title_justify="left")
    for column in ("flow", "runs", "failed", "p50", "p95", "p99"):
        table.add_column(column, justify="left" if column == "flow" else "right")
    for row in rows:
        table.add_row(
            str(row["flow"]),
            f"{row['runs']:,}",
            f"{row['failed_pct']}%",
            duration_text(row["p50_ms"]),
            duration_text(row["p95_ms"]),
            duration_text(row["p99_ms"]),
        )
    return table


def _top_errors(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Most frequent step errors (every attempt)", title_justify="left")
    for column in ("flow", "step", "error", "failures", "runs"):
        table.add_column(column, justify="right" if column in ("failures", "runs") else "left", overflow="fold")
    for row in rows:
        table.add_row(
            str(row["flow"]),
            str(row["step"]),
            Text(str(row["error"]), style="red"),
            str(row["failures"]),
            str(row["runs"]),
        )
    return table


def _lineage(lineage: Lineage) -> RenderableType:
    head = Text(f"Re-runs: {lineage.reruns:,} runs re-run from {lineage.sources:,} earlier runs", style="bold")
    if lineage.source is None:
        return head
    src = lineage.source
    lines = [
        head,
        Text.assemble(
            "  ",
            (str(src.id), "bold"),
            f"  {src.flow_name}  ",
            status_text(src.status),
            f"  {src.started_at:%Y-%m-%d %H:%M}",
        ),
    ]
    for run in lineage.derived:
        lines.append(
            Text.assemble(
                "    └─ re-run ", (str(run.id), ""), "  ", status_text(run.status), f"  {run.started_at:%Y-%m-%d %H:%M}"
            )
        )
    return Group(*lines)
