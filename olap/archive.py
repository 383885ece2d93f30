"""The archive as readers see it: one Delta table version, its files, and typed relations over them.

A reader with a DSN reads the table version PostgreSQL recorded (in the same
snapshot as the live rows); an archive-only reader reads the newest one. The
Delta log lists the version's data files with their partition date, size and row
count (``sync.archive_table``), so a query picks the files of its time window
itself and hands DuckDB only those: partition pruning never depends on the
optimiser. Local files are read by DuckDB's ``read_parquet``; remote ones
(``s3://``) through a pyarrow dataset registered in the DuckDB cursor: the same
relations either way. Every file is checked against the log before its first use
(``sync.integrity``). The relations give archive rows the live side's types (ids
as UUID) and flatten a run's nested steps and attempts.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from olap import file_cache
from olap.file_cache import FileCache
from sync import search_index
from sync.archive_location import ArchiveLocation
from sync.archive_table import ArchiveTable, DataFile
from sync.errors import ArchiveConflict
from sync.integrity import FileCheck
from sync.search_index import Index
from sync.v1_archive import require_upgraded

_DAY = timedelta(days=1)
# Seconds before a file found without a search index is looked at again.
_RECHECK_MISSING = 60.0
_names = itertools.count()

# A run's own fields with the live side's types; alias ``r`` is the raw archive row.
_RUN_COLUMNS = (
    "CAST(r.id AS UUID) AS id, CAST(r.flow_id AS UUID) AS flow_id, r.flow_name, r.status, r.trigger_key,"
    " r.trigger_data_json, r.background_job_id, r.started_at, r.completed_at,"
    " CAST(r.source_run_id AS UUID) AS source_run_id, r.revision, r.search_doc"
)
_STEP_COLUMNS = (
    "run_id, s.step_key, s.step_type, s.status, s.input_json, s.output_json, s.error_message, s.job_id,"
    " s.started_at, s.completed_at, s.attempt_count, revision, run_started_at"
)
_ATTEMPT_COLUMNS = (
    "run_id, s.step_key, s.attempt, s.step_type, s.status, s.input_json, s.output_json, s.error_message,"
    " s.job_id, s.started_at, s.completed_at, revision, run_started_at"
)


class Registrar(Protocol):
    """Where a relation over remote files is registered: a DuckDB connection, or a collector for one."""

    def register(self, name: str, source: object, /) -> object:
        """Make ``source`` (an Arrow object) readable as ``name``."""


@dataclass(frozen=True, slots=True)
class Manifest:
    """The data files of one table version (``version`` None: no archive yet)."""

    version: int | None
    files: tuple[DataFile, ...] = ()

    def select(self, since: datetime | None = None, until: datetime | None = None) -> list[DataFile]:
        """Files whose partition day overlaps ``[since, until)`` (bounds are UTC)."""
        return [
            f
            for f in self.files
            if (since is None or _day_start(f.started_date) + _DAY > since)
            and (until is None or _day_start(f.started_date) < until)
        ]


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@dataclass
class ArchiveReader:
    """One location's table handle and file checks, shared by a reader's calls; thread-safe."""

    location: ArchiveLocation
    _table: ArchiveTable | None = None
    _checks: dict[str, FileCheck] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cache: FileCache | None = None
    _upgraded: bool = False
    _outside_tables: bool = False  # the location was found to be no Delta table's directory (nor inside one)
    # Opened (memory-mapped) search indexes of local data files, by path and size.
    _indexes: dict[tuple[str, int], Index] = field(default_factory=dict)
    # Files found without a usable index, and when (asked again after a while: compaction may add it).
    _no_index: dict[tuple[str, int], float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._cache = file_cache.from_env(self.location)

    def require_upgraded(self) -> None:
        """``ArchiveUpgradeRequired`` while the location holds a v1 archive (checked until it passes once)."""
        if not self._upgraded:
            require_upgraded(self.location)
            self._upgraded = True

    def manifest(self, version: int | None = None, *, newest: bool = False) -> Manifest:
        """The files of ``version``, or of the newest version when ``newest``."""
        with self._lock:
            if self._table is None or not self._table.exists:
                self._table = ArchiveTable.open(self.location)
            table = self._table
            if not table.exists:
                self._require_outside_tables()
                return Manifest(None)
            if newest:
                table.refresh()
            elif version is not None and version != table.version:
                table = self._table = ArchiveTable.open(self.location, version)
            files = tuple(table.files())
            # Indexes of files that left the table are closed (one reader follows one table).
            listed = {(f.path, f.size) for f in files}
            for key in [k for k in self._indexes if k not in listed]:
                del self._indexes[key]
            for key in [k for k in self._no_index if k not in listed]:
                del self._no_index[key]
            return Manifest(table.version, files)

    def _require_outside_tables(self) -> None:
        # ``<archive>/runs`` given for ``<archive>``: no table at ``<archive>/runs/runs``, so every answer
        # would be silently empty (jobs and readers with a DSN refuse it with ``ArchiveConflict``).
        if not self._outside_tables:
            where = self.location.in_table()
            if where is not None:
                raise ArchiveConflict(
                    f"{self.location.uri} is {where}, not an archive: point the reader at the archive (the"
                    " location that holds runs/)"
                )
            self._outside_tables = True

    @property
    def table_id(self) -> str | None:
        """The id of the table at the location (None when there is none)."""
        with self._lock:
            return None if self._table is None else self._table.table_id

    def check(self, files: Sequence[DataFile]) -> ArchiveLocation:
        """Raise ``ArchiveCorrupt`` for a file that is not what the log says (its local copy, if cached).

        Returns where the files were checked, which is where they are read from.
        """
        source = self._source(files)
        with self._lock:
            check = self._checks.get(source.uri)
            if check is None:
                check = self._checks[source.uri] = FileCheck(source)
        check.check(files)
        return source

    def find_damaged(self, files: Sequence[DataFile]) -> None:
        """``ArchiveCorrupt`` naming the first of ``files`` that does not decode, where they are read from.

        For a DuckDB error that names no file (a damaged page header: "TProtocolException"): the
        culprit is among the files the call read. Every page is decoded, which costs, but only on
        that error's path.
        """
        source = self.check(files)
        with self._lock:
            check = self._checks[source.uri]
        for file in files:
            check.decode(file)

    def readable(self, files: Sequence[DataFile]) -> list[str]:
        """The local paths a scan of ``files`` reads (none when they are read from object storage in place)."""
        source = self._source(files)
        return [source.file_uri(f.path) for f in files] if source.is_local else []

    def _source(self, files: Sequence[DataFile]) -> ArchiveLocation:
        """Where ``files`` are read from: the location itself, or the local cache of a remote one."""
        if self._cache is None:
            return self.location
        self._cache.fetch(files)
        return self._cache.location

    def search(self, files: Sequence[DataFile], term: bytes) -> tuple[list[tuple[DataFile, pa.Table]], list[DataFile]]:
        """Runs of ``files`` whose lower-cased document holds ``term`` (lower-cased), from the files' indexes.

        Returns the hits of each file answered by its index (``search_index.KEY_COLUMNS``)
        and the files that must be scanned instead: no valid index, or too many candidates.
        """
        bits = search_index.term_bits(term)
        if bits is None or not files:
            return [], list(files)
        self.check(files)
        indexes = [self._index(file) for file in files]
        opened = [(file, index) for file, index in zip(files, indexes, strict=True) if index is not None]
        found = search_index.search(term, bits, [index for _, index in opened])
        answered = [(file, hits) for (file, _), hits in zip(opened, found, strict=True) if hits is not None]
        done = {file.path for file, _ in answered}
        return answered, [file for file in files if file.path not in done]

    def _index(self, file: DataFile) -> Index | None:
        """``file``'s search index, memory-mapped from local disk (the cache's copy for a remote archive)."""
        key = (file.path, file.size)
        with self._lock:
            index = self._indexes.get(key)
            missed = self._no_index.get(key)
        if index is not None:
            return index
        if missed is not None and time.monotonic() - missed < _RECHECK_MISSING:
            return None
        if self.location.is_local:
            index = search_index.open_index(self.location, file)
        elif self._cache is None:
            # Read whole for this search: kept, they would hold the archive's documents in memory.
            return search_index.open_index(self.location, file)
        elif self._cache.fetch_search_index(file):
            index = search_index.open_index(self._cache.location, file)
            if index is None:
                # The remote's index may have been rewritten since (compaction upgrades older formats).
                self._cache.drop_search_index(file)
        with self._lock:
            if index is not None:
                self._indexes[key] = index
            elif not self.location.is_local:
                self._no_index[key] = time.monotonic()  # a request per file and search is not free
        return index

    def scan(self, cur: Registrar, files: Sequence[DataFile], *, arrow: bool = False) -> str:
        """A relation over exactly ``files`` (at least one), usable in ``cur``'s SQL.

        ``arrow`` registers a pyarrow dataset even for local files: the form a DuckDB connection
        without external access (no ``read_parquet``) can still read.
        """
        source = self.check(files)
        if source.is_local and not arrow:
            listed = ", ".join(sql_string(source.file_uri(f.path)) for f in files)
            return f"read_parquet([{listed}])"
        fs, base = source.filesystem()
        name = f"archive_scan_{next(_names)}"
        if isinstance(cur, duckdb.DuckDBPyConnection):
            # DuckDB registers only on a connection without an open result; the open one (if any)
            # belongs to a statement whose caller has read what it needed (a count, a first row).
            with contextlib.suppress(duckdb.Error):
                cur.fetchall()
        cur.register(name, ds.dataset([f"{base}/{f.path}" for f in files], filesystem=fs, format="parquet"))
        return name

    def runs(self, cur: Registrar, files: Sequence[DataFile], where: str = "TRUE", *, arrow: bool = False) -> str:
        """Archive runs of ``files`` (raw rows filtered by ``where`` over alias ``r``), typed like live runs."""
        return f"(SELECT {_RUN_COLUMNS} FROM {self.scan(cur, files, arrow=arrow)} r WHERE {where})"

    def steps(self, cur: Registrar, files: Sequence[DataFile], where: str = "TRUE", *, arrow: bool = False) -> str:
        """Archive steps of the runs of ``files`` matching ``where`` (alias ``r``), one row each."""
        return self._nested(cur, files, where, "steps", _STEP_COLUMNS, arrow)

    def attempts(self, cur: Registrar, files: Sequence[DataFile], where: str = "TRUE", *, arrow: bool = False) -> str:
        """Archive attempts of the runs of ``files`` matching ``where`` (alias ``r``), one row each."""
        return self._nested(cur, files, where, "attempts", _ATTEMPT_COLUMNS, arrow)

    def relation(
        self,
        cur: Registrar,
        kind: str,
        files: Sequence[DataFile],
        where: str = "TRUE",
        *,
        arrow: bool = False,
    ) -> str:
        """``runs``, ``steps`` or ``attempts`` of ``files``."""
        return {"runs": self.runs, "steps": self.steps, "attempts": self.attempts}[kind](cur, files, where, arrow=arrow)

    def _nested(
        self,
        cur: Registrar,
        files: Sequence[DataFile],
        where: str,
        column: str,
        columns: str,
        arrow: bool,
    ) -> str:
        return (
            f"(SELECT {columns} FROM (SELECT CAST(r.id AS UUID) AS run_id,"
            f" r.revision, r.started_at AS run_started_at, unnest(r.{column}) AS s"
            f" FROM {self.scan(cur, files, arrow=arrow)} r WHERE {where}))"
        )


def sql_string(value: str) -> str:
    """A SQL string literal (DuckDB table functions take file lists as constants)."""
    return "'" + value.replace("'", "''") + "'"
