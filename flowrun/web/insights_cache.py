"""The overview's per-flow figures and top step errors, kept and refreshed in the background.

These come from ``flowrun.insights``: whole-history aggregates (every run, every
attempt) that cost seconds over millions of archived runs, and that a dashboard
refreshed by every browser on every change would otherwise ask again and again.
One answer is kept and handed to every caller. Once it is ``ttl`` seconds old the
next caller still gets it at once, and starts one refresh in a background thread
(stale-while-revalidate), so no page waits for the aggregates except the very
first, and the server starts computing that one as it starts (``warm``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flowrun import insights
from flowrun.store import FlowRunStore
from oltp.errors import FlowRunStoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Insights:
    """One answer: per-flow figures, the top step errors, and when they were asked."""

    flows: list[dict[str, Any]]
    top_errors: list[dict[str, Any]]
    computed_at: datetime


class InsightsCache:
    """Keeps the newest ``Insights``; refreshes it in the background once older than ``ttl`` seconds."""

    def __init__(self, store: FlowRunStore, ttl: float) -> None:
        self.store = store
        self.ttl = ttl
        self._compute_lock = threading.Lock()  # one computation at a time
        self._state_lock = threading.Lock()
        self._value: Insights | None = None
        self._at = 0.0
        self._refreshing = False
        self._threads: list[threading.Thread] = []

    def get(self) -> Insights:
        """The kept answer (refreshed in the background when stale), or the first one, computed now."""
        with self._state_lock:
            value = self._value
            stale = value is not None and time.monotonic() - self._at >= self.ttl and not self._refreshing
            if stale:
                self._refreshing = True
        if value is None:
            return self._compute()
        if stale:
            self._start()
        return value

    def warm(self) -> None:
        """Start computing the first answer in the background."""
        self._start()

    def wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for background computations, before the store is closed.

        A query still running in DuckDB's or the driver's native threads when the interpreter exits
        would abort the process instead of letting it stop cleanly.
        """
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    def _start(self) -> None:
        thread = threading.Thread(target=self._refresh, name="flowrun-insights", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _refresh(self) -> None:
        try:
            self._compute()
        except FlowRunStoreError as exc:  # the next request tries again, and reports the error itself
            log.warning("could not refresh the dashboard's flows and errors: %s", exc)
        finally:
            with self._state_lock:
                self._refreshing = False

    def _compute(self) -> Insights:
        with self._compute_lock:
            with self._state_lock:
                # Another caller may have finished a computation while this one waited for the lock.
                if self._value is not None and time.monotonic() - self._at < self.ttl:
                    return self._value
            value = Insights(
                flows=insights.flows(self.store),
                top_errors=insights.top_errors(self.store),
                computed_at=datetime.now(UTC),
            )
            with self._state_lock:
                self._value, self._at = value, time.monotonic()
            return value
