"""The scrub: every data file of the recorded table version read back and compared with what was written.

``verify_archive`` lists the files of the table version PostgreSQL recorded and,
for each, compares the size and row count on storage with the Delta log and the
SHA-256 of its bytes with the one recorded when it was written
(``sync.file_hashes``). A file with no recorded hash was written before hashes
were kept: it is decoded page by page (which catches damage that breaks decoding,
not all of it), and then its hash is recorded, so every later scrub compares
against it ("trust on first scrub"); the report names those files.

It takes no lock and writes nothing but those first hashes, so exports and
readers go on meanwhile. A file a concurrent compaction took out of the table (and
a vacuum with a zero window deleted) is not reported: a failure is re-checked
against the version recorded when the scrub ends. The cost is one read of every
byte of the archive (SHA-256 runs at about 1.2 GB/s on one core here), which is
why readers keep to the cheap checks of ``sync.integrity`` and this runs on a
schedule (``flowrun verify``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from oltp.clock import Clock, checked_now, wall_clock
from oltp.connection import DEFAULT_SCHEMA, schema_name
from sync import archive_identity, bookkeeping, file_hashes
from sync.archive_location import ArchiveLocation
from sync.archive_table import ArchiveTable, DataFile
from sync.arrow_connection import ArrowConnection
from sync.errors import ArchiveCorrupt
from sync.file_hashes import FileHash
from sync.integrity import FileCheck
from sync.progress import Progress, ProgressUpdate, no_progress

# Files read at once: hashing and reading drop the GIL, and object stores answer faster in parallel.
_THREADS = 4


class CorruptFile(NamedTuple):
    """A file of the checked version that is not what was written."""

    path: str  # the file's URI
    reason: str


class VerifyReport(NamedTuple):
    """What one scrub checked and found."""

    version: int | None  # the table version checked; None before the first export
    files: int
    bytes: int
    corrupt: tuple[CorruptFile, ...]
    trusted: tuple[str, ...]  # URIs of files hashed for the first time (written before hashes were kept)
    seconds: float

    @property
    def clean(self) -> bool:
        """True when every file is what was written."""
        return not self.corrupt


def verify_archive(
    dsn: str,
    archive: str | os.PathLike[str] | ArchiveLocation,
    *,
    schema: str = DEFAULT_SCHEMA,
    clock: Clock | None = None,
    progress: Progress | None = None,
    storage_options: Mapping[str, str] | None = None,
) -> VerifyReport:
    """Check every file of the recorded version (size, row count, SHA-256); ``ArchiveConflict`` if elsewhere."""
    schema = schema_name(schema)
    location = ArchiveLocation.resolve(archive, storage_options)
    now_of = clock or wall_clock
    show = progress or no_progress
    started = time.monotonic()
    with ArrowConnection(dsn, schema) as conn:
        with conn.transaction():
            state = bookkeeping.state(conn)
        archive_identity.check(state, location)
        if state is None or state.version < 0:
            return VerifyReport(None, 0, 0, (), (), time.monotonic() - started)
        table = ArchiveTable.open(location, state.version)
        archive_identity.check_table(state, table)
        files = table.files()
        with conn.transaction():
            recorded = file_hashes.lookup(conn, [f.path for f in files])
        check = FileCheck(location)
        failed: list[tuple[DataFile, ArchiveCorrupt]] = []
        first: list[FileHash] = []
        done = rows = 0
        with ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="flowrun-verify") as pool:
            outcomes = pool.map(lambda f: _verify(check, f, recorded.get(f.path)), files)
            for file, outcome in zip(files, outcomes, strict=True):
                if isinstance(outcome, ArchiveCorrupt):
                    failed.append((file, outcome))
                elif outcome is not None:
                    first.append(outcome)
                done, rows = done + 1, rows + file.rows
                show(ProgressUpdate("verify", done, len(files), rows, time.monotonic() - started))
        if first:
            with conn.transaction():
                file_hashes.record(conn, first, file_hashes.SCRUB, checked_now(now_of))
        if failed:
            failed = _still_listed(conn, location, state.version, failed)
    seconds = time.monotonic() - started
    show(ProgressUpdate("verify", done, len(files), rows, seconds, finished=True))
    return VerifyReport(
        state.version,
        len(files),
        sum(f.size for f in files),
        tuple(CorruptFile(exc.path, exc.reason) for _file, exc in failed),
        tuple(location.file_uri(h.path) for h in first),
        seconds,
    )


def _verify(check: FileCheck, file: DataFile, recorded: FileHash | None) -> ArchiveCorrupt | FileHash | None:
    """None when the file matches its recorded hash, its first hash when none was recorded, else the error."""
    try:
        if recorded is not None:
            check.verify(file, recorded)
            return None
        check.verify(file, None)  # size, rows, then every page decoded
        hashed = check.digest(file)
        if hashed.size != file.size:  # replaced between the two reads
            return ArchiveCorrupt(check.shown(file), f"{hashed.size} bytes where the Delta log lists {file.size}")
        return hashed._replace(recorded_by=file_hashes.SCRUB)
    except ArchiveCorrupt as exc:
        return exc


def _still_listed(
    conn: ArrowConnection, location: ArchiveLocation, version: int, failed: Sequence[tuple[DataFile, ArchiveCorrupt]]
) -> list[tuple[DataFile, ArchiveCorrupt]]:
    """The failures whose file the version recorded now still lists (a compaction may have moved on)."""
    with conn.transaction():
        state = bookkeeping.state(conn)
    if state is None or state.version == version:
        return list(failed)
    active = {f.path for f in ArchiveTable.open(location, state.version).files()}
    return [(file, exc) for file, exc in failed if file.path in active]
