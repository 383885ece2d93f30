"""Query parameters of the API, checked the way the store and the CLI check them.

Everything arrives as text; each parser returns the typed value the store takes
or raises the store's own ``InvalidArgument`` subclass (a 400 with its class name),
so a bad parameter fails before anything is read, with the message the Python
API would give.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from olap import timeseries as olap_timeseries
from oltp import arguments
from oltp.errors import InvalidArgument
from oltp.records import Granularity, RunStatus
from sync.durations import parse_duration

# Past this a skip is no page anyone can reach; it keeps offsets inside 64-bit integers.
MAX_SKIP = 10**12
MAX_SEARCH = 1000
DEFAULT_WINDOW = {Granularity.HOUR: timedelta(hours=24), Granularity.DAY: timedelta(days=30)}


def integer(text: str | None, name: str, default: int) -> int:
    """A decimal integer parameter (sign allowed; range checks are the caller's)."""
    if text is None:
        return default
    stripped = text.strip()
    if not stripped.lstrip("+-").isdigit() or not stripped.isascii() or len(stripped) > 20:
        raise InvalidArgument(f"{name} must be an integer, got {text!r}")
    return int(stripped)


def paging(skip: str | None, take: str | None) -> tuple[int, int]:
    """``skip`` >= 0 (and below ``MAX_SKIP``), 1 <= ``take`` <= 1000, as ``get_runs_page`` checks them."""
    first, size = arguments.paging(integer(skip, "skip", 0), integer(take, "take", 50))
    if first > MAX_SKIP:
        raise InvalidArgument(f"skip must be at most {MAX_SKIP}, got {first}")
    return first, size


def flow_id(text: str | None) -> uuid.UUID | None:
    """An optional flow id (a UUID)."""
    return arguments.optional_uuid(text or None, "flow_id")


def run_id(text: str) -> uuid.UUID:
    """A run id (a UUID)."""
    return arguments.run_id(text, "run_id")


def status(text: str | None) -> RunStatus | None:
    """An optional run status, any case."""
    return None if not text else arguments.run_status(text, case_insensitive=True)


def search(text: str | None) -> str | None:
    """An optional search term; the store's own checks (no NUL) plus a length cap."""
    if text is not None and len(text) > MAX_SEARCH:
        raise InvalidArgument(f"search must be at most {MAX_SEARCH} characters, got {len(text)}")
    return arguments.optional_text(text, "search")


def granularity(text: str | None) -> Granularity:
    """``hour`` or ``day`` (default ``day``)."""
    return olap_timeseries.granularity("day" if text is None else text)


def instant(text: str | None, name: str) -> datetime | None:
    """An optional ISO-8601 instant with an offset (``Z`` allowed)."""
    if text is None or text == "":
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(
            f"{name} must be an ISO-8601 date-time with an offset, e.g. 2026-03-01T00:00Z; got {text!r}"
        ) from None
    if value.tzinfo is None:
        raise InvalidArgument(f"{name} has no time zone: add Z or an offset, e.g. {value.isoformat()}Z")
    return arguments.aware_utc(value, name)


def duration(text: str | None, name: str) -> timedelta | None:
    """An optional positive duration such as ``24h`` or ``30d``."""
    if text is None or text == "":
        return None
    try:
        value = parse_duration(text)
    except (OverflowError, ValueError) as exc:
        if isinstance(exc, InvalidArgument):
            raise
        raise InvalidArgument(f"{name} is out of range: {text!r}") from None
    if value <= timedelta(0):
        raise InvalidArgument(f"{name} must be a positive duration, got {text!r}")
    return value


def window(
    grain: Granularity, since: datetime | None, until: datetime | None, span: timedelta | None, now: datetime
) -> tuple[datetime, datetime]:
    """The timeseries window: ``until`` defaults to the end of the current bucket, ``since`` to ``until - span``.

    ``span`` defaults to 24 hours for hourly and 30 days for daily buckets. The store checks the result
    (order, at most 10,000 buckets) before reading anything.
    """
    if until is None:
        bucket_start = now.replace(minute=0, second=0, microsecond=0)
        if grain is Granularity.DAY:
            bucket_start = bucket_start.replace(hour=0)
        until = bucket_start + (timedelta(days=1) if grain is Granularity.DAY else timedelta(hours=1))
    if since is None:
        try:
            since = until - (span or DEFAULT_WINDOW[grain])
        except OverflowError:
            raise InvalidArgument(f"window {span} reaches before year 1") from None
    olap_timeseries.window(grain, since, until)
    return since, until
