"""A search document per archived run version, so a search scans one column instead of eight.

Searching the archive directly means decoding every attempt's step key, error and
output (five attempts per run and more) on every search. Instead, the reader keeps
one lower-cased document per ``(run, revision)``: the run's own searchable fields
and those of all its attempts, joined by the unit separator so no match can span
two fields. Documents live in a DuckDB database file in a private temporary
directory and are maintained per partition day: archive files are immutable and a
run's rows all sit under its start day, so a day is rebuilt exactly when its list
of files changes (an export or a compaction touched it) and every other day is
reused. The first search of a reader builds every day once.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import date
from pathlib import Path

import duckdb

from olap.archive import ArchiveFile, Manifest, parquet_scan, sql_string

TABLE = "search_index.docs"
# Days rebuilt per statement: bounds the memory of the per-run aggregation of attempts.
_DAYS_PER_BUILD = 8

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
        self._lock = threading.Lock()

    @contextmanager
    def current(self, cur: duckdb.DuckDBPyConnection, manifest: Manifest) -> Iterator[str]:
        """Bring the documents in line with ``manifest`` and hold them there while the caller reads ``TABLE``."""
        with self._lock:
            self._refresh(cur, manifest)
            yield TABLE

    def _refresh(self, cur: duckdb.DuckDBPyConnection, manifest: Manifest) -> None:
        by_day: dict[date, dict[str, list[ArchiveFile]]] = {}
        for kind in ("runs", "attempts"):
            for f in manifest.files.get(kind, ()):
                by_day.setdefault(f.started_date, {"runs": [], "attempts": []})[kind].append(f)
        wanted = {
            day: tuple(sorted(f.location for group in kinds.values() for f in group)) for day, kinds in by_day.items()
        }
        stale = [day for day in self._days if wanted.get(day) != self._days[day]]
        fresh = sorted(day for day in wanted if self._days.get(day) != wanted[day])
        if stale:
            cur.execute(f"DELETE FROM {TABLE} WHERE list_contains($days, started_date)", {"days": stale})
            for day in stale:
                del self._days[day]
        for start in range(0, len(fresh), _DAYS_PER_BUILD):
            days = fresh[start : start + _DAYS_PER_BUILD]
            runs = [f for day in days for f in by_day[day]["runs"]]
            attempts = [f for day in days for f in by_day[day]["attempts"]]
            if runs:
                empty = "(SELECT NULL::UUID AS run_id, NULL::BIGINT AS revision, NULL::VARCHAR AS step_key,"
                empty += " NULL::VARCHAR AS error_message, NULL::VARCHAR AS output_json WHERE FALSE)"
                cur.execute(
                    _BUILD.format(
                        table=TABLE, runs=parquet_scan(runs), attempts=parquet_scan(attempts) if attempts else empty
                    )
                )
            for day in days:
                self._days[day] = wanted[day]

    def close(self) -> None:
        """Detach the documents and delete their directory."""
        # The connection may be closing anyway; the files go below either way.
        with suppress(duckdb.Error):
            self._con.execute("DETACH search_index")
        shutil.rmtree(self._dir, ignore_errors=True)
