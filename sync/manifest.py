"""The archive's bookkeeping in PostgreSQL: which files exist, which run versions they hold.

``archive_files`` lists every file readers may see, ``archived_runs`` the newest
archived revision of each run, ``archive_superseded`` the older copies still in
files. An export batch commits its files, its runs and the deletion of their
outbox rows in one transaction; compaction swaps file lists in one transaction.
The functions run inside a transaction the caller opens; run ids and
revisions travel as Arrow arrays bound as PostgreSQL array parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import NamedTuple

import pyarrow as pa

from sync.arrow_connection import ArrowConnection, array_param, scalar_param
from sync.arrow_schemas import TS, Kind


class FileEntry(NamedTuple):
    """One row of ``archive_files``."""

    path: str
    kind: Kind
    started_date: date
    batch_id: str
    row_count: int
    min_started_at: datetime | None
    max_started_at: datetime | None


_FILE_TYPES = (pa.string(), pa.string(), pa.date32(), pa.string(), pa.int64(), TS, TS)

_INSERT_FILES = """
INSERT INTO archive_files (path, kind, started_date, batch_id, row_count, min_started_at, max_started_at, created_at)
SELECT f.path, f.kind, f.started_date, f.batch_id, f.row_count, f.min_started_at, f.max_started_at, $8
  FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::int8[], $6::timestamptz[], $7::timestamptz[])
       AS f(path, kind, started_date, batch_id, row_count, min_started_at, max_started_at)
"""

# Every statement restricts the big tables by ``= ANY($1::uuid[])`` as well as joining
# them to the unnested arrays: that makes the planner probe their primary keys (the cost
# of a batch stays that of the batch) instead of scanning a table that grows with the
# archive.
#
# The previous newest copy of a re-exported run becomes superseded, then the run's
# archived revision moves up; an older revision arriving late never replaces a newer
# one, it is filed as superseded itself. The final count (``old`` sees the table as it
# was before this statement) tells how many of these runs an earlier batch of the
# same export call had written already.
_ARCHIVE_RUNS = """
WITH batch AS (
    SELECT * FROM unnest($1::uuid[], $2::int8[], $3::date[]) AS b(run_id, revision, started_date)
), old AS (
    SELECT a.run_id, a.revision AS old_revision, a.started_date AS old_date, a.batch_id, b.revision
      FROM archived_runs a JOIN batch b ON b.run_id = a.run_id
     WHERE a.run_id = ANY($1::uuid[])
), superseded AS (
    INSERT INTO archive_superseded (run_id, revision, started_date)
    SELECT run_id, least(old_revision, revision), old_date FROM old WHERE old_revision <> revision
    ON CONFLICT DO NOTHING
), archived AS (
    INSERT INTO archived_runs (run_id, revision, started_date, batch_id)
    SELECT run_id, revision, started_date, $4 FROM batch
    ON CONFLICT (run_id) DO UPDATE
       SET revision = EXCLUDED.revision, started_date = EXCLUDED.started_date, batch_id = EXCLUDED.batch_id
     WHERE archived_runs.revision < EXCLUDED.revision
)
SELECT count(*) FROM old WHERE batch_id = ANY($5::text[])
"""

# A row stays when its run was written again after the snapshot (a newer revision):
# that version is exported by a later batch.
_DELETE_OUTBOX = """
DELETE FROM export_outbox o
 USING unnest($1::uuid[], $2::int8[]) AS t(run_id, revision)
 WHERE o.run_id = ANY($1::uuid[]) AND o.run_id = t.run_id AND o.revision <= t.revision
"""

_FILES_OF_DATE = """
SELECT path, kind, started_date, batch_id, row_count, min_started_at, max_started_at
  FROM archive_files WHERE started_date = $1
 ORDER BY kind, min_started_at NULLS FIRST, path
"""

# A date needs compaction when a kind has more than one file there, or when files
# there still hold superseded copies of runs.
_DATES_TO_COMPACT = """
WITH files AS (
    SELECT started_date, max(n) AS most FROM (
        SELECT started_date, kind, count(*) AS n FROM archive_files GROUP BY started_date, kind
    ) k GROUP BY started_date
), superseded AS (
    SELECT started_date, count(*) AS copies FROM archive_superseded GROUP BY started_date
)
SELECT f.started_date
  FROM files f LEFT JOIN superseded s USING (started_date)
 WHERE f.most > 1 OR s.copies > 0
 ORDER BY f.started_date
"""


def add_files(conn: ArrowConnection, files: Sequence[FileEntry], now: datetime) -> None:
    """List newly published files."""
    if not files:
        return
    columns = [array_param(pa.array([f[i] for f in files], t)) for i, t in enumerate(_FILE_TYPES)]
    conn.execute(_INSERT_FILES, *columns, scalar_param(now, TS))


def archive_runs(
    conn: ArrowConnection,
    run_ids: pa.Array,
    revisions: pa.Array,
    started_dates: pa.Array,
    batch_id: str,
    earlier_batches: Sequence[str] = (),
) -> int:
    """Record archived revisions, superseding older copies; returns how many ``earlier_batches`` wrote."""
    if len(run_ids) == 0:
        return 0
    rows = conn.rows(
        _ARCHIVE_RUNS,
        array_param(run_ids),
        array_param(revisions),
        array_param(started_dates),
        scalar_param(batch_id, pa.string()),
        array_param(pa.array(list(earlier_batches), pa.string())),
    )
    return int(rows[0][0])


def drop_from_outbox(conn: ArrowConnection, run_ids: pa.Array, revisions: pa.Array) -> None:
    """Delete the outbox rows a batch took, unless their run moved past the snapshot's revision."""
    if len(run_ids):
        conn.execute(_DELETE_OUTBOX, array_param(run_ids), array_param(revisions))


def listed_paths(conn: ArrowConnection) -> set[str]:
    """Every path in ``archive_files``."""
    with conn.transaction():
        paths = conn.query("SELECT path FROM archive_files").column("path")
    return set(paths.to_pylist())


def dates_to_compact(conn: ArrowConnection) -> list[date]:
    """Partition dates with more than one file of a kind, or with superseded copies."""
    with conn.transaction():
        return conn.query(_DATES_TO_COMPACT).column("started_date").to_pylist()  # type: ignore[no-any-return]


def files_of_date(conn: ArrowConnection, started_date: date) -> list[FileEntry]:
    """The listed files of one partition date (every kind), oldest data first."""
    rows = conn.rows(_FILES_OF_DATE, scalar_param(started_date, pa.date32()))
    return [FileEntry(*row) for row in rows]


def superseded_of_date(conn: ArrowConnection, started_date: date) -> pa.Table:
    """The superseded (run_id, revision) copies filed under one partition date."""
    return conn.query(
        "SELECT run_id, revision FROM archive_superseded WHERE started_date = $1",
        scalar_param(started_date, pa.date32()),
    )


def swap_files(
    conn: ArrowConnection, removed: Sequence[str], added: Sequence[FileEntry], dropped: pa.Table, now: datetime
) -> None:
    """Replace listed files by their compacted version; forget the superseded copies it dropped."""
    conn.execute(
        "DELETE FROM archive_files WHERE path = ANY($1::text[])", array_param(pa.array(list(removed), pa.string()))
    )
    add_files(conn, added, now)
    if dropped.num_rows:
        conn.execute(
            """DELETE FROM archive_superseded s
                USING unnest($1::uuid[], $2::int8[]) AS t(run_id, revision)
                WHERE s.run_id = t.run_id AND s.revision = t.revision""",
            array_param(dropped.column("run_id").combine_chunks()),
            array_param(dropped.column("revision").combine_chunks()),
        )
