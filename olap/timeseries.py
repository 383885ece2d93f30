"""The timeseries window: validation, UTC bucket alignment, and filling empty buckets.

Buckets are aligned to UTC hours or days; ``since`` is aligned down to its bucket and
runs are counted from that aligned start (``aligned_since <= started_at < until``).
DuckDB returns only the buckets that hold runs, numbered from the aligned start; this
module lays them onto the full range so every bucket is present, empty ones with zero
counts and no percentiles. The loop is over buckets (at most 10,000), never over runs; counting and
percentiles (``quantile_cont``) happen in DuckDB (``queries/timeseries.sql``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from olap import unified
from olap.live import Snapshot
from olap.queries import load
from olap.scope import PgParams, RunScope, duck_where, pg_where
from olap.session import Sources
from oltp import arguments as arg
from oltp.errors import InvalidArgument, InvalidTimeRange
from oltp.records import Granularity, RunTimeseriesBucket

MAX_BUCKETS = 10_000
_WIDTH = {Granularity.HOUR: timedelta(hours=1), Granularity.DAY: timedelta(days=1)}


@dataclass(frozen=True, slots=True)
class Window:
    """A validated window: aligned start, exclusive end, bucket width and count."""

    since: datetime
    until: datetime
    width: timedelta
    buckets: int

    @property
    def since_us(self) -> int:
        """The aligned start in microseconds since the epoch."""
        return _epoch_us(self.since)

    @property
    def width_us(self) -> int:
        """The bucket width in microseconds."""
        return self.width // timedelta(microseconds=1)


def granularity(value: object) -> Granularity:
    """``Granularity`` or its exact string value; anything else raises ``InvalidArgument``."""
    if isinstance(value, Granularity):
        return value
    if isinstance(value, str):
        for g in Granularity:
            if value == g.value:
                return g
    raise InvalidArgument(f"granularity must be one of {', '.join(g.value for g in Granularity)}, got {value!r}")


def window(granularity_value: object, since: object, until: object) -> Window:
    """Validate and align a window; ``buckets`` is 0 when ``since == until``."""
    g = granularity(granularity_value)
    start = arg.aware_utc(since, "since")
    end = arg.aware_utc(until, "until")
    if start > end:
        raise InvalidTimeRange(f"since ({start.isoformat()}) is after until ({end.isoformat()})")
    width = _WIDTH[g]
    aligned = start.replace(minute=0, second=0, microsecond=0)
    if g is Granularity.DAY:
        aligned = aligned.replace(hour=0)
    if start == end:
        return Window(aligned, end, width, 0)
    count = -((aligned - end) // width)  # ceiling division: the last bucket may run past until
    if count > MAX_BUCKETS:
        raise InvalidTimeRange(
            f"the window spans {count} {g.value} buckets; at most {MAX_BUCKETS} are returned, narrow it"
        )
    return Window(aligned, end, width, count)


def buckets(sources: Sources, win: Window, scope: RunScope) -> list[RunTimeseriesBucket]:
    """Every bucket of the window over live UNION visible archived runs of the scope."""
    pg_params = PgParams()
    pg_filter = pg_where(scope, pg_params)
    fields = "started_at, status, completed_at"

    def read(snap: Snapshot) -> dict[str, pa.Table]:
        # Live rows of the window double as the keys that hide their archived copies.
        rows = snap.table(f"SELECT id, {fields} FROM flow_runs WHERE {pg_filter}", pg_params.values)
        return {"live_keys": rows.select(["id", "started_at"]), "live_runs": rows}

    with sources.call(read) as call:
        where, params = duck_where(scope, "a")
        parts = [f"SELECT {fields} FROM live_runs"]
        parts += call.archive_parts("runs", fields, where, scope.since, scope.until)
        rows = call.run(
            load("timeseries").format(runs=unified.union(parts, "")),
            {**params, "since_us": win.since_us, "width_us": win.width_us},
        ).fetchall()
    return fill(win, rows)


def fill(win: Window, rows: Iterable[tuple[Any, ...]]) -> list[RunTimeseriesBucket]:
    """Every bucket of the window, taking counts and percentiles from DuckDB's non-empty rows."""
    found = {int(r[0]): r for r in rows}
    out = []
    for i in range(win.buckets):
        stamp = win.since + i * win.width
        row = found.get(i)
        if row is None:
            out.append(RunTimeseriesBucket(stamp, 0, 0, 0, 0, 0, 0, 0, None, None, None))
            continue
        q = row[8] or (None, None, None)
        out.append(
            RunTimeseriesBucket(
                timestamp=stamp,
                total=int(row[1]),
                succeeded=int(row[2]),
                failed=int(row[3]),
                cancelled=int(row[4]),
                timed_out=int(row[5]),
                skipped=int(row[6]),
                running=int(row[7]),
                p50_duration_ms=_float(q[0]),
                p95_duration_ms=_float(q[1]),
                p99_duration_ms=_float(q[2]),
            )
        )
    return out


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _epoch_us(value: datetime) -> int:
    return (value - datetime(1970, 1, 1, tzinfo=value.tzinfo)) // timedelta(microseconds=1)
