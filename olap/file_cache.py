"""A local copy of a remote archive's data files, so a reader downloads each file once.

Delta data files never change once written (a new version adds new files), so a
file named in the log can be kept on local disk and read from there for as long
as the reader wants: a dashboard polling an S3 archive would otherwise fetch the
same hundreds of megabytes for every call. The search index of each data file
(``sync.search_index``) is kept the same way. The cache mirrors the table's layout
under ``<cache dir>/<hash of the archive URI>/runs/…``, so it is itself a local
``ArchiveLocation`` that DuckDB reads with ``read_parquet`` and the size and footer
checks treat like any other (``sync.integrity``).

A download goes to a hidden temporary name beside its target and is renamed into
place only when its size is the one the Delta log lists, so concurrent readers
(threads or processes) never read a partial copy and a wrong size is
``ArchiveCorrupt`` naming the remote file. Directories are created owner-only.
When the copies outgrow the size limit, the least recently used files not needed
by the current call are deleted.

Settings (environment): ``FLOWRUN_ARCHIVE_CACHE`` a directory, or ``off`` to read
remote files in place (default ``$XDG_CACHE_HOME/flowrun/archive``, else
``~/.cache/flowrun/archive``); ``FLOWRUN_ARCHIVE_CACHE_SIZE`` the limit in bytes,
with an optional K/M/G/T suffix (default 8G).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.fs as pafs

from oltp.errors import InvalidArgument
from sync.archive_location import TABLE, ArchiveLocation
from sync.archive_table import DataFile
from sync.errors import ArchiveCorrupt

DEFAULT_LIMIT = 8 << 30
_DOWNLOADS = 4  # parallel transfers: object stores serve one stream per request
_CHUNK = 8 << 20
_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40}


def parse_size(text: str) -> int:
    """``512M``, ``8G``, ``1073741824`` as bytes; ``InvalidArgument`` for anything else."""
    match = _SIZE.match(text)
    if match is None:
        raise InvalidArgument(f"FLOWRUN_ARCHIVE_CACHE_SIZE must be a size such as 512M or 8G, got {text!r}")
    return int(match.group(1)) << _UNITS[match.group(2).lower()]


def from_env(remote: ArchiveLocation, env: Mapping[str, str] | None = None) -> FileCache | None:
    """The cache for ``remote`` as the environment configures it; None for a local archive or ``off``."""
    env = os.environ if env is None else env
    if remote.is_local:
        return None
    setting = env.get("FLOWRUN_ARCHIVE_CACHE", "").strip()
    if setting.lower() in ("off", "0", "false", "no"):
        return None
    if setting:
        root = Path(setting).expanduser()
    else:
        base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = Path(base) / "flowrun" / "archive"
    limit = parse_size(env["FLOWRUN_ARCHIVE_CACHE_SIZE"]) if env.get("FLOWRUN_ARCHIVE_CACHE_SIZE") else DEFAULT_LIMIT
    return FileCache(remote, root, limit)


class FileCache:
    """Local copies of one remote archive's data files; thread-safe, shared by processes."""

    def __init__(self, remote: ArchiveLocation, root: Path, limit: int) -> None:
        self.remote = remote
        self.limit = limit
        key = hashlib.sha256(remote.uri.encode()).hexdigest()[:24]
        self.dir = root / key
        _private_dirs(self.dir)
        # The copies form a local archive of their own: same table name, same relative paths.
        self.location = ArchiveLocation.resolve(self.dir)
        self._lock = threading.Lock()

    def path(self, file: DataFile) -> Path:
        """Where the copy of ``file`` lives."""
        return self.dir / TABLE / file.path

    def fetch(self, files: Sequence[DataFile]) -> None:
        """Make sure every file of ``files`` has a complete local copy; mark them used."""
        missing = [f for f in files if not self._present(f)]
        if missing:
            fs, base = self.remote.filesystem()
            with ThreadPoolExecutor(min(_DOWNLOADS, len(missing))) as pool:
                for _ in pool.map(lambda f: self._download(fs, f"{base}/{f.path}", f), missing):
                    pass
        for file in files:
            # The access time is not reliable (noatime mounts): the modification time marks use.
            os.utime(self.path(file))
        if missing:
            self._evict(keep={self.path(f) for f in files})

    def fetch_search_index(self, file: DataFile) -> bool:
        """Make sure the local copy of ``file``'s search index is there; False when the remote has none.

        Indexes are immutable like data files (named after theirs), so a copy stays good; one
        that turns out to describe another file is simply not used (``sync.search_index``).
        """
        relative = self.remote.search_index_path(file.path)
        target = self.dir / TABLE / relative
        if not target.exists():
            fs, base = self.remote.filesystem()
            _private_dirs(target.parent)
            tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
            try:
                with fs.open_input_stream(f"{base}/{relative}") as stream, open(tmp, "wb") as out:
                    while chunk := stream.read(_CHUNK):
                        out.write(chunk)
                os.replace(tmp, target)
            except FileNotFoundError:
                return False
            finally:
                tmp.unlink(missing_ok=True)
        os.utime(target)
        return True

    def drop_search_index(self, file: DataFile) -> None:
        """Forget the copy of ``file``'s index: one found unusable (of an older format, say) is fetched again."""
        (self.dir / TABLE / self.remote.search_index_path(file.path)).unlink(missing_ok=True)

    def _present(self, file: DataFile) -> bool:
        try:
            return self.path(file).stat().st_size == file.size
        except FileNotFoundError:
            return False

    def _download(self, fs: pafs.FileSystem, source: str, file: DataFile) -> None:
        target = self.path(file)
        _private_dirs(target.parent)
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
        shown = self.remote.file_uri(file.path)
        try:
            with fs.open_input_stream(source) as stream, open(tmp, "wb") as out:
                while chunk := stream.read(_CHUNK):
                    out.write(chunk)
            size = tmp.stat().st_size
            if size != file.size:
                listed = f"{size} bytes where the Delta log lists {file.size} (truncated or replaced)"
                raise ArchiveCorrupt(shown, listed)
            os.replace(tmp, target)
        except FileNotFoundError as exc:
            raise ArchiveCorrupt(shown, "missing") from exc
        finally:
            tmp.unlink(missing_ok=True)

    def _evict(self, keep: set[Path]) -> None:
        """Delete least recently used copies until the cache is within its limit."""
        with self._lock:
            copies = []
            for path in [*(self.dir / TABLE).rglob("*.parquet"), *(self.dir / TABLE).rglob("*.arrow")]:
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue  # another process evicted it
                copies.append((stat.st_mtime, stat.st_size, path))
            total = sum(size for _, size, _ in copies)
            for _, size, path in sorted(copies):
                if total <= self.limit:
                    break
                if path in keep:
                    continue
                path.unlink(missing_ok=True)
                total -= size


def _private_dirs(path: Path) -> None:
    """``mkdir -p`` creating every missing directory owner-only (``parents=True`` would use the umask)."""
    if path.is_dir():
        return
    _private_dirs(path.parent)
    path.mkdir(mode=0o700, exist_ok=True)
