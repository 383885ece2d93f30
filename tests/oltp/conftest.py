"""Fixtures of the lifecycle conformance suite.

``store`` is the one parametrised fixture every conformance test takes: it
yields ``RunStore`` on a fresh PostgreSQL database and ``InMemoryRunStore``,
both driven by the same settable clock, so each rule is checked against both
implementations by the same test body.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from oltp.memory import InMemoryRunStore
from oltp.store import RunStore
from tests.conftest import FakeClock

FLOW = uuid.UUID("0b0e8a3c-5d51-4c1e-9c55-6b3f0d0e0f01")


@pytest.fixture(params=["postgres", "memory"])
def store(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[Any]:
    """The lifecycle store under test: PostgreSQL, then in memory."""
    if request.param == "postgres":
        dsn = request.getfixturevalue("dsn")
        pg = RunStore(dsn, clock=clock, migrate_schema=False, max_connections=4)
        yield pg
        pg.close()
    else:
        yield InMemoryRunStore(clock=clock)


@pytest.fixture
def pg_store(dsn: str, clock: FakeClock) -> Iterator[RunStore]:
    """The PostgreSQL store alone, for what only PostgreSQL has (revisions, outbox, schemas)."""
    with RunStore(dsn, clock=clock, migrate_schema=False) as pg:
        yield pg


def start(store: Any, run_id: uuid.UUID | None = None, **fields: Any) -> uuid.UUID:
    """Start a run with plain defaults; returns its id."""
    rid = run_id or uuid.uuid4()
    store.start_run(
        fields.pop("flow_id", FLOW),
        fields.pop("flow_name", "nightly"),
        rid,
        fields.pop("trigger_key", "manual"),
        **fields,
    )
    return rid


def dispatch_job_id(store: Any, run_id: uuid.UUID, key: str) -> str | None:
    """The job id annotated on a dispatch record, read from where each store keeps it."""
    if isinstance(store, InMemoryRunStore):
        return store.dispatch_job_id(run_id, key)
    query = sql.SQL("SELECT job_id FROM {}.flow_dispatches WHERE run_id = %s AND step_key = %s").format(
        sql.Identifier(store.schema)
    )
    with psycopg.connect(store.dsn, autocommit=True) as conn:
        row = conn.execute(query, (run_id, key)).fetchone()
    return None if row is None else row[0]
