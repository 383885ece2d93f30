"""A clock each thread sets for itself, for simulations that play many runs at once.

The store asks its clock for "now" on every call. A simulation that plays runs
on several threads gives each thread its own simulated time: a thread sets the
instant its next event happens, then makes the store call, and the store stamps
exactly that instant. A thread that never set a time (the main thread exporting,
pruning and reporting) sees the wall clock, so "today" and prune's cutoff stay real.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class ThreadClock:
    """A zero-argument clock whose time is set per thread; unset threads read the wall clock."""

    def __init__(self) -> None:
        self._local = threading.local()

    def __call__(self) -> datetime:
        now: datetime | None = getattr(self._local, "now", None)
        return now if now is not None else datetime.now(UTC)

    def set(self, instant: datetime) -> None:
        """Make ``instant`` (aware) this thread's now."""
        if instant.tzinfo is None:
            raise ValueError("the simulated time must be timezone-aware")
        self._local.now = instant

    def advance(self, delta: timedelta) -> datetime:
        """Move this thread's now forward and return it."""
        self.set(self() + delta)
        return self()

    def clear(self) -> None:
        """Let this thread read the wall clock again."""
        self._local.now = None
