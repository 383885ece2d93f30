"""Fixtures of the lifecycle conformance suite.

``store`` is the one parametrised fixture every conformance test takes: it
yields ``RunStore`` on a fresh PostgreSQL database, ``AsyncRunStore`` on one
(driven through ``AsyncBridge``: a real event loop on its own thread, every
call awaited there), and ``InMemoryRunStore``, all driven by the same settable
clock, so each rule is checked against every implementation by one test body.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import psycopg
import pytest
from alembic import command
from psycopg import sql

from oltp import migrate
from oltp.async_store import AsyncRunStore
from oltp.contract import LifecycleStore
from oltp.memory import InMemoryRunStore
from oltp.store import RunStore
from tests.conftest import FakeClock, PgServer

T = TypeVar("T")
FLOW = uuid.UUID("0b0e8a3c-5d51-4c1e-9c55-6b3f0d0e0f01")


class AsyncBridge:
    """``AsyncRunStore`` seen as a sync store: each call is awaited on a loop running in a thread."""

    def __init__(self, store: AsyncRunStore) -> None:
        self.inner = store
        self.dsn = store.dsn
        self.schema = store.schema
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._await(store.db.open())

    def _await(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=60)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)
        if not inspect.iscoroutinefunction(method):
            return method
        return lambda *args, **kwargs: self._await(method(*args, **kwargs))

    def close(self) -> None:
        self._await(self.inner.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@pytest.fixture(params=["postgres", "async", "memory"])
def store(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[LifecycleStore]:
    """The lifecycle store under test: PostgreSQL (sync, then async), then in memory."""
    if request.param == "postgres":
        dsn = request.getfixturevalue("dsn")
        pg = RunStore(dsn, clock=clock, migrate_schema=False, max_connections=4)
        yield pg
        pg.close()
    elif request.param == "async":
        dsn = request.getfixturevalue("dsn")
        bridge = AsyncBridge(AsyncRunStore(dsn, clock=clock, migrate_schema=False, max_connections=4))
        yield bridge
        bridge.close()
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


def dispatch_job_id(store: LifecycleStore, run_id: uuid.UUID, key: str) -> str | None:
    """The job id annotated on a dispatch record (``get_dispatches``: the same read on every store)."""
    held = {d.step_key: d for d in store.get_dispatches(run_id)}.get(key)
    return None if held is None else held.job_id


@pytest.fixture
def empty_dsn(pg_server: PgServer) -> Iterator[str]:
    """A database with no schema at all (for building one revision by revision)."""
    name = f"flowrun_mig_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield pg_server.dsn_for(name)
    with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def upgrade_to(dsn: str, revision: str) -> None:
    """Run the revisions up to ``revision`` (not head) on the ``flowrun`` schema."""
    with migrate._engine(dsn, "flowrun").connect() as conn:
        conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS flowrun")
        conn.commit()
        command.upgrade(migrate._config(conn, "flowrun"), revision)
        conn.commit()
