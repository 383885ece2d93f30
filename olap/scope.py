"""Which runs a reporting call is about, rendered as a filter for each side.

A ``RunScope`` is built from validated arguments. Its immutable part (flow,
source run, start-time window) never changes over a run's life, so it also
selects the live runs whose archived copies must be hidden ("live wins"); the
mutable part (status, search) only filters. ``pg_where`` renders the scope for
PostgreSQL with ``$n`` placeholders (pushed down so only needed live rows
travel); ``duck_where`` renders it for DuckDB over archive rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from olap import search
from olap.search import SearchTerm
from oltp.records import RunStatus


@dataclass(frozen=True, slots=True)
class RunScope:
    """Filters on runs; None means unrestricted."""

    flow_id: uuid.UUID | None = None
    source_run_id: uuid.UUID | None = None
    since: datetime | None = None  # started_at >= since
    until: datetime | None = None  # started_at < until
    status: RunStatus | None = None
    search: SearchTerm | None = None

    def immutable(self) -> RunScope:
        """The part of the scope a run cannot leave once it has started."""
        return replace(self, status=None, search=None)

    @property
    def has_mutable(self) -> bool:
        """True when status or search narrow the scope further."""
        return self.status is not None or self.search is not None


class PgParams:
    """Collects PostgreSQL parameters (as text, cast in SQL) and hands out ``$n`` placeholders."""

    def __init__(self) -> None:
        self.values: list[str] = []

    def bind(self, value: object, cast: str) -> str:
        """Append ``value`` and return its placeholder with an explicit cast."""
        self.values.append(value.isoformat() if isinstance(value, datetime) else str(value))
        return f"${len(self.values)}::{cast}"


def pg_where(scope: RunScope, params: PgParams) -> str:
    """A WHERE condition over ``flow_runs`` for this scope."""
    clauses = []
    if scope.flow_id is not None:
        clauses.append(f"flow_id = {params.bind(scope.flow_id, 'uuid')}")
    if scope.source_run_id is not None:
        clauses.append(f"source_run_id = {params.bind(scope.source_run_id, 'uuid')}")
    if scope.since is not None:
        clauses.append(f"started_at >= {params.bind(scope.since, 'timestamptz')}")
    if scope.until is not None:
        clauses.append(f"started_at < {params.bind(scope.until, 'timestamptz')}")
    if scope.status is not None:
        clauses.append(f"status = {params.bind(scope.status.value, 'text')}")
    if scope.search is not None:
        pattern = params.bind(scope.search.like_pattern, "text")
        if search.needs_per_field(scope.search):
            clauses.append(search.pg_predicate_per_field(pattern))
        else:
            clauses.append(search.pg_predicate(pattern))
    return " AND ".join(clauses) or "TRUE"


def duck_where(scope: RunScope, alias: str) -> tuple[str, dict[str, Any]]:
    """A WHERE condition over archive run rows ``alias`` and its named parameters.

    Search is not included: the caller adds it, since it needs the attempts scan.
    """
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if scope.flow_id is not None:
        clauses.append(f"{alias}.flow_id = $flow_id")
        params["flow_id"] = scope.flow_id
    if scope.source_run_id is not None:
        clauses.append(f"{alias}.source_run_id = $source_run_id")
        params["source_run_id"] = scope.source_run_id
    if scope.since is not None:
        clauses.append(f"{alias}.started_at >= $since")
        params["since"] = scope.since
    if scope.until is not None:
        clauses.append(f"{alias}.started_at < $until")
        params["until"] = scope.until
    if scope.status is not None:
        clauses.append(f"{alias}.status = $status")
        params["status"] = scope.status.value
    return " AND ".join(clauses) or "TRUE", params
