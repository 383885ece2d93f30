"""The two sides a reader draws on, and one call's consistent view of them.

``Sources`` holds what lives as long as a ``RunAnalytics``: the PostgreSQL reader,
the archive root, one DuckDB database and the archive cache (the manifest and what
is derived from it, rebuilt when the manifest changes). ``Sources.call`` opens one
call's view: it reads the live side in one snapshot, registers those Arrow tables
and the hidden sets in a fresh DuckDB cursor, and works out which partition days
need the visibility anti-joins (``olap.unified``). Queries run through ``Call.run``.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from olap import archive, live, unified
from olap.archive import Manifest
from olap.live import LiveSource, Snapshot
from olap.search_index import SearchIndex
from oltp.errors import DatabaseError, StoreUnavailable

T = TypeVar("T")
LiveReads = Callable[[Snapshot], dict[str, pa.Table]]

# A file listed in a snapshot may be deleted by a compaction before DuckDB opens it;
# a fresh snapshot then lists its replacement.
_FILE_RACE_RETRIES = 3
_PARAM = re.compile(r"\$([a-z_]+)")
_EMPTY_KEYS = unified.EMPTY_KEYS
_EMPTY_HIDDEN = unified.EMPTY_HIDDEN


@dataclass
class ArchiveCache:
    """What is derived from one manifest, kept until the manifest changes."""

    manifest: Manifest
    # Archive-only readers: older copies of runs exported more than once.
    hidden: pa.Table | None = None
    flow_ids: frozenset[uuid.UUID] | None = None


@dataclass
class Call:
    """One call's DuckDB cursor, the archive files it may read and the days needing anti-joins."""

    cur: duckdb.DuckDBPyConnection
    cache: ArchiveCache
    shadowed: frozenset[date]

    @property
    def manifest(self) -> Manifest:
        """The visible archive files of this call's snapshot."""
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
        """SELECTs over the visible archive rows of ``kind`` started in ``[since, until)``, alias ``a``."""
        files = self.manifest.select(kind, since, until)
        return unified.archive_parts(files, self.shadowed, fields, where, "id" if kind == "runs" else "run_id")


class Sources:
    """PostgreSQL, the archive and the DuckDB database of one reader; thread-safe."""

    def __init__(self, dsn: str | None, archive_root: str | None, schema: str) -> None:
        self.live = LiveSource(dsn, schema) if dsn is not None else None
        self.archive_root = archive_root
        self._duck = duckdb.connect()
        self._duck.execute("SET GLOBAL TimeZone = 'UTC'")
        self._lock = threading.Lock()
        self._cache = ArchiveCache(Manifest(None, {}))
        self._index: SearchIndex | None = None
        self._closed = False

    def search_index(self) -> SearchIndex:
        """The archive's search documents, created on first use."""
        with self._lock:
            if self._index is None:
                self._index = SearchIndex(self._duck)
            return self._index

    def close(self) -> None:
        """Close the PostgreSQL connection and the DuckDB database."""
        self._closed = True
        if self.live is not None:
            self.live.close()
        if self._index is not None:
            self._index.close()
        self._duck.close()

    def retry(self, work: Callable[[], T]) -> T:
        """Run ``work``, starting over when a listed archive file vanished under it."""
        # Every reporting call comes through here: a closed reader is the store's error,
        # like a closed connection pool, not DuckDB's "connection already closed".
        if self._closed:
            raise StoreUnavailable("the reader is closed")
        for attempt in range(_FILE_RACE_RETRIES):
            try:
                return work()
            except duckdb.IOException as exc:
                if attempt == _FILE_RACE_RETRIES - 1:
                    raise StoreUnavailable(f"archive file unreadable: {exc}") from exc
        raise AssertionError("unreachable")

    @contextmanager
    def call(self, read_live: LiveReads) -> Iterator[Call]:
        """Snapshot the live side, register its tables and the hidden sets in a fresh cursor."""
        tables: dict[str, pa.Table] = {}
        with self.live.snapshot() if self.live is not None else nullcontext(None) as snap:
            cache = self._refresh(snap)
            if snap is not None:
                tables = read_live(snap)
                tables.setdefault("hidden_pairs", live.superseded(snap))
        cur = self._duck.cursor()
        try:
            if cache.hidden is not None:
                tables.setdefault("hidden_pairs", cache.hidden)
            for name, table in tables.items():
                cur.register(name, table)
            empty = {"live_keys": _EMPTY_KEYS, "hidden_pairs": _EMPTY_HIDDEN}
            empty.update({f"live_{kind}": unified.EMPTY[kind] for kind in archive.KINDS})
            for name, relation in empty.items():
                if name not in tables:
                    cur.execute(f"CREATE TEMP VIEW {name} AS {relation}")
            shadowed = frozenset(r[0] for r in cur.execute(unified.SHADOWED_DAYS).fetchall())
            yield Call(cur, cache, shadowed)
        except duckdb.IOException:
            raise
        except duckdb.Error as exc:
            raise DatabaseError(f"DuckDB error: {exc}") from exc
        finally:
            cur.close()

    def _refresh(self, snap: Snapshot | None) -> ArchiveCache:
        """The archive cache for the manifest this snapshot sees, rebuilt when it changed."""
        if self.archive_root is None:
            return self._cache
        with self._lock:
            if snap is not None:
                fp = live.fingerprint(snap)
                if fp != self._cache.manifest.fingerprint:
                    self._cache = ArchiveCache(archive.from_rows(self.archive_root, live.manifest_rows(snap), fp))
            else:
                scanned = archive.scan_directory(self.archive_root)
                if scanned.fingerprint != self._cache.manifest.fingerprint:
                    self._cache = ArchiveCache(scanned, hidden=self._older_copies(scanned))
            return self._cache

    def _older_copies(self, manifest: Manifest) -> pa.Table:
        """Archive-only: (run_id, revision, started_date) of every copy below its run's newest revision.

        A run's copies share its start day, so only days with more than one runs file can hold any.
        """
        by_day: dict[date, list[archive.ArchiveFile]] = {}
        for f in manifest.files.get("runs", ()):
            by_day.setdefault(f.started_date, []).append(f)
        files = [f for group in by_day.values() if len(group) > 1 for f in group]
        query = _EMPTY_HIDDEN
        if files:
            query = f"""
                SELECT id AS run_id, revision, CAST(timezone('UTC', started_at) AS DATE) AS started_date
                  FROM (SELECT id, revision, started_at, max(revision) OVER (PARTITION BY id) AS newest
                          FROM {archive.parquet_scan(files)})
                 WHERE revision < newest"""
        cur = self._duck.cursor()
        try:
            return cur.sql(query).to_arrow_table()
        finally:
            cur.close()
