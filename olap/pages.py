"""Run lists: a page newest first with its total, a search page, and every run of a scope.

A page takes the first ``skip + take`` rows of each side in the final order and
merges them: the global page is always among those. The archive side reads its
partition days newest first and stops as soon as older days cannot reach the
page, so page one touches one day's files, not ninety. A search first collects
the matching archive runs once, from the lower-cased search document the export
wrote beside each run (no per-reader build, no warm-up), then counts and pages
over them, fetching full rows only for the page.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from olap import frames, live, search, unified
from olap.live import Snapshot
from olap.queries import load
from olap.scope import PgParams, RunScope, duck_where, pg_where
from olap.session import Call, Sources
from oltp.records import FlowRunRecord, RunsPage

ORDER = "ORDER BY started_at DESC, id DESC"
_KEYS = "id, revision, started_at"


def page(sources: Sources, scope: RunScope, skip: int, take: int, *, with_count: bool) -> RunsPage:
    """Runs ``skip .. skip + take`` of the scope, newest first, and (``with_count``) how many match."""
    keys_params, full_params = PgParams(), PgParams()
    keys_where = pg_where(scope.immutable(), keys_params)
    full_where = pg_where(scope, full_params)
    live_total = [0]

    def read(snap: Snapshot) -> dict[str, pa.Table]:
        keys = live.run_keys(snap, keys_where, keys_params.values)
        rows = live.runs(snap, full_where, full_params.values, f"{ORDER} LIMIT {skip + take}")
        if with_count:
            live_total[0] = live.count(snap, full_where, full_params.values) if scope.has_mutable else keys.num_rows
        return {"live_keys": keys, "live_runs": rows}

    with sources.call(read) as call:
        where, params = duck_where(scope, "a")
        if scope.search is not None:
            return _search_page(call, scope, where, params, skip, take, live_total[0], with_count)
        _newest_archived(call, scope, where, params, skip + take)
        branches = f"(SELECT {unified.RUN_FIELDS} FROM live_runs)\nUNION ALL\n(SELECT * FROM newest)"
        rows = call.run(load("page").format(branches=branches), {"take": take, "skip": skip}).fetchall()
        total = 0
        if with_count:
            total = live_total[0]
            parts = call.archive_parts("runs", "1 AS one", where, scope.since, scope.until)
            if parts:
                total += _scalar(call, f"SELECT count(*) FROM ({unified.union(parts, '')})", params)
    return RunsPage([frames.run_record(r) for r in rows], total)


def _newest_archived(call: Call, scope: RunScope, where: str, params: dict[str, Any], n: int) -> None:
    """Fill temp table ``newest`` with a superset of the ``n`` newest visible archived runs of the scope.

    Partition days are disjoint in time, so they are read newest first, one day, then two,
    four...: the ``n`` newest of each batch of days suffice, and once ``n`` rows (counting
    live ones) are at least as new as the oldest day read, no older day can reach the page.
    """
    call.run(f"CREATE OR REPLACE TEMP TABLE newest AS {unified.project('runs', unified.RUN_FIELDS)}")
    files = call.manifest.select(scope.since, scope.until)
    days = sorted({f.started_date for f in files}, reverse=True)
    found, batch = 0, 1
    while days:
        chunk, days = days[:batch], days[batch:]
        chosen = [f for f in files if f.started_date in chunk]
        parts = call.archive_parts_of("runs", chosen, unified.RUN_FIELDS, where)
        found += _scalar(
            call, f"INSERT INTO newest SELECT * FROM ({unified.union(parts, '')}) {ORDER} LIMIT {n}", params
        )
        oldest = datetime(chunk[-1].year, chunk[-1].month, chunk[-1].day, tzinfo=UTC)
        if found + _scalar(call, "SELECT count(*) FROM live_runs WHERE started_at >= $oldest", {"oldest": oldest}) >= n:
            return
        batch *= 2


def _search_page(
    call: Call,
    scope: RunScope,
    where: str,
    params: dict[str, Any],
    skip: int,
    take: int,
    live_total: int,
    with_count: bool,
) -> RunsPage:
    assert scope.search is not None
    if search.needs_per_field(scope.search):
        _scanned_hits(call, scope, where, params)
    else:
        _document_hits(call, scope, where, params)
    total = live_total + _scalar(call, "SELECT count(*) FROM hits") if with_count else 0
    call.run(
        "CREATE OR REPLACE TEMP TABLE page_keys AS SELECT * FROM ("
        f" SELECT {_KEYS}, TRUE AS is_live FROM live_runs UNION ALL SELECT {_KEYS}, FALSE FROM hits)"
        f" {ORDER} LIMIT $take OFFSET $skip",
        {"take": take, "skip": skip},
    )
    branches = [f"SELECT {unified.RUN_FIELDS} FROM live_runs WHERE id IN (SELECT id FROM page_keys WHERE is_live)"]
    bounds = call.run("SELECT min(started_at), max(started_at) FROM page_keys WHERE NOT is_live").fetchone()
    lo, hi = bounds if bounds is not None else (None, None)
    if lo is not None:
        # Full rows only for the archived runs of the page, from the files of its days.
        page_files = call.manifest.select(lo, hi + timedelta(microseconds=1))
        branches.append(
            f"SELECT {unified.RUN_FIELDS} FROM {call.relation('runs', page_files)} a"
            " WHERE a.started_at >= $lo AND a.started_at <= $hi AND EXISTS (SELECT 1 FROM page_keys p"
            " WHERE NOT p.is_live AND p.id = a.id AND p.revision = a.revision)"
        )
    rows = call.run(f"SELECT * FROM ({' UNION ALL '.join(branches)}) {ORDER}", {"lo": lo, "hi": hi}).fetchall()
    return RunsPage([frames.run_record(r) for r in rows], total)


def _document_hits(call: Call, scope: RunScope, where: str, params: dict[str, Any]) -> None:
    """Temp table ``hits`` from the runs' search documents (one lower-cased column, written by the export).

    Files with a search index are answered by it (``sync.search_index``: the same
    substring test over the same bytes); the others are scanned.
    """
    assert scope.search is not None
    row = call.run("SELECT lower($term)", {"term": scope.search.text}).fetchone()
    term = str(row[0]) if row else ""
    params = {**params, "term": term}
    indexed, scanned = call.indexed_hits(call.manifest.select(scope.since, scope.until), term.encode())
    parts = call.archive_parts_of("runs", scanned, _KEYS, f"{where} AND contains(a.search_doc, $term)")
    if indexed is not None:
        call.register("index_hits", indexed)
        parts.append(unified.hits_part("index_hits", _KEYS, where))
    call.run(f"CREATE OR REPLACE TEMP TABLE hits AS {unified.union(parts, unified.project('runs', _KEYS))}", params)


def _scanned_hits(call: Call, scope: RunScope, where: str, params: dict[str, Any]) -> None:
    """Temp table ``hits`` matching field by field (a term holding the documents' separator)."""
    assert scope.search is not None
    params = {**params, "pattern": scope.search.like_pattern}
    matched = "SELECT NULL::UUID AS run_id, NULL::BIGINT AS revision WHERE FALSE"
    files = call.manifest.select(scope.since, scope.until)
    if files:
        matched = (
            f"SELECT DISTINCT run_id, revision FROM {call.relation('attempts', files)} a"
            f" WHERE {search.duck_attempt_predicate('a', '$pattern')}"
        )
    call.run(f"CREATE OR REPLACE TEMP TABLE matched AS {matched}", params)
    matches = (
        f"({search.duck_run_predicate('a', scope.search, '$pattern')}"
        " OR EXISTS (SELECT 1 FROM matched m WHERE m.run_id = a.id AND m.revision = a.revision))"
    )
    parts = call.archive_parts("runs", _KEYS, f"{where} AND {matches}", scope.since, scope.until)
    call.run(f"CREATE OR REPLACE TEMP TABLE hits AS {unified.union(parts, unified.project('runs', _KEYS))}", params)


def all_runs(sources: Sources, scope: RunScope) -> list[FlowRunRecord]:
    """Every run of the scope, newest first."""
    full_params = PgParams()
    full_where = pg_where(scope, full_params)

    def read(snap: Snapshot) -> dict[str, pa.Table]:
        rows = live.runs(snap, full_where, full_params.values)
        if scope.has_mutable:
            keys_params = PgParams()
            keys = live.run_keys(snap, pg_where(scope.immutable(), keys_params), keys_params.values)
        else:
            keys = rows.select(["id", "started_at"])
        return {"live_keys": keys, "live_runs": rows}

    with sources.call(read) as call:
        where, params = duck_where(scope, "a")
        parts = [f"SELECT {unified.RUN_FIELDS} FROM live_runs"]
        parts += call.archive_parts("runs", unified.RUN_FIELDS, where, scope.since, scope.until)
        rows = call.run(f"SELECT * FROM ({unified.union(parts, '')}) {ORDER}", params).fetchall()
    return [frames.run_record(r) for r in rows]


def _scalar(call: Call, query: str, params: dict[str, Any] | None = None) -> int:
    row = call.run(query, params).fetchone()
    return int(row[0]) if row else 0
