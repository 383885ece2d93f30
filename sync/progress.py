"""Progress of long archive jobs: a callback type, and two ways to show it.

Jobs call ``progress(ProgressUpdate(...))`` after every batch (export), date
(compaction) or delete batch (prune). ``console_progress`` turns those calls
into a rich progress bar with rows and rows/s when stderr is a terminal, and
into plain log lines (at most one every few seconds, plus the last) otherwise,
which is what a service's journal or a CI log wants.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

log = logging.getLogger("flowrun.sync")


class ProgressUpdate(NamedTuple):
    """Where a job stands: ``done`` of ``total`` units (runs, partitions or files), rows so far."""

    task: str  # "export", "compact", "prune" or "verify"
    done: int
    total: int | None
    rows: int
    seconds: float
    finished: bool = False

    @property
    def rows_per_second(self) -> float:
        """Rows written per second of the job so far."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0


Progress = Callable[[ProgressUpdate], None]


def no_progress(update: ProgressUpdate) -> None:
    """The default: show nothing."""


def log_progress(interval: float = 5.0, logger: logging.Logger = log) -> Progress:
    """A callback that logs one line per ``interval`` seconds, and the final line."""
    last = [float("-inf")]

    def show(update: ProgressUpdate) -> None:
        now = time.monotonic()
        if update.finished or now - last[0] >= interval:
            last[0] = now
            total = f"/{update.total}" if update.total is not None else ""
            logger.info(
                "%s: %d%s %s, %d rows, %.0f rows/s, %.1f s%s",
                update.task,
                update.done,
                total,
                _unit(update.task),
                update.rows,
                update.rows_per_second,
                update.seconds,
                " (done)" if update.finished else "",
            )

    return show


@contextmanager
def console_progress(description: str, *, force_terminal: bool | None = None) -> Iterator[Progress]:
    """A progress bar on a terminal, log lines otherwise; use the yielded callback as ``progress=``."""
    terminal = sys.stderr.isatty() if force_terminal is None else force_terminal
    if not terminal:
        yield log_progress()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rows]:,} rows, {task.fields[rate]:,.0f} rows/s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=None, rows=0, rate=0.0)

        def show(update: ProgressUpdate) -> None:
            total = max(update.total, update.done) if update.total is not None else None
            bar.update(task, completed=update.done, total=total, rows=update.rows, rate=update.rows_per_second)

        yield show


def _unit(task: str) -> str:
    return {"compact": "partitions", "verify": "files"}.get(task, "runs")
