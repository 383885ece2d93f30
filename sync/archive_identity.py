"""Which database an archive belongs to, so one store never deletes another's files.

An export removes every Parquet file its manifest does not list (the leftovers
of a crash). Pointed by mistake at an archive another database or schema
fills, or at an archive whose database was dropped and created anew, that rule
would delete someone's data. So the first export writes a marker,
``_flowrun_archive.json``, naming the database and schema (with their oids,
which a re-created database does not keep), and every job checks it before it
touches a file. An archive that already holds Parquet files but no marker is
refused too.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from sync.archive_storage import ArchiveStorage
from sync.arrow_connection import ArrowConnection, scalar_param
from sync.arrow_schemas import FORMAT_VERSION
from sync.errors import ArchiveConflict
from sync.layout import MARKER, SUFFIX

_IDENTITY = """
SELECT current_database(), d.oid::int8, n.nspname, n.oid::int8
  FROM pg_database d, pg_namespace n
 WHERE d.datname = current_database() AND n.nspname = $1
"""
_KEYS = ("database", "database_oid", "schema", "schema_oid")


def database_identity(conn: ArrowConnection, schema: str) -> dict[str, Any]:
    """Name and oid of the connected database and of ``schema``."""
    with conn.transaction():
        rows = conn.rows(_IDENTITY, scalar_param(schema, pa.string()))
    row = rows[0] if rows else None
    if row is None:
        raise ArchiveConflict(f"schema {schema!r} does not exist in this database; run `flowrun migrate`")
    return dict(zip(_KEYS, row, strict=True))


def claim(storage: ArchiveStorage, conn: ArrowConnection, schema: str) -> None:
    """Check that the archive is this schema's (creating its marker on first use), or raise."""
    ours = database_identity(conn, schema)
    marker = storage.read_marker()
    where = storage.full("")
    if marker is None:
        if any(path.endswith(SUFFIX) for path in storage.files()):
            raise ArchiveConflict(
                f"the archive {where} holds Parquet files but no {MARKER}: it was not written by this store"
                " (or its marker was removed). Use an empty directory for this store's archive."
            )
        storage.write_marker({**ours, "format": FORMAT_VERSION})
        return
    theirs = {key: marker.get(key) for key in _KEYS}
    if theirs != ours:
        raise ArchiveConflict(
            f"the archive {where} belongs to database {theirs['database']!r} (oid {theirs['database_oid']}),"
            f" schema {theirs['schema']!r} (oid {theirs['schema_oid']}); this store is database"
            f" {ours['database']!r} (oid {ours['database_oid']}), schema {ours['schema']!r}"
            f" (oid {ours['schema_oid']}). Point the store at its own archive. After restoring this database"
            f" from a backup, check that the manifest matches the files, then update {MARKER}."
        )
