"""Which runs are still live in PostgreSQL, so the dashboard can mark the others as archived.

A run pruned from PostgreSQL is read-only history served from the archive; the
run list and the run page mark it. One indexed lookup per page of runs, on the
store's own connection pool.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import psycopg

from flowrun.store import FlowRunStore

LIVE_IDS = "SELECT id FROM flow_runs WHERE id = ANY(%s)"


def live_ids(store: FlowRunStore, run_ids: Sequence[uuid.UUID]) -> frozenset[uuid.UUID]:
    """The subset of ``run_ids`` present in PostgreSQL."""
    if not run_ids:
        return frozenset()

    def read(conn: psycopg.Connection[tuple[object, ...]]) -> frozenset[uuid.UUID]:
        rows = conn.execute(LIVE_IDS, (list(run_ids),)).fetchall()
        return frozenset(row[0] for row in rows if isinstance(row[0], uuid.UUID))

    return store.lifecycle.db.run(read)
