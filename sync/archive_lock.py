"""One exporter or compactor at a time per schema: a PostgreSQL advisory lock.

The lock is a session lock on the job's own connection, so it is released the
moment that connection ends, including when the process is killed. A second
job either fails at once with ``ArchiveBusy`` naming the holder, or, given
``wait`` seconds, polls for the lock until that deadline.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import NamedTuple

import pyarrow as pa

from oltp.connection import schema_name
from oltp.errors import ArchiveBusy, FlowRunStoreError, InvalidArgument
from sync.archive_location import ArchiveLocation
from sync.arrow_connection import ArrowConnection, scalar_param

# Two-key advisory locks live apart from the one-key migration lock; the first key is
# "flow" in ASCII, the second is derived from the schema name.
_LOCK_CLASS = 0x666C6F77
_POLL_SECONDS = 0.05

_TRY_LOCK = "SELECT pg_try_advisory_lock($1::int4, hashtext($2))"
_UNLOCK = "SELECT pg_advisory_unlock($1::int4, hashtext($2))"
_HOLDER = """
SELECT l.pid, a.backend_start
  FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.classid = $1::int8::oid AND l.objid = hashtext($2)::oid
   AND l.objsubid = 2 AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


MAX_WAIT = 7 * 24 * 3600.0  # a week; longer is a mistake, and infinity or NaN never ends


def check_wait(wait: object) -> float:
    """Seconds to wait for the lock: a finite number >= 0 (NaN would wait forever)."""
    if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 <= wait < MAX_WAIT:
        raise InvalidArgument(f"wait must be a number of seconds from 0 to {MAX_WAIT:.0f}, got {wait!r}")
    return float(wait)


class JobTarget(NamedTuple):
    """What every archive job (export, compaction, upgrade) checks before it starts."""

    schema: str
    wait: float
    location: ArchiveLocation


def job_target(
    archive: str | os.PathLike[str] | ArchiveLocation,
    schema: str,
    wait: object,
    storage_options: Mapping[str, str] | None,
) -> JobTarget:
    """The job's schema, lock wait and archive location, each checked (``InvalidArgument`` for a bad one)."""
    return JobTarget(schema_name(schema), check_wait(wait), ArchiveLocation.resolve(archive, storage_options))


@contextmanager
def archive_lock(conn: ArrowConnection, schema: str, *, wait: float = 0.0) -> Iterator[None]:
    """Hold the archive lock of ``schema`` on ``conn`` for the block, or raise ``ArchiveBusy``."""
    key = (scalar_param(_LOCK_CLASS, pa.int32()), scalar_param(schema, pa.string()))
    deadline = time.monotonic() + wait
    while not _try(conn, key):
        if time.monotonic() >= deadline:
            raise ArchiveBusy(_busy_message(conn, key, schema))
        time.sleep(_POLL_SECONDS)
    try:
        yield
    finally:
        # Closing the connection releases the lock too, so a failed unlock must not
        # hide the error that ended the block.
        with suppress(FlowRunStoreError), conn.transaction():
            conn.rows(_UNLOCK, *key)


def _try(conn: ArrowConnection, key: tuple[pa.Array, pa.Array]) -> bool:
    with conn.transaction():
        rows = conn.rows(_TRY_LOCK, *key)
    return bool(rows and rows[0][0])


def _busy_message(conn: ArrowConnection, key: tuple[pa.Array, pa.Array], schema: str) -> str:
    with conn.transaction():
        rows = conn.rows(_HOLDER, *key)
    holder = (
        f" (held by server process {rows[0][0]} since {rows[0][1]:%Y-%m-%d %H:%M:%S})" if rows and rows[0][1] else ""
    )
    return (
        f"another export or compaction of schema {schema!r} is running{holder};"
        " try again when it has finished, or wait for it (wait=<seconds>, on the command line --wait 5m)"
    )
