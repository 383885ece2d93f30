"""The two sides a reader draws on, and one call's consistent view of them.

``Sources`` holds what lives as long as a ``RunAnalytics``: the PostgreSQL reader,
the archive reader (``olap.archive``), one DuckDB database and the archive cache
(the manifest of one table version and what is derived from it, rebuilt when the
version changes). ``Sources.call`` opens one call's view: it reads the live side
in one snapshot, including the archive version PostgreSQL recorded (archive-only
readers take the newest), registers the live Arrow tables in a fresh DuckDB
cursor, and works out which partition days need the live-wins anti-join
(``olap.unified``). Queries run through ``Call.run``. DuckDB failing on a data
file is ``ArchiveCorrupt`` naming that file.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from olap import live, unified
from olap.archive import ArchiveReader, Manifest
from olap.live import LiveSource, Snapshot
from oltp.errors import DatabaseError, StoreUnavailable
from sync.archive_identity import check
from sync.archive_location import ArchiveLocation
from sync.archive_table import DataFile
from sync.errors import ArchiveCorrupt

T = TypeVar("T")
LiveReads = Callable[[Snapshot], dict[str, pa.Table]]
KINDS = ("runs", "steps", "attempts")

_PARAM = re.compile(r"\$([a-z_]+)")
# DuckDB names the file it failed on in its message; the Delta layout names data files so.
_FILE_IN_MESSAGE = re.compile(r"""(?:"|')?([^\s"']+\.parquet)""")


@dataclass
class ArchiveCache:
    """What is derived from one table version, kept until the version changes."""

    manifest: Manifest
    flow_ids: frozenset[uuid.UUID] | None = None


@dataclass
class Call:
    """One call's DuckDB cursor, the archive files it may read and the days needing anti-joins."""

    cur: duckdb.DuckDBPyConnection
    cache: ArchiveCache
    shadowed: frozenset[date]
    reader: ArchiveReader | None

    @property
    def manifest(self) -> Manifest:
        """The archive files of this call's snapshot."""
        return self.cache.manifest

    def run(self, query: str, params: dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
        """Execute with exactly the named parameters the text uses (DuckDB rejects extra ones)."""
        used = set(_PARAM.findall(query))
        return self.cur.execute(query, {k: v for k, v in (params or {}).items() if k in used})

    def archive_parts(
        self,
        kind: str,
        fields: str,
        where: str = "TRUE",
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[str]:
        """SELECTs over the visible archive rows of ``kind`` whose run started in ``[since, until)``, alias ``a``."""
        if self.reader is None:
            return []
        files = self.manifest.select(since, until)
        return unified.archive_parts(self.reader, self.cur, kind, files, self.shadowed, fields, where)

    def archive_parts_of(self, kind: str, files: list[DataFile], fields: str, where: str = "TRUE") -> list[str]:
        """Like ``archive_parts`` over chosen ``files``."""
        if self.reader is None or not files:
            return []
        return unified.archive_parts(self.reader, self.cur, kind, files, self.shadowed, fields, where)

    def indexed_hits(self, files: list[DataFile], term: bytes) -> tuple[pa.Table | None, list[DataFile]]:
        """Archive runs of ``files`` holding ``term`` found by the search indexes, and the files to scan.

        The hits carry ``search_index.KEY_COLUMNS`` and ``shadowed`` (their day holds live runs).
        """
        if self.reader is None or not files:
            return None, list(files)
        answered, scanned = self.reader.search(files, term)
        if not answered:
            return None, scanned
        tables = [
            hits.append_column("shadowed", pa.array([file.started_date in self.shadowed] * hits.num_rows, pa.bool_()))
            for file, hits in answered
        ]
        return pa.concat_tables(tables), scanned

    def register(self, name: str, table: pa.Table) -> None:
        """Make ``table`` readable as ``name`` in this call's queries."""
        # DuckDB registers only on a cursor without an open result; the open one was read already.
        with suppress(duckdb.Error):
            self.cur.fetchall()
        self.cur.register(name, table)

    def relation(self, kind: str, files: list[DataFile], where: str = "TRUE") -> str:
        """All archive rows of ``kind`` in ``files`` (raw rows filtered by ``where``, alias ``r``)."""
        assert self.reader is not None
        return self.reader.relation(self.cur, kind, files, where)


class Sources:
    """PostgreSQL, the archive and the DuckDB database of one reader; thread-safe."""

    def __init__(self, dsn: str | None, archive: ArchiveLocation | None, schema: str) -> None:
        self.live = LiveSource(dsn, schema) if dsn is not None else None
        self.archive = ArchiveReader(archive) if archive is not None else None
        self._duck = duckdb.connect()
        self._duck.execute("SET GLOBAL TimeZone = 'UTC'")
        # Empty live tables, made once: a call registers the live tables it read in its
        # own cursor (temporary views, which DuckDB resolves before these).
        for name, relation in unified.EMPTY_LIVE.items():
            self._duck.execute(f"CREATE VIEW {name} AS {relation}")
        self._lock = threading.Lock()
        self._cache = ArchiveCache(Manifest(None))
        self._closed = False
        # Calls in progress: DuckDB refuses to close a database one of them is querying (it does
        # not wait), so ``close`` leaves the connections to the last call that ends.
        self._calls = 0

    def close(self) -> None:
        """Refuse new calls; close the PostgreSQL connection and the DuckDB database once no call is in progress."""
        with self._lock:
            self._closed = True
            busy = self._calls > 0
        if not busy:
            self._close_connections()

    def _close_connections(self) -> None:
        if self.live is not None:
            self.live.close()
        self._duck.close()

    def retry(self, work: Callable[[], T]) -> T:
        """Run ``work``; a data file DuckDB cannot read is ``ArchiveCorrupt`` naming it."""
        # Every reporting call comes through here: a closed reader is the store's error,
        # like a closed connection pool, not DuckDB's "connection already closed".
        if self._closed:
            raise StoreUnavailable("the reader is closed")
        try:
            return work()
        except (duckdb.IOException, duckdb.InvalidInputException, duckdb.InternalException) as exc:
            found = _FILE_IN_MESSAGE.search(str(exc))
            if found is None:
                self._name_damaged(exc)
                raise DatabaseError(f"DuckDB error: {exc}") from exc
            raise ArchiveCorrupt(found.group(1), f"unreadable ({str(exc).splitlines()[0]})") from exc
        except DatabaseError as exc:  # any other DuckDB error (``_view``): it may be a damaged file too
            if isinstance(exc.__cause__, duckdb.Error):
                self._name_damaged(exc.__cause__)
            raise

    def _name_damaged(self, error: duckdb.Error) -> None:
        """``ArchiveCorrupt`` for a listed file that does not decode, when DuckDB's ``error`` named none."""
        files = self._cache.manifest.files
        if self.archive is None or not files:
            return
        try:
            self.archive.find_damaged(files)
        except ArchiveCorrupt as corrupt:
            raise corrupt from error

    @contextmanager
    def call(self, read_live: LiveReads) -> Iterator[Call]:
        """Snapshot the live side, register its tables in a fresh cursor."""
        with self._lock:
            if self._closed:
                raise StoreUnavailable("the reader is closed")
            self._calls += 1
        try:
            with self._view(read_live) as call:
                yield call
        finally:
            with self._lock:
                self._calls -= 1
                last = self._closed and self._calls == 0
            if last:  # closed while this call ran
                self._close_connections()

    @contextmanager
    def _view(self, read_live: LiveReads) -> Iterator[Call]:
        tables: dict[str, pa.Table] = {}
        with self.live.snapshot() if self.live is not None else nullcontext(None) as snap:
            cache = self._refresh(snap)
            if snap is not None:
                tables = read_live(snap)
        cur = self._duck.cursor()
        try:
            for name, table in tables.items():
                cur.register(name, table)
            keys = tables.get("live_keys")
            shadowed = unified.shadowed_days(keys) if keys is not None else frozenset()
            yield Call(cur, cache, shadowed, self.archive)
        except (duckdb.IOException, duckdb.InvalidInputException, duckdb.InternalException):
            raise
        except duckdb.Error as exc:
            raise DatabaseError(f"DuckDB error: {exc}") from exc
        finally:
            cur.close()

    def _refresh(self, snap: Snapshot | None) -> ArchiveCache:
        """The archive cache for the table version this snapshot sees, rebuilt when it changed."""
        if self.archive is None:
            return self._cache
        # Runs only a v1 archive holds would be missing from every answer: refuse instead.
        self.archive.require_upgraded()
        if snap is not None:
            recorded = live.archive_state(snap)
            if recorded is None:
                return ArchiveCache(Manifest(None))
            check(recorded, self.archive.location)
            version: int | None = recorded.version
            if version is not None and version < 0:
                return ArchiveCache(Manifest(None))
            with self._lock:
                if self._cache.manifest.version == version:
                    return self._cache
            manifest = self.archive.manifest(version)
        else:
            manifest = self.archive.manifest(newest=True)
        with self._lock:
            if manifest.version != self._cache.manifest.version:
                self._cache = ArchiveCache(manifest)
            return self._cache
