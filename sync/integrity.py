"""Is a listed data file the one the Delta log describes? Checked before anyone trusts it.

The log records every active file's size and row count. ``FileCheck.check``
compares both with the file on storage (a listing entry and the Parquet footer),
once per file per process: data files are immutable, so a file that passed stays
good until it leaves the table. A missing file, a truncated or extended one, or one
replaced by another Parquet file raises ``ArchiveCorrupt`` naming it. ``verify``
goes further and decodes every page (checking page CRCs where a writer stored
them): compaction runs it on every file it is about to rewrite, so it never copies
data it cannot read back into a new file.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from sync.archive_location import ArchiveLocation
from sync.archive_table import DataFile
from sync.errors import ArchiveCorrupt


class FileCheck:
    """Size and footer checks of one location's data files, remembered per process."""

    def __init__(self, location: ArchiveLocation) -> None:
        self.location = location
        self._fs, self._base = location.filesystem()
        self._passed: set[tuple[str, int]] = set()
        self._lock = threading.Lock()

    def full_path(self, file: DataFile) -> str:
        """The file's path on the filesystem of this check."""
        return f"{self._base}/{file.path}"

    def check(self, files: Iterable[DataFile]) -> None:
        """Raise ``ArchiveCorrupt`` for the first file whose size or row count differs from the log."""
        with self._lock:
            todo = [f for f in files if (f.path, f.size) not in self._passed]
        if not todo:
            return
        infos = self._fs.get_file_info([self.full_path(f) for f in todo])
        for file, info in zip(todo, infos, strict=True):
            shown = self.location.file_uri(file.path)
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

    def verify(self, file: DataFile) -> None:
        """``check``, then decode every page of the file; ``ArchiveCorrupt`` if any fails."""
        self.check([file])
        shown = self.location.file_uri(file.path)
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
