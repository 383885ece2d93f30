"""The database remembers its archive: one schema's history never splits over two locations.

The first export stores the archive URI in ``archive_state`` with a new store id
(the app id of its Delta transactions), and the Delta table's id once the first
batch creates it. From then on every job and every reader with a DSN compares its
archive with that row and raises ``ArchiveConflict`` naming both locations before
it touches anything: pointed at another directory (``--archive B``, ``--home
other``, ``<archive>/runs``), or at a location whose table is not the recorded one
(another store's archive, a table re-created by hand). A location that already
holds a Delta table, or lies inside one, is refused at the first export too. A deliberate move is
``relocate`` (``flowrun move-archive``): it checks that the table at the new
location is the recorded one at the recorded version or later, then updates the row.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from datetime import datetime

from oltp.clock import Clock, checked_now, wall_clock
from oltp.connection import DEFAULT_SCHEMA, schema_name
from oltp.errors import InvalidArgument
from sync import bookkeeping
from sync.archive_location import ArchiveLocation
from sync.archive_lock import archive_lock
from sync.archive_table import ArchiveTable, older_copy
from sync.arrow_connection import ArrowConnection
from sync.bookkeeping import ArchiveState
from sync.errors import ArchiveConflict


def check(state: ArchiveState | None, location: ArchiveLocation) -> None:
    """Raise ``ArchiveConflict`` when the schema's recorded archive is elsewhere."""
    if state is not None and state.uri != location.uri:
        raise ArchiveConflict(
            f"this database's archive is {state.uri}, not {location.uri}: point the store at {state.uri},"
            f" or, if the archive was moved there on purpose, run `flowrun move-archive {location.uri}`"
        )


def check_table(state: ArchiveState, table: ArchiveTable) -> None:
    """Raise ``ArchiveConflict`` when the table at the location is not the one this database wrote."""
    if state.table_id and table.exists and table.table_id != state.table_id:
        raise ArchiveConflict(
            f"the Delta table at {table.location.table_uri} is {table.table_id}, not this database's archive"
            f" table {state.table_id}: it belongs to another store or was re-created"
        )
    if state.table_id and not table.exists:
        raise ArchiveConflict(
            f"this database's archive table {state.table_id} is missing at {table.location.table_uri}"
            " (moved or deleted): restore it there, or run `flowrun move-archive <uri>` to where it now lives"
        )


def claim(conn: ArrowConnection, location: ArchiveLocation, table: ArchiveTable, now: datetime) -> ArchiveState:
    """The schema's archive state, created at the first export; ``ArchiveConflict`` if it is elsewhere."""
    with conn.transaction():
        found = bookkeeping.state(conn)
    if found is None:
        if table.exists:
            raise ArchiveConflict(
                f"{location.table_uri} already holds a Delta table ({table.table_id}) that this database did not"
                " write: use an empty location for this store's archive"
            )
        where = location.in_table()
        if where is not None:
            # Its full vacuum would delete this archive's files and log as files it never committed.
            raise ArchiveConflict(
                f"{location.uri} is {where} of another archive, whose compaction would delete this one: use a"
                " location outside any Delta table for this store's archive"
            )
        if location.is_local:
            # Found out now, not after the first batch was read: a location no table can live in.
            try:
                os.makedirs(location.uri, exist_ok=True)
            except OSError as exc:
                raise InvalidArgument(f"archive {location.uri} cannot be created: {exc.strerror or exc}") from exc
        with conn.transaction():
            bookkeeping.create_state(conn, location.uri, str(uuid.uuid4()), now)
            found = bookkeeping.state(conn)
        assert found is not None
    check(found, location)
    check_table(found, table)
    return found


def relocate(
    dsn: str,
    archive: str | os.PathLike[str],
    *,
    schema: str = DEFAULT_SCHEMA,
    storage_options: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    wait: float = 0.0,
) -> str:
    """Record that this schema's archive now lives at ``archive`` (after copying it there); the old URI."""
    location = ArchiveLocation.resolve(archive, storage_options)
    schema = schema_name(schema)
    with ArrowConnection(dsn, schema) as conn, archive_lock(conn, schema, wait=wait):
        with conn.transaction():
            found = bookkeeping.state(conn)
        if found is None:
            raise ArchiveConflict("this database has no archive yet: nothing to move (the first export creates it)")
        table = ArchiveTable.open(location)
        check_table(found, table)
        if table.version is not None and table.version < found.version:
            # An older copy put back where the archive already lives has no newer copy to take it from.
            advice = None if location.uri == found.uri else f"copy the whole archive from {found.uri} again"
            raise older_copy(location, table.version, found.version, advice)
        with conn.transaction():
            bookkeeping.move(conn, location.uri, checked_now(clock or wall_clock))
    return found.uri
