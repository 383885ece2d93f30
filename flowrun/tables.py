"""Rich renderables for the CLI: run lists, run detail, flows, statistics, timeseries, query results.

Every table fits the width it is given (``fit``): one line per row, fixed columns
(ids as short unique prefixes, status, times, durations) at full width, long
text shortened with an ellipsis, optional columns dropped last. Pure
presentation: each function takes what the store returned and gives back a
``rich`` table or group, so the commands stay one call to the store and one
call here, and the demo's dashboard reuses the same pieces.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.console import Group, JustifyMethod, RenderableType
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

if TYPE_CHECKING:
    import polars as pl

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


def time_text(value: datetime | None, *, seconds: bool = False) -> str:
    """A UTC instant to the minute (or second), without the offset noise."""
    if value is None:
        return "-"
    return value.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def run_duration_ms(started: datetime | None, completed: datetime | None) -> float | None:
    """Elapsed milliseconds between two instants, or None while still open."""
    if started is None or completed is None:
        return None
    return (completed - started).total_seconds() * 1000


# -- fitting a table to the terminal --------------------------------------------------------------

GAP = 2  # columns are separated by two spaces (no box: nothing to wrap or break)


@dataclass
class Column:
    """A column and its cells; ``flex`` columns shrink to ``min_width`` (ellipsis), ``optional`` ones go first."""

    header: str
    cells: Sequence[str | Text] = field(default_factory=list)
    justify: JustifyMethod = "left"
    flex: bool = False
    min_width: int = 4
    optional: bool = False

    @property
    def natural(self) -> int:
        return max([cell_len(self.header), *(cell_len(str(c)) for c in self.cells)])


def fit(
    columns: list[Column], width: int | None, *, title: str | None = None, caption: str | Text | None = None
) -> Table:
    """A table of ``columns`` no wider than ``width`` (None: as wide as it needs), one line per row.

    Required columns come first: at full width when they fit, else their flexible ones shrink (longest first,
    ending in an ellipsis). Optional columns (empty ones never) are added in order while they still fit, and
    take what room is left.
    """
    required = [c for c in columns if not c.optional]
    optional = [c for c in columns if c.optional and any(str(cell).strip() for cell in c.cells)]
    shown, widths = list(required), _widths(required, width)
    for column in optional:
        trial = [c for c in columns if c in shown or c is column]
        trial_widths = _widths(trial, width, keep_full=required)
        if trial_widths is not None:
            shown, widths = trial, trial_widths
    if widths is None:  # not even the required columns at their minimum: let rich cut them evenly
        widths = [min(c.natural, c.min_width) if c.flex else c.natural for c in shown]
    hidden = [c.header for c in columns if c not in shown and c in optional]
    if hidden:
        note = f"not shown: {', '.join(hidden)} (--wide, --format csv)"
        caption = Text.assemble(caption, "; ", note) if caption else note
    # Rich wraps a title or caption to the table's width: one character a line under a one-column answer.
    label = max(cell_len(title or ""), cell_len(str(caption or "")))
    table = Table(
        min_width=label if width is None else min(label, width),
        title=title,
        caption=caption,
        box=None,
        padding=(0, 1),
        pad_edge=False,
        collapse_padding=False,
        title_justify="left",
        caption_justify="left",
        header_style="bold",
        expand=False,
    )
    for column, w in zip(shown, widths, strict=True):
        table.add_column(column.header, justify=column.justify, no_wrap=True, overflow="ellipsis", width=w, max_width=w)
    for row in zip(*(c.cells for c in shown), strict=True):
        table.add_row(*row)
    return table


def _widths(columns: list[Column], width: int | None, keep_full: list[Column] | None = None) -> list[int] | None:
    """Column widths within ``width``: flexible columns shrink, those not in ``keep_full`` first; None if no fit."""
    natural = [c.natural for c in columns]
    if width is None:
        return natural
    room = width - GAP * (len(columns) - 1) - sum(n for n, c in zip(natural, columns, strict=True) if not c.flex)
    flexible = [i for i, c in enumerate(columns) if c.flex]
    widths = list(natural)
    for group in ([i for i in flexible if keep_full is None or columns[i] not in keep_full], flexible):
        while sum(widths[i] for i in flexible) > room:
            candidates = [i for i in group if widths[i] > min(natural[i], columns[i].min_width)]
            if not candidates:
                break
            widths[max(candidates, key=lambda i: widths[i])] -= 1
    return widths if sum(widths[i] for i in flexible) <= room else None


# -- short ids -------------------------------------------------------------------------------------

SHORT_ID = 8


def short_ids(ids: list[uuid.UUID], *, wide: bool = False) -> dict[uuid.UUID, str]:
    """Each id as its shortest prefix (at least 8 characters) that no other id shown shares, as git does."""
    texts = {i: str(i) for i in ids}
    if wide:
        return texts
    for length in range(SHORT_ID, 37):
        prefixes = {t[:length] for t in texts.values()}
        if len(prefixes) == len(texts):
            return {i: t[:length] for i, t in texts.items()}
    return texts


# -- runs ------------------------------------------------------------------------------------------


def runs_table(page: RunsPage, skip: int, width: int | None, *, wide: bool = False) -> Table:
    """A page of runs, newest first: id, flow, status, start and duration always; trigger and source if room."""
    ids = short_ids([r.id for r in page.runs] + [r.source_run_id for r in page.runs if r.source_run_id], wide=wide)
    columns = [
        Column("run", [ids[r.id] for r in page.runs]),
        Column("flow", [r.flow_name for r in page.runs], flex=True, min_width=8),
        Column("status", [status_text(r.status) for r in page.runs]),
        Column("started (UTC)", [time_text(r.started_at, seconds=wide) for r in page.runs]),
        Column(
            "duration",
            [duration_text(run_duration_ms(r.started_at, r.completed_at)) for r in page.runs],
            justify="right",
        ),
        Column("trigger", [r.trigger_key for r in page.runs], flex=True, min_width=6, optional=True),
        Column("re-run of", [ids[r.source_run_id] if r.source_run_id else "" for r in page.runs], optional=True),
    ]
    return fit(columns, width, title="Runs", caption=_page_caption(len(page.runs), skip, page.total_count))


def _page_caption(count: int, skip: int, total: int) -> str:
    if count == 0:
        return f"no runs on this page ({total} match)"
    return f"runs {skip + 1}-{skip + count} of {total}"


def run_detail(
    run: FlowRunRecord, derived: list[FlowRunRecord], width: int | None, *, wide: bool = False
) -> RenderableType:
    """One run: its fields, every attempt of every step (one row each), and the runs re-run from it."""
    rows: list[tuple[str, str | Text]] = [
        ("run", str(run.id)),
        ("flow", f"{run.flow_name} ({run.flow_id})"),
        ("status", status_text(run.status)),
        ("trigger", run.trigger_key),
        ("trigger data", run.trigger_data_json or "-"),
        ("job", run.background_job_id or "-"),
        ("started", time_text(run.started_at, seconds=True)),
        ("completed", time_text(run.completed_at, seconds=True)),
        ("duration", duration_text(run_duration_ms(run.started_at, run.completed_at))),
        ("re-run of", str(run.source_run_id) if run.source_run_id else "-"),
    ]
    head = fit([Column("", [r[0] for r in rows]), Column("", [r[1] for r in rows], flex=True, min_width=8)], width)
    head.show_header = False
    parts: list[RenderableType] = [head, Text(""), _attempts_table(run.steps or (), width)]
    if derived:
        page = RunsPage(derived, len(derived))
        rerun_table = runs_table(page, 0, width, wide=wide)
        rerun_table.title = "Re-runs of this run"
        parts += [Text(""), rerun_table]
    return Group(*parts)


def _attempts_table(steps: tuple[FlowStepRecord, ...], width: int | None) -> Table:
    attempts = [(step, attempt) for step in steps for attempt in step.attempts]
    first = {id(step.attempts[0]) for step in steps if step.attempts}
    columns = [
        Column("step", [s.step_key if id(a) in first else "" for s, a in attempts], flex=True, min_width=8),
        Column("#", [str(a.attempt) for _, a in attempts], justify="right"),
        Column("status", [status_text(a.status) for _, a in attempts]),
        Column("started (UTC)", [time_text(a.started_at, seconds=True) for _, a in attempts]),
        Column(
            "duration",
            [duration_text(run_duration_ms(a.started_at, a.completed_at)) for _, a in attempts],
            justify="right",
        ),
        Column("type", [a.step_type for _, a in attempts], flex=True, min_width=6, optional=True),
        Column(
            "error / output",
            [one_line(a.error_message or a.output_json or "") for _, a in attempts],
            flex=True,
            min_width=10,
            optional=True,
        ),
    ]
    steps_without = [s for s in steps if not s.attempts]
    caption = f"{len(steps)} step(s), {len(attempts)} attempt(s)"
    if steps_without:
        caption += f"; {len(steps_without)} step(s) without attempts"
    return fit(columns, width, title="Attempts", caption=caption)


def one_line(text: str) -> str:
    """``text`` on one line: every run of whitespace, newlines included, as one space."""
    return " ".join(text.split())


def flows_table(flows: list[dict[str, Any]], width: int | None, *, wide: bool = False) -> Table:
    """Every flow: name, id, number of runs and the last run's start."""
    ids = short_ids([f["flow_id"] for f in flows], wide=wide)
    columns = [
        Column("flow", [f["flow_name"] for f in flows], flex=True, min_width=8),
        Column("id", [ids[f["flow_id"]] for f in flows]),
        Column("runs", [str(f["runs"]) for f in flows], justify="right"),
        Column("last run (UTC)", [time_text(f["last_run"]) for f in flows]),
        Column("last status", [status_text(f["last_status"]) for f in flows], optional=True),
    ]
    return fit(columns, width, title="Flows", caption=f"{len(flows)} flow(s)")


def statistics_table(stats: DashboardStatistics) -> Table:
    """The dashboard's four counters."""
    names = ["flows", "active runs", "succeeded today (UTC)", "failed today (UTC)"]
    values: list[str | Text] = [
        str(stats.total_flows),
        Text(str(stats.active_runs), style="cyan"),
        Text(str(stats.completed_today), style="green"),
        Text(str(stats.failed_today), style="red"),
    ]
    columns = [Column("", [Text(name, style="bold") for name in names]), Column("", values, justify="right")]
    table = fit(columns, None, title="Statistics")
    table.show_header = False
    return table


def timeseries_table(
    buckets: list[RunTimeseriesBucket], title: str, width: int | None, *, hourly: bool, wide: bool = False
) -> Table:
    """Every bucket with its counts and p50/p95/p99; narrow terminals get cancelled, timed out, skipped as "other"."""
    full = wide or width is None or width >= 100
    when = [b.timestamp.strftime("%m-%d %H:%M" if hourly and not full else "%Y-%m-%d %H:%M") for b in buckets]
    columns = [Column("bucket", when), Column("total", [str(b.total) for b in buckets], justify="right")]
    columns.append(Column("ok", [str(b.succeeded) for b in buckets], justify="right"))
    columns.append(Column("failed", [_count(b.failed, "red") for b in buckets], justify="right"))
    if full:
        columns += [
            Column("cancelled", [_count(b.cancelled, "magenta") for b in buckets], justify="right"),
            Column("timed out", [_count(b.timed_out, "yellow") for b in buckets], justify="right"),
            Column("skipped", [str(b.skipped) for b in buckets], justify="right"),
        ]
    else:
        other = [b.cancelled + b.timed_out + b.skipped for b in buckets]
        columns.append(Column("other", [_count(n, "magenta") for n in other], justify="right"))
    columns.append(Column("running", [_count(b.running, "cyan") for b in buckets], justify="right"))
    for name in ("p50", "p95", "p99"):
        values = [duration_text(getattr(b, f"{name}_duration_ms")) for b in buckets]
        columns.append(Column(name, values, justify="right"))
    caption = None if full else "other = cancelled + timed out + skipped (--wide to split)"
    return fit(columns, width, title=title, caption=caption)


def _count(value: int, style: str) -> Text:
    return Text(str(value), style=style if value else "dim")


def frame_table(frame: pl.DataFrame, width: int | None, title: str | None = None, max_rows: int = 200) -> Table:
    """A polars DataFrame as a table (the first ``max_rows`` rows), every cell on one line."""
    caption = f"{frame.height} row(s)" if frame.height <= max_rows else f"first {max_rows} of {frame.height} rows"
    head = frame.head(max_rows)
    columns = [
        Column(
            name,
            [_cell(v) for v in head.get_column(name).to_list()],
            justify="right" if dtype.is_numeric() else "left",
            flex=True,
            min_width=min(8, max(4, cell_len(name))),
            optional=index > 0,
        )
        for index, (name, dtype) in enumerate(frame.schema.items())
    ]
    return fit(columns, width, title=title, caption=caption)


def _cell(value: object) -> str | Text:
    if value is None:
        return Text("null", style="dim")
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, timedelta):
        return duration_text(value.total_seconds() * 1000)
    return one_line(str(value))
