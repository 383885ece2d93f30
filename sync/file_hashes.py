"""Content hashes of the archive's data files in PostgreSQL (``archive_file_hashes``).

The Delta log gives a file's size and row count; a byte flipped inside a Parquet
page that still decodes passes both, and delta-rs (a compaction's and a merge's
files) writes no page checksums. So
the job that writes a file (an export batch, a compaction) reads it back from
storage, hashes it (SHA-256) and records the hash in the PostgreSQL transaction
that records the table version holding it: PostgreSQL then knows every byte of
every file its recorded version lists. Which files a job added is what its
version lists beyond the version PostgreSQL recorded before
(``sync.integrity.WrittenFiles``), so a commit a crashed job left unrecorded is
hashed by the job that records it.
Vacuumed files lose their row. Files written before hashes were kept have none
until ``sync.verify`` records one ('scrub').
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

import pyarrow as pa

from sync.arrow_connection import ArrowConnection, array_param, scalar_param
from sync.arrow_schemas import TS

WRITE = "write"
SCRUB = "scrub"


class FileHash(NamedTuple):
    """A data file's size and SHA-256 as recorded."""

    path: str  # relative to the table
    size: int
    sha256: bytes
    recorded_by: str = WRITE  # WRITE by the job that wrote it, SCRUB by a first verify


_LOOKUP = "SELECT path, size, sha256, recorded_by FROM archive_file_hashes WHERE path = ANY($1::text[])"
# The writer knows best: its hash replaces any other for the path. A scrub only fills gaps.
_RECORD = """
INSERT INTO archive_file_hashes (path, size, sha256, recorded_by, recorded_at)
SELECT path, size, sha256, $4, $5 FROM unnest($1::text[], $2::int8[], $3::bytea[]) AS h(path, size, sha256)
ON CONFLICT (path) DO {conflict}
"""
_WRITER_WINS = "UPDATE SET size = EXCLUDED.size, sha256 = EXCLUDED.sha256, recorded_by = EXCLUDED.recorded_by,"
_WRITER_WINS += " recorded_at = EXCLUDED.recorded_at"
_FORGET = "DELETE FROM archive_file_hashes WHERE path = ANY($1::text[])"


def lookup(conn: ArrowConnection, paths: Sequence[str]) -> dict[str, FileHash]:
    """The recorded hashes of ``paths`` (absent: none recorded)."""
    if not paths:
        return {}
    found = conn.rows(_LOOKUP, array_param(pa.array(list(paths), pa.string())))
    return {p: FileHash(p, int(s), bytes(h), r) for p, s, h, r in found}


def record(conn: ArrowConnection, hashes: Sequence[FileHash], recorded_by: str, now: datetime) -> None:
    """Store ``hashes`` (in the caller's transaction); a scrub never overwrites a recorded hash."""
    if not hashes:
        return
    conflict = _WRITER_WINS if recorded_by == WRITE else "NOTHING"
    conn.execute(
        _RECORD.format(conflict=conflict),
        array_param(pa.array([h.path for h in hashes], pa.string())),
        array_param(pa.array([h.size for h in hashes], pa.int64())),
        array_param(pa.array([h.sha256 for h in hashes], pa.binary())),
        scalar_param(recorded_by, pa.string()),
        scalar_param(now, TS),
    )


def forget(conn: ArrowConnection, paths: Iterable[str]) -> None:
    """Drop the rows of files deleted from storage (vacuumed)."""
    listed = list(paths)
    if listed:
        conn.execute(_FORGET, array_param(pa.array(listed, pa.string())))
