"""``RunAnalytics``: reporting over live runs in PostgreSQL UNION the Parquet archive.

Each call validates its arguments, reads what it needs from PostgreSQL in one
repeatable-read snapshot (the archive manifest, superseded copies, and the live
rows of its scope, filters pushed down), registers those Arrow tables in a DuckDB
cursor of the instance's one DuckDB database, and lets DuckDB answer over both
sides as one table (``olap.unified``). Either side may be absent: no DSN reads the
archive alone (an analyst's copy of the files, deduplicated by revision), no
archive reads PostgreSQL alone. The DuckDB database, the archive file list and
what is derived from it are cached per instance and refreshed when the manifest
changes. Thread-safe: PostgreSQL reads are serialised on one connection, DuckDB
work runs on a cursor per call.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar

import duckdb
import polars as pl
import pyarrow as pa

from olap import archive, frames, live, search, timeseries, unified
from olap.archive import Manifest
from olap.live import LiveSource, Snapshot
from olap.queries import load
from olap.scope import PgParams, RunScope, duck_where, pg_where
from oltp import arguments as arg
from oltp.clock import Clock, checked_now, wall_clock
from oltp.connection import DEFAULT_SCHEMA, schema_name
from oltp.errors import DatabaseError, InvalidArgument, StoreUnavailable
from oltp.records import (
    DashboardStatistics,
    FlowRunRecord,
    Granularity,
    RunsPage,
    RunTimeseriesBucket,
)

T = TypeVar("T")
_ORDER = "ORDER BY started_at DESC, id DESC"
# A file listed in a snapshot may be deleted by a compaction before DuckDB opens it;
# a fresh snapshot then lists its replacement.
_FILE_RACE_RETRIES = 3

_EMPTY_KEYS = "SELECT NULL::UUID AS id, NULL::TIMESTAMPTZ AS started_at WHERE FALSE"
_EMPTY_HIDDEN = "SELECT NULL::UUID AS run_id, NULL::BIGINT AS revision, NULL::DATE AS started_date WHERE FALSE"


@dataclass
class _ArchiveCache:
    """What is derived from one manifest, kept until the manifest changes."""

    manifest: Manifest
    flow_ids: frozenset[uuid.UUID] | None = None
    # Archive-only readers: older copies of runs exported more than once.
    hidden: pa.Table | None = None


@dataclass
class _Call:
    """One call's view of both sides: its DuckDB cursor and the archive files it may read."""

    cur: duckdb.DuckDBPyConnection
    manifest: Manifest
    shadowed: frozenset[date]


class RunAnalytics:
    """Reporting over live and archived runs as one table (see DESIGN.md, "Reporting")."""

    def __init__(
        self,
        dsn: str | None,
        archive: str | None,
        *,
        schema: str = DEFAULT_SCHEMA,
        clock: Clock | None = None,
    ) -> None:
        if dsn is None and archive is None:
            raise InvalidArgument("RunAnalytics needs a DSN, an archive directory, or both")
        self._live = LiveSource(dsn, schema_name(schema)) if dsn is not None else None
        self._archive = str(archive) if archive is not None else None
        self._clock: Clock = clock or wall_clock
        self._duck = duckdb.connect()
        self._duck.execute("SET GLOBAL TimeZone = 'UTC'")
        self._lock = threading.Lock()
        self._cache = _ArchiveCache(Manifest(None, {}))

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> RunAnalytics:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the PostgreSQL connection and the DuckDB database."""
        if self._live is not None:
            self._live.close()
        self._duck.close()

    # -- reporting -------------------------------------------------------------------------

    def get_runs(self, flow_id: uuid.UUID | None = None, skip: int = 0, take: int = 50) -> list[FlowRunRecord]:
        """A page of runs, newest ``started_at`` first (ties by id descending)."""
        scope = RunScope(flow_id=arg.optional_uuid(flow_id, "flow_id"))
        first, size = arg.paging(skip, take)
        return self._retry(lambda: self._page(scope, first, size, with_count=False)).runs

    def get_runs_page(
        self,
        flow_id: uuid.UUID | None = None,
        status: str | None = None,
        skip: int = 0,
        take: int = 50,
        search: str | None = None,
    ) -> RunsPage:
        """A page of runs matching flow, status and search, and how many match in all."""
        scope = RunScope(
            flow_id=arg.optional_uuid(flow_id, "flow_id"),
            status=None if status is None else arg.run_status(status, case_insensitive=True),
            search=_search_term(search),
        )
        first, size = arg.paging(skip, take)
        return self._retry(lambda: self._page(scope, first, size, with_count=True))

    def get_derived_runs(self, source_run_id: uuid.UUID) -> list[FlowRunRecord]:
        """Runs re-run from ``source_run_id``, newest first."""
        scope = RunScope(source_run_id=arg.run_id(source_run_id, "source_run_id"))
        return self._retry(lambda: self._all_runs(scope))

    def get_statistics(self) -> DashboardStatistics:
        """Distinct flows, running runs, and runs succeeded/failed on the clock's current UTC day."""
        now = checked_now(self._clock)
        day = datetime(now.year, now.month, now.day, tzinfo=UTC)
        return self._retry(lambda: self._statistics(day, day + timedelta(days=1)))

    def get_run_timeseries(
        self,
        granularity: Granularity | str,
        since: datetime,
        until: datetime,
        flow_id: uuid.UUID | None = None,
    ) -> list[RunTimeseriesBucket]:
        """Counts and p50/p95/p99 durations per UTC bucket of ``[since aligned down, until)``."""
        win = timeseries.window(granularity, since, until)
        scope = RunScope(flow_id=arg.optional_uuid(flow_id, "flow_id"), since=win.since, until=win.until)
        if win.buckets == 0:
            return []
        return self._retry(lambda: self._timeseries(win, scope))

    def get_run_detail(self, run_id: uuid.UUID) -> FlowRunRecord | None:
        """An archived run with steps and attempts at its newest archived revision, or None."""
        rid = arg.run_id(run_id)
        return self._retry(lambda: self._archived_detail(rid))

    # -- analyst surface -------------------------------------------------------------------

    def runs(self) -> pl.DataFrame:
        """Every run (live UNION archive, once each), newest first."""
        return self.sql("SELECT * FROM runs ORDER BY started_at DESC, id DESC")

    def steps(self) -> pl.DataFrame:
        """Every step of every run, at the run's winning version."""
        return self.sql("SELECT * FROM steps ORDER BY run_id, step_key")

    def attempts(self) -> pl.DataFrame:
        """Every attempt of every step, at the run's winning version."""
        return self.sql("SELECT * FROM attempts ORDER BY run_id, step_key, attempt")

    def sql(self, query: str) -> pl.DataFrame:
        """Run DuckDB SQL over the views ``runs``, ``steps`` and ``attempts`` of the unified data."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidArgument("query must be a non-empty SQL string")
        return self._retry(lambda: self._sql(query))

    # -- one call ----------------------------------------------------------------------------

    def _retry(self, work: Callable[[], T]) -> T:
        for attempt in range(_FILE_RACE_RETRIES):
            try:
                return work()
            except duckdb.IOException as exc:
                if attempt == _FILE_RACE_RETRIES - 1:
                    raise StoreUnavailable(f"archive file unreadable: {exc}") from exc
        raise AssertionError("unreachable")

    @contextmanager
    def _call(self, read_live: Callable[[Snapshot], dict[str, pa.Table]]) -> Iterator[_Call]:
        """Snapshot the live side, register its tables and the hidden sets in a fresh cursor."""
        tables: dict[str, pa.Table] = {}
        snap_ctx = self._live.snapshot() if self._live is not None else nullcontext(None)
        with snap_ctx as snap:
            cache = self._refresh(snap)
            if snap is not None:
                tables = read_live(snap)
                tables.setdefault("hidden_pairs", live.superseded(snap))
        cur = self._duck.cursor()
        try:
            for name, table in tables.items():
                cur.register(name, table)
            if "live_keys" not in tables:
                _run(cur, f"CREATE TEMP VIEW live_keys AS {_EMPTY_KEYS}")
            if "hidden_pairs" not in tables:
                if cache.hidden is not None:
                    cur.register("hidden_pairs", cache.hidden)
                else:
                    _run(cur, f"CREATE TEMP VIEW hidden_pairs AS {_EMPTY_HIDDEN}")
            for kind in ("runs", "steps", "attempts"):
                if f"live_{kind}" not in tables:
                    _run(cur, f"CREATE TEMP VIEW live_{kind} AS {unified.EMPTY[kind]}")
            shadowed = frozenset(r[0] for r in _run(cur, unified.SHADOWED_DAYS).fetchall())
            yield _Call(cur, cache.manifest, shadowed)
        except duckdb.IOException:
            raise
        except duckdb.Error as exc:
            raise DatabaseError(f"DuckDB error: {exc}") from exc
        finally:
            cur.close()

    def _refresh(self, snap: Snapshot | None) -> _ArchiveCache:
        """The archive cache for the manifest this snapshot sees, rebuilt when it changed."""
        if self._archive is None:
            return self._cache
        with self._lock:
            if snap is not None:
                fp = live.fingerprint(snap)
                if fp != self._cache.manifest.fingerprint:
                    self._cache = _ArchiveCache(archive.from_rows(self._archive, live.manifest_rows(snap), fp))
            else:
                scanned = archive.scan_directory(self._archive)
                if scanned.fingerprint != self._cache.manifest.fingerprint:
                    self._cache = _ArchiveCache(scanned, hidden=self._older_copies(scanned))
            return self._cache

    def _older_copies(self, manifest: Manifest) -> pa.Table:
        """Archive-only: (run_id, revision, started_date) of every copy below its run's newest revision.

        A run's copies share its start day, so only days with more than one runs file can hold any.
        """
        by_day: dict[date, list[archive.ArchiveFile]] = {}
        for f in manifest.files.get("runs", ()):
            by_day.setdefault(f.started_date, []).append(f)
        files = [f for group in by_day.values() if len(group) > 1 for f in group]
        if not files:
            return self._duck.sql(_EMPTY_HIDDEN).to_arrow_table()
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

    # -- the queries -------------------------------------------------------------------------

    def _page(self, scope: RunScope, skip: int, take: int, *, with_count: bool) -> RunsPage:
        keys_where_params = PgParams()
        keys_where = pg_where(scope.immutable(), keys_where_params)
        full_params = PgParams()
        full_where = pg_where(scope, full_params)
        live_total = [0]

        def read(snap: Snapshot) -> dict[str, pa.Table]:
            keys = live.run_keys(snap, keys_where, keys_where_params.values)
            rows = live.runs(snap, full_where, full_params.values, f"{_ORDER} LIMIT {skip + take}")
            if with_count:
                live_total[0] = (
                    keys.num_rows if not scope.has_mutable else live.count(snap, full_where, full_params.values)
                )
            return {"live_keys": keys, "live_runs": rows}

        with self._call(read) as call:
            files = call.manifest.select("runs", scope.since, scope.until)
            where, params = duck_where(scope, "a")
            if scope.search is not None:
                return self._search_page(call, scope, files, where, params, skip, take, live_total[0], with_count)
            n = skip + take
            branches = [f"(SELECT {unified.RUN_FIELDS} FROM live_runs {_ORDER} LIMIT {n})"]
            branches += [
                f"({part} {_ORDER} LIMIT {n})"
                for part in unified.archive_parts(files, call.shadowed, unified.RUN_FIELDS, where)
            ]
            page = _run(
                call.cur,
                load("page").format(branches="\nUNION ALL\n".join(branches)),
                {**params, "take": take, "skip": skip},
            ).fetchall()
            total = 0
            if with_count:
                parts = unified.archive_parts(files, call.shadowed, "1 AS one", where)
                archived = 0
                if parts:
                    row = _run(call.cur, f"SELECT count(*) FROM ({unified.union(parts, '')})", params).fetchone()
                    archived = int(row[0]) if row else 0
                total = live_total[0] + archived
        return RunsPage([frames.run_record(r) for r in page], total)

    def _search_page(
        self,
        call: _Call,
        scope: RunScope,
        files: list[archive.ArchiveFile],
        where: str,
        params: dict[str, Any],
        skip: int,
        take: int,
        live_total: int,
        with_count: bool,
    ) -> RunsPage:
        assert scope.search is not None
        cur = call.cur
        lowered = str(_run(cur, "SELECT lower($t)", {"t": scope.search.text}).fetchone()[0])  # type: ignore[index]
        params = {**params, "term": lowered}
        attempt_files = call.manifest.select("attempts", scope.since, scope.until)
        # The (run_id, revision) pairs of archive attempts that match; the runs side keeps
        # only visible versions, so the pairs need no visibility test of their own.
        if attempt_files:
            _run(
                cur,
                "CREATE OR REPLACE TEMP TABLE matched AS SELECT DISTINCT run_id, revision"
                f" FROM {archive.parquet_scan(attempt_files)} a WHERE {search.duck_attempt_predicate('a', '$term')}",
                {"term": lowered},
            )
        else:
            _run(cur, "CREATE OR REPLACE TEMP TABLE matched (run_id UUID, revision BIGINT)")
        matches = (
            f"({search.duck_run_predicate('a', lowered, '$term')}"
            " OR EXISTS (SELECT 1 FROM matched m WHERE m.run_id = a.id AND m.revision = a.revision))"
        )
        parts = unified.archive_parts(files, call.shadowed, "id, revision, started_at", f"{where} AND {matches}")
        _run(
            cur,
            "CREATE OR REPLACE TEMP TABLE hits AS "
            + unified.union(parts, unified.project("runs", "id, revision, started_at")),
            params,
        )
        total = live_total + int(_run(cur, "SELECT count(*) FROM hits").fetchone()[0]) if with_count else 0  # type: ignore[index]
        _run(
            cur,
            "CREATE OR REPLACE TEMP TABLE page_keys AS SELECT * FROM ("
            " SELECT id, revision, started_at, TRUE AS is_live FROM live_runs"
            " UNION ALL SELECT id, revision, started_at, FALSE FROM hits)"
            f" {_ORDER} LIMIT $take OFFSET $skip",
            {"take": take, "skip": skip},
        )
        bounds = _run(cur, "SELECT min(started_at), max(started_at) FROM page_keys WHERE NOT is_live").fetchone()
        branches = [f"SELECT {unified.RUN_FIELDS} FROM live_runs WHERE id IN (SELECT id FROM page_keys WHERE is_live)"]
        if bounds is not None and bounds[0] is not None:
            lo, hi = bounds[0], bounds[1]
            page_files = call.manifest.select("runs", lo, hi + timedelta(microseconds=1))
            if page_files:
                branches.append(
                    f"SELECT {unified.RUN_FIELDS} FROM {archive.parquet_scan(page_files)} a"
                    " WHERE a.started_at >= $lo AND a.started_at <= $hi AND EXISTS (SELECT 1 FROM page_keys p"
                    " WHERE NOT p.is_live AND p.id = a.id AND p.revision = a.revision)"
                )
            rows = _run(
                cur, f"SELECT * FROM ({' UNION ALL '.join(branches)}) {_ORDER}", {"lo": lo, "hi": hi}
            ).fetchall()
        else:
            rows = _run(cur, f"SELECT * FROM ({branches[0]}) {_ORDER}").fetchall()
        return RunsPage([frames.run_record(r) for r in rows], total)

    def _all_runs(self, scope: RunScope) -> list[FlowRunRecord]:
        params_pg = PgParams()
        where_pg = pg_where(scope, params_pg)

        def read(snap: Snapshot) -> dict[str, pa.Table]:
            rows = live.runs(snap, where_pg, params_pg.values)
            keys = rows.select(["id", "started_at"]) if not scope.has_mutable else None
            if keys is None:
                imm = PgParams()
                keys = live.run_keys(snap, pg_where(scope.immutable(), imm), imm.values)
            return {"live_keys": keys, "live_runs": rows}

        with self._call(read) as call:
            where, params = duck_where(scope, "a")
            files = call.manifest.select("runs", scope.since, scope.until)
            parts = [f"SELECT {unified.RUN_FIELDS} FROM live_runs"]
            parts += unified.archive_parts(files, call.shadowed, unified.RUN_FIELDS, where)
            rows = _run(call.cur, f"SELECT * FROM ({unified.union(parts, '')}) {_ORDER}", params).fetchall()
        return [frames.run_record(r) for r in rows]

    def _statistics(self, day: datetime, next_day: datetime) -> DashboardStatistics:
        counts = [0, 0, 0]
        live_flows: set[uuid.UUID] = set()

        def read(snap: Snapshot) -> dict[str, pa.Table]:
            counts[:] = live.statistics(snap, day.isoformat(), next_day.isoformat())
            live_flows.update(_uuids(live.flow_ids(snap), "flow_id"))
            return {"live_keys": live.run_keys(snap, "TRUE", ())}

        with self._call(read) as call:
            files = call.manifest.select("runs", None, next_day)
            where = "a.completed_at >= $day AND a.completed_at < $next_day AND a.status IN ('Succeeded', 'Failed')"
            parts = unified.archive_parts(files, call.shadowed, "status", where)
            succeeded = failed = 0
            if parts:
                row = _run(
                    call.cur,
                    "SELECT count(*) FILTER (WHERE status = 'Succeeded'), count(*) FILTER (WHERE status = 'Failed')"
                    f" FROM ({unified.union(parts, '')})",
                    {"day": day, "next_day": next_day},
                ).fetchone()
                assert row is not None
                succeeded, failed = int(row[0]), int(row[1])
            flows = live_flows | self._archive_flow_ids(call)
        return DashboardStatistics(
            total_flows=len(flows),
            active_runs=counts[0],
            completed_today=counts[1] + succeeded,
            failed_today=counts[2] + failed,
        )

    def _archive_flow_ids(self, call: _Call) -> frozenset[uuid.UUID]:
        # A run's flow never changes, so the archive's distinct flows depend on its files alone.
        cache = self._cache
        if cache.manifest is not call.manifest:
            cache = _ArchiveCache(call.manifest)
        if cache.flow_ids is None:
            files = call.manifest.select("runs")
            ids: frozenset[uuid.UUID] = frozenset()
            if files:
                rows = _run(call.cur, f"SELECT DISTINCT flow_id FROM {archive.parquet_scan(files)}").fetchall()
                ids = frozenset(r[0] for r in rows)
            cache.flow_ids = ids
        return cache.flow_ids

    def _timeseries(self, win: timeseries.Window, scope: RunScope) -> list[RunTimeseriesBucket]:
        params_pg = PgParams()
        where_pg = pg_where(scope, params_pg)

        def read(snap: Snapshot) -> dict[str, pa.Table]:
            rows = snap.table(
                f"SELECT id, started_at, status, completed_at FROM flow_runs WHERE {where_pg}", params_pg.values
            )
            return {"live_keys": rows.select(["id", "started_at"]), "live_ts": rows}

        with self._call(read) as call:
            fields = "started_at, status, completed_at"
            where, params = duck_where(scope, "a")
            files = call.manifest.select("runs", scope.since, scope.until)
            live_part = f"SELECT {fields} FROM live_ts" if self._live is not None else unified.project("runs", fields)
            parts = [live_part, *unified.archive_parts(files, call.shadowed, fields, where)]
            rows = _run(
                call.cur,
                load("timeseries").format(runs=unified.union(parts, "")),
                {**params, "since_us": win.since_us, "width_us": win.width_us},
            ).fetchall()
        return timeseries.fill(win, rows)

    def _archived_detail(self, run_id: uuid.UUID) -> FlowRunRecord | None:
        found: list[Any] = []

        def read(snap: Snapshot) -> dict[str, pa.Table]:
            found.extend(live.archived_revision(snap, str(run_id)))
            return {}

        with self._call(read) as call:
            manifest = call.manifest
            if self._live is not None:
                if not found or self._archive is None:
                    return None
                revision, started = int(found[0]), found[1]
                day = datetime(started.year, started.month, started.day, tzinfo=UTC)
                runs_files = manifest.select("runs", day, day + timedelta(days=1))
            else:
                runs_files = manifest.select("runs")
                revision = None
            if not runs_files:
                return None
            run_rows = _run(
                call.cur,
                f"SELECT {unified.RUN_FIELDS}, revision FROM {archive.parquet_scan(runs_files)}"
                " WHERE id = $id ORDER BY revision DESC LIMIT 1",
                {"id": run_id},
            ).fetchall()
            if not run_rows or (revision is not None and run_rows[0][-1] < revision):
                return None
            run_row = run_rows[0]
            revision = int(run_row[-1])
            started_at: datetime = run_row[7]
            day = datetime(started_at.year, started_at.month, started_at.day, tzinfo=UTC)
            detail = {}
            for kind, fields in (("steps", unified.STEP_FIELDS), ("attempts", unified.ATTEMPT_FIELDS)):
                kind_files = manifest.select(kind, day, day + timedelta(days=1))
                detail[kind] = (
                    _run(
                        call.cur,
                        f"SELECT {fields} FROM {archive.parquet_scan(kind_files)}"
                        " WHERE run_id = $id AND revision = $revision",
                        {"id": run_id, "revision": revision},
                    ).fetchall()
                    if kind_files
                    else []
                )
        return frames.detail_record(run_row[:-1], detail["steps"], detail["attempts"])

    def _sql(self, query: str) -> pl.DataFrame:
        def read(snap: Snapshot) -> dict[str, pa.Table]:
            runs = live.runs(snap, "TRUE", ())
            return {
                "live_keys": runs.select(["id", "started_at"]),
                "live_runs": runs,
                "live_steps": live.steps(snap),
                "live_attempts": live.attempts(snap),
            }

        with self._call(read) as call:
            for kind, fields, id_column in (
                ("runs", unified.RUN_FIELDS, "id"),
                ("steps", unified.STEP_FIELDS, "run_id"),
                ("attempts", unified.ATTEMPT_FIELDS, "run_id"),
            ):
                parts = [f"SELECT {fields} FROM live_{kind}"]
                parts += unified.archive_parts(call.manifest.select(kind), call.shadowed, fields, id_column=id_column)
                _run(call.cur, f"CREATE OR REPLACE TEMP VIEW {kind} AS {unified.union(parts, '')}")
            try:
                relation = call.cur.sql(query)
            except (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException) as exc:
                raise InvalidArgument(f"invalid query: {exc}") from exc
            if relation is None:  # a statement without a result
                return pl.DataFrame()
            return frames.utc_frame(relation.pl())


_PARAM = re.compile(r"\$([a-z_]+)")


def _run(cur: duckdb.DuckDBPyConnection, query: str, params: dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """Execute with exactly the named parameters the text uses (DuckDB rejects extra ones)."""
    used = set(_PARAM.findall(query))
    return cur.execute(query, {k: v for k, v in (params or {}).items() if k in used})


def _search_term(value: object) -> search.SearchTerm | None:
    return search.search_term(value)


def _uuids(table: pa.Table, name: str) -> list[uuid.UUID]:
    return [v if isinstance(v, uuid.UUID) else uuid.UUID(bytes=v) for v in table.column(name).to_pylist()]
