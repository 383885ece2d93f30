"""Is a listed data file the one that was written? Checked before anyone trusts it.

Two levels. ``FileCheck.check`` is the readers' cheap check: the Delta log records
every active file's size and row count, and a listing entry and the Parquet footer
show both, once per file per process (data files are immutable, so a file that
passed stays good until it leaves the table). A missing file, a truncated or
extended one, or one replaced by a Parquet file with another row count raises
``ArchiveCorrupt`` naming it.

``FileCheck.verify`` reads every byte: it compares the file's SHA-256 with the one
PostgreSQL recorded when it was written (``sync.file_hashes``), which catches what
the cheap check cannot: a flipped byte inside a page that still decodes, or a
same-size replacement with the same row count. A file with no recorded hash
(written before hashes were kept) is decoded page by page instead, checking the
page checksums the export's files carry (``sync.data_files``); in the files of a
compaction or a merge, which delta-rs writes without them, that catches only
damage that breaks decoding. Compaction
and the export's merge run ``verify`` on every file they would rewrite, so they
never copy data they cannot vouch for into a new file; ``sync.verify`` runs it on
every file of the recorded version.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Sequence
from datetime import date

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from sync import file_hashes
from sync.archive_location import ArchiveLocation
from sync.archive_table import ArchiveTable, DataFile
from sync.arrow_connection import ArrowConnection
from sync.errors import ArchiveCorrupt
from sync.file_hashes import FileHash

# Read size for hashing: large enough that hashlib (which drops the GIL) dominates the loop.
_CHUNK = 1 << 20


class FileCheck:
    """Checks of one location's data files, remembered per process."""

    def __init__(self, location: ArchiveLocation) -> None:
        self.location = location
        self._fs, self._base = location.filesystem()
        self._passed: set[tuple[str, int]] = set()
        self._verified: set[tuple[str, int]] = set()
        self._lock = threading.Lock()

    def full_path(self, file: DataFile) -> str:
        """The file's path on the filesystem of this check."""
        return f"{self._base}/{file.path}"

    def shown(self, file: DataFile) -> str:
        """The file's URI, as errors name it."""
        return self.location.file_uri(file.path)

    def check(self, files: Iterable[DataFile]) -> None:
        """Raise ``ArchiveCorrupt`` for the first file whose size or row count differs from the log."""
        with self._lock:
            todo = [f for f in files if (f.path, f.size) not in self._passed]
        if not todo:
            return
        infos = self._fs.get_file_info([self.full_path(f) for f in todo])
        for file, info in zip(todo, infos, strict=True):
            shown = self.shown(file)
            if info.type != pafs.FileType.File:
                raise ArchiveCorrupt(shown, "missing")
            if info.size != file.size:
                raise ArchiveCorrupt(
                    shown, f"{info.size} bytes where the Delta log lists {file.size} (truncated or replaced)"
                )
            rows = self._footer_rows(file, shown)
            if rows != file.rows:
                raise ArchiveCorrupt(shown, f"holding {rows} rows where the Delta log lists {file.rows} (replaced)")
            with self._lock:
                self._passed.add((file.path, file.size))

    def verify(self, file: DataFile, recorded: FileHash | None) -> None:
        """``check``, then the file's SHA-256 against ``recorded`` (no hash recorded: decode every page)."""
        with self._lock:
            if (file.path, file.size) in self._verified:
                return
        self.check([file])
        if recorded is None:
            self.decode(file)
        else:
            shown = self.shown(file)
            if recorded.size != file.size:
                raise ArchiveCorrupt(shown, f"{file.size} bytes where {recorded.size} were written (replaced)")
            if self.digest(file).sha256 != recorded.sha256:
                raise ArchiveCorrupt(
                    shown, "not the file written: its SHA-256 differs from the one recorded (corrupt or replaced)"
                )
        with self._lock:
            self._verified.add((file.path, file.size))

    def digest(self, file: DataFile) -> FileHash:
        """The SHA-256 of the file's bytes on storage."""
        hasher = hashlib.sha256()
        size = 0
        try:
            with self._fs.open_input_stream(self.full_path(file)) as source:
                while chunk := source.read(_CHUNK):
                    hasher.update(chunk)
                    size += len(chunk)
        except (OSError, pa.ArrowException) as exc:
            raise ArchiveCorrupt(self.shown(file), f"unreadable ({exc})") from exc
        return FileHash(file.path, size, hasher.digest())

    def decode(self, file: DataFile) -> None:
        """Decode every page of the file (checking page CRCs where a writer stored them)."""
        shown = self.shown(file)
        try:
            with self._fs.open_input_file(self.full_path(file)) as source:
                table = pq.read_table(source, page_checksum_verification=True)
            table.validate(full=True)
        except (OSError, pa.ArrowException) as exc:
            raise ArchiveCorrupt(shown, f"unreadable ({exc})") from exc
        if table.num_rows != file.rows:
            raise ArchiveCorrupt(shown, f"holding {table.num_rows} rows where the Delta log lists {file.rows}")

    def _footer_rows(self, file: DataFile, shown: str) -> int:
        try:
            with self._fs.open_input_file(self.full_path(file)) as source:
                return int(pq.read_metadata(source).num_rows)
        except (OSError, pa.ArrowException) as exc:
            raise ArchiveCorrupt(shown, f"not a readable Parquet file ({exc})") from exc


def verify_partitions(conn: ArrowConnection, check: FileCheck, files: Sequence[DataFile]) -> dict[date, ArchiveCorrupt]:
    """``verify`` every file against its recorded hash; the first error of each partition date that fails."""
    with conn.transaction():
        recorded = file_hashes.lookup(conn, [f.path for f in files])
    failed: dict[date, ArchiveCorrupt] = {}
    for file in files:
        if file.started_date in failed:
            continue
        try:
            check.verify(file, recorded.get(file.path))
        except ArchiveCorrupt as exc:
            failed[file.started_date] = exc
    return failed


class WrittenFiles:
    """The files a job's commits add beyond the table version PostgreSQL recorded, hashed for recording.

    A job records the hashes with the version that lists the files, in one transaction.
    Counting from the recorded version (not from the job's own commits) also covers a
    commit a crashed job left unrecorded: the job that records its version hashes its files.
    """

    def __init__(self, table: ArchiveTable, recorded_version: int, check: FileCheck) -> None:
        self._check = check
        self._known: set[str] = set()
        if recorded_version == table.version:
            self._known = {f.path for f in table.files()}
        elif recorded_version >= 0:
            self._known = {f.path for f in ArchiveTable.open(table.location, recorded_version).files()}

    def hashes(self, table: ArchiveTable) -> list[FileHash]:
        """Hashes of the files ``table``'s loaded version lists that no earlier call saw."""
        files = table.files()
        added = [f for f in files if f.path not in self._known]
        found = []
        for file in added:
            hashed = self._check.digest(file)
            if hashed.size != file.size:
                # Never vouch for bytes that are not the ones committed.
                raise ArchiveCorrupt(
                    self._check.shown(file), f"{hashed.size} bytes where the Delta log lists {file.size}"
                )
            found.append(hashed)
        self._known = {f.path for f in files}
        return found
