"""A search document per archived run version, so a search scans one column instead of eight.

Searching the archive directly means decoding every attempt's step key, error and
output (five attempts per run and more) on every search. Instead, the reader keeps
one lower-cased document per ``(run, revision)``: the run's own searchable fields
and those of all its attempts, joined by the unit separator so no match can span
two fields. Documents live in a DuckDB database file in a private temporary
directory and are maintained per partition day: archive files are immutable and a
run's rows all sit under its start day, so a day is rebuilt exactly when its list
of files changes (an export or a compaction touched it) and every other day is
reused. A few changed days are rebuilt inside the search that notices them; a
reader's first search (every day at once) starts a background build and, like
every search until it is done, reads the Parquet files directly meanwhile.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import date
from pathlib import Path

import duckdb

from olap.archive import ArchiveFile, Manifest, parquet_scan, sql_string

log = logging.getLogger(__name__)

TABLE = "search_index.docs"
# Days rebuilt per statement: bounds the memory of the per-run aggregation of attempts.
_DAYS_PER_BUILD = 8
# Days rebuilt inside a search call; more are built in the background.
_INLINE_DAYS = 3

_CREATE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    started_date DATE, id UUID, revision BIGINT, started_at TIMESTAMPTZ, flow_id UUID,
    source_run_id UUID, status VARCHAR, doc VARCHAR
)
"""

_BUILD = """
INSERT INTO {table}
SELECT CAST(timezone('UTC', r.started_at) AS DATE), r.id, r.revision, r.started_at, r.flow_id, r.source_run_id,
       r.status,
       lower(concat_ws(chr(31), CAST(r.id AS VARCHAR), r.flow_name, r.trigger_key, r.status,
                       coalesce(r.background_job_id, ''), coalesce(a.doc, '')))
  FROM {runs} r
  LEFT JOIN (
        SELECT run_id, revision,
               string_agg(concat_ws(chr(31), step_key, coalesce(error_message, ''), coalesce(output_json, '')),
                          chr(31)) AS doc
          FROM {attempts}
         GROUP BY run_id, revision
  ) a ON a.run_id = r.id AND a.revision = r.revision
 ORDER BY r.started_at
"""


class SearchIndex:
    """Search documents of the archive's run versions, kept in step with the manifest."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="flowrun-search-"))
        self._con = con
        con.execute(f"ATTACH {sql_string(str(self._dir / 'search.duckdb'))} AS search_index")
        con.execute(_CREATE)
        self._days: dict[date, tuple[str, ...]] = {}
        # Held while the documents change and while a search reads them, so a search never
        # sees documents of another call's manifest.
        self._lock = threading.Lock()
        self._building = threading.Event()
        self._builder: threading.Thread | None = None
        self._builder_cursor: duckdb.DuckDBPyConnection | None = None

    @contextmanager
    def current(self, cur: duckdb.DuckDBPyConnection, manifest: Manifest) -> Iterator[str | None]:
        """``TABLE`` in line with ``manifest`` while the caller reads it, or None to read the files instead.

        A few changed days are rebuilt on the spot; more (a reader's first search, a large
        compaction) are built in the background, and searches meanwhile get None.
        """
        table = self._prepare(cur, manifest)
        try:
            yield table
        finally:
            if table is not None:
                self._lock.release()

    def _prepare(self, cur: duckdb.DuckDBPyConnection, manifest: Manifest) -> str | None:
        if self._building.is_set():
            return None
        self._lock.acquire()
        try:
            plan = _Plan(manifest, self._days)
            if self._building.is_set() or len(plan.fresh) > _INLINE_DAYS:
                if not self._building.is_set():
                    self._building.set()
                    self._builder = threading.Thread(
                        target=self._build, args=(manifest,), name="flowrun-search-index", daemon=True
                    )
                    self._builder.start()
                self._lock.release()
                return None
            self._apply(cur, plan)
            return TABLE
        except BaseException:
            self._lock.release()
            raise

    def build(self, cur: duckdb.DuckDBPyConnection, manifest: Manifest) -> None:
        """Bring the documents in line with ``manifest`` now, after any background build."""
        builder = self._builder
        if builder is not None:
            builder.join()
        with self._lock:
            self._apply(cur, _Plan(manifest, self._days))

    def _build(self, manifest: Manifest) -> None:
        try:
            with self._lock:
                cur = self._builder_cursor = self._con.cursor()
                try:
                    self._apply(cur, _Plan(manifest, self._days))
                finally:
                    self._builder_cursor = None
                    cur.close()
        except duckdb.Error:
            # A file compacted away meanwhile, or the reader closing: the next search starts over.
            log.info("building search documents stopped", exc_info=True)
        finally:
            self._building.clear()

    def _apply(self, cur: duckdb.DuckDBPyConnection, plan: _Plan) -> None:
        if plan.stale:
            cur.execute(f"DELETE FROM {TABLE} WHERE list_contains($days, started_date)", {"days": plan.stale})
            for day in plan.stale:
                del self._days[day]
        for start in range(0, len(plan.fresh), _DAYS_PER_BUILD):
            days = plan.fresh[start : start + _DAYS_PER_BUILD]
            runs = [f for day in days for f in plan.files[day]["runs"]]
            attempts = [f for day in days for f in plan.files[day]["attempts"]]
            if runs:
                cur.execute(
                    _BUILD.format(
                        table=TABLE, runs=parquet_scan(runs), attempts=parquet_scan(attempts) if attempts else _NONE
                    )
                )
            for day in days:
                self._days[day] = plan.wanted[day]

    def close(self) -> None:
        """Stop a background build, detach the documents and delete their directory."""
        builder, cursor = self._builder, self._builder_cursor
        if builder is not None and builder.is_alive():
            if cursor is not None:
                with suppress(duckdb.Error):
                    cursor.interrupt()
            builder.join(timeout=60)
        # The connection may be closing anyway; the files go below either way.
        with suppress(duckdb.Error):
            self._con.execute("DETACH search_index")
        shutil.rmtree(self._dir, ignore_errors=True)


_NONE = (
    "(SELECT NULL::UUID AS run_id, NULL::BIGINT AS revision, NULL::VARCHAR AS step_key,"
    " NULL::VARCHAR AS error_message, NULL::VARCHAR AS output_json WHERE FALSE)"
)


class _Plan:
    """Which days' documents to drop and to (re)build so they match a manifest."""

    def __init__(self, manifest: Manifest, indexed: dict[date, tuple[str, ...]]) -> None:
        self.files: dict[date, dict[str, list[ArchiveFile]]] = {}
        for kind in ("runs", "attempts"):
            for f in manifest.files.get(kind, ()):
                self.files.setdefault(f.started_date, {"runs": [], "attempts": []})[kind].append(f)
        self.wanted = {
            day: tuple(sorted(f.location for group in kinds.values() for f in group))
            for day, kinds in self.files.items()
        }
        self.stale = [day for day in indexed if self.wanted.get(day) != indexed[day]]
        self.fresh = sorted(day for day in self.wanted if indexed.get(day) != self.wanted[day])
