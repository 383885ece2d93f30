"""The archive's files, on whatever ``pyarrow.fs.FileSystem`` holds them.

On the local disk a file is published the crash-safe way: written under a
temporary name, fsynced, renamed into place, and its directory fsynced, so a
reader never sees half a file and a committed manifest row never points at
data the kernel could still lose. Other filesystems (object stores) have no
fsync and no atomic rename: the temporary object is moved (copied, then
deleted) to its final key, and since an object store publishes an object only
once it is complete, readers still never see a partial file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from sync import crash_points
from sync.arrow_schemas import KINDS
from sync.layout import MARKER, FilePath

# Small enough that min/max statistics prune well, large enough to compress well.
ROW_GROUP_SIZE = 131_072


@dataclass
class ArchiveStorage:
    """An archive root on a filesystem: write, list, read and delete its files."""

    fs: pafs.FileSystem
    root: str
    _known_dirs: set[str] = field(default_factory=set)

    @classmethod
    def open(cls, archive: str | os.PathLike[str], filesystem: pafs.FileSystem | None = None) -> ArchiveStorage:
        """A local path, a URI pyarrow understands (``s3://bucket/prefix``), or a path on ``filesystem``."""
        text = os.fspath(archive)
        if filesystem is not None:
            return cls(filesystem, text.rstrip("/"))
        if "://" in text:
            fs, root = pafs.FileSystem.from_uri(text)
            return cls(fs, root.rstrip("/"))
        return cls(pafs.LocalFileSystem(), os.path.abspath(text).replace(os.sep, "/"))

    @property
    def local(self) -> bool:
        """True when files live on the local disk (fsync and atomic rename are available)."""
        return isinstance(self.fs, pafs.LocalFileSystem)

    def full(self, rel: str) -> str:
        """The filesystem path of a path relative to the root."""
        return f"{self.root}/{rel}"

    def write_parquet(self, target: FilePath, table: pa.Table) -> None:
        """Write ``table`` to ``target`` so that readers see all of it or nothing."""
        directory = self.full(target.path.rsplit("/", 1)[0])
        self._ensure_dir(directory)
        tmp = self.full(target.tmp_path)
        with self.fs.open_output_stream(tmp) as sink:
            pq.write_table(
                table,
                sink,
                compression="zstd",
                row_group_size=ROW_GROUP_SIZE,
                write_statistics=True,
                write_page_index=True,
                store_schema=True,
            )
        crash_points.reached("tmp_written")
        if self.local:
            _fsync_path(tmp)
        crash_points.reached("tmp_synced")
        self.fs.move(tmp, self.full(target.path))
        crash_points.reached("renamed")

    def sync_dir(self, rel_dir: str) -> None:
        """Make renames inside ``rel_dir`` durable (a no-op off the local disk)."""
        if self.local:
            _fsync_path(self.full(rel_dir), directory=True)

    def _ensure_dir(self, directory: str) -> None:
        if directory in self._known_dirs:
            return
        if self.fs.get_file_info(directory).type != pafs.FileType.Directory:
            self.fs.create_dir(directory, recursive=True)
            if self.local:
                # The new directory's entry must be durable too, up to the root.
                parent = directory.rsplit("/", 1)[0]
                while len(parent) >= len(self.root):
                    _fsync_path(parent, directory=True)
                    parent = parent.rsplit("/", 1)[0]
        self._known_dirs.add(directory)

    def files(self) -> Iterator[str]:
        """Relative paths of every file under the kind directories (published, temporary or foreign)."""
        for kind in KINDS:
            selector = pafs.FileSelector(self.full(kind), recursive=True, allow_not_found=True)
            for info in self.fs.get_file_info(selector):
                if info.type == pafs.FileType.File:
                    yield info.path[len(self.root) + 1 :].replace(os.sep, "/")

    def delete(self, rel: str) -> None:
        """Remove a file; one already gone is fine (a crashed run may have removed it)."""
        with suppress(FileNotFoundError):
            self.fs.delete_file(self.full(rel))

    def read_table(self, rel: str) -> pa.Table:
        """Read one archive file whole, in its stored schema."""
        with self.fs.open_input_file(self.full(rel)) as source:
            return pq.read_table(source)

    def read_marker(self) -> dict[str, Any] | None:
        """The archive's identity marker, or None when there is none yet."""
        path = self.full(MARKER)
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(path) as source:
            loaded: dict[str, Any] = json.loads(source.read().decode())
            return loaded

    def write_marker(self, content: dict[str, Any]) -> None:
        """Create the identity marker (written like any other file: whole or not at all)."""
        self._ensure_dir(self.root)
        tmp = self.full(f".{MARKER}.tmp")
        with self.fs.open_output_stream(tmp) as sink:
            sink.write(json.dumps(content, indent=2, sort_keys=True).encode() + b"\n")
        if self.local:
            _fsync_path(tmp)
        self.fs.move(tmp, self.full(MARKER))
        if self.local:
            _fsync_path(self.root, directory=True)


def _fsync_path(path: str, *, directory: bool = False) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if directory else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
