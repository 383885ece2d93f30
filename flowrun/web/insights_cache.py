"""The overview's per-flow figures and top step errors, asked at most once per ``ttl`` seconds.

These come from ``flowrun.insights``: whole-history aggregates (every run, every
attempt) that cost seconds over millions of archived runs, and that a dashboard
refreshed by every browser on every change would otherwise ask again and again.
One answer is kept and handed to every caller until it is ``ttl`` seconds old;
concurrent callers of an expired answer wait for one computation, not one each.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flowrun import insights
from flowrun.store import FlowRunStore


@dataclass(frozen=True)
class Insights:
    """One answer: per-flow figures, the top step errors, and when they were asked."""

    flows: list[dict[str, Any]]
    top_errors: list[dict[str, Any]]
    computed_at: datetime


class InsightsCache:
    """Keeps the newest ``Insights`` for ``ttl`` seconds."""

    def __init__(self, store: FlowRunStore, ttl: float) -> None:
        self.store = store
        self.ttl = ttl
        self._lock = threading.Lock()
        self._value: Insights | None = None
        self._at = 0.0

    def get(self) -> Insights:
        """The kept answer, or a fresh one when it is older than ``ttl``."""
        with self._lock:
            if self._value is None or time.monotonic() - self._at >= self.ttl:
                self._value = Insights(
                    flows=insights.flows(self.store),
                    top_errors=insights.top_errors(self.store),
                    computed_at=datetime.now(UTC),
                )
                self._at = time.monotonic()
            return self._value
