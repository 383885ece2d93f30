"""The store's only source of "now": an injectable zero-argument callable."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from oltp.errors import InvalidArgument

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    """The system clock, as an aware UTC datetime."""
    return datetime.now(UTC)


def checked_now(clock: Clock) -> datetime:
    """Call ``clock`` and insist on an aware datetime, returned in UTC."""
    now = clock()
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise InvalidArgument(f"the store's clock must return an aware datetime, got {now!r}")
    return now.astimezone(UTC)
