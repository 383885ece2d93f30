"""Fixtures of the web dashboard's tests: real uvicorn servers on 127.0.0.1 over real stores.

``served`` starts the dashboard of one store in a uvicorn server on a free
loopback port, in a thread of the test process, and stops it afterwards.
``ui`` is the session's seeded store (a demo workload, its older half archived
and pruned) served read-only: the API and browser tests ask it questions and
compare the answers with the store's own. Tests that write use ``fresh``: a
new database and its own server.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import psycopg
import pytest
import uvicorn
from psycopg import sql

from flowrun import FlowRunStore
from flowrun.web import UiSettings, create_app
from tests.conftest import TEMPLATE, PgServer
from tests.flowrun.conftest import Seeded, seed

_databases = itertools.count()


@dataclass
class Served:
    """A dashboard being served: its URL, its store, and an HTTP client aimed at it."""

    url: str
    store: FlowRunStore
    http: httpx.Client


@contextmanager
def served(
    store: FlowRunStore, settings: UiSettings | None = None, now: Callable[[], datetime] | None = None
) -> Iterator[Served]:
    """Serve ``store``'s dashboard on a free port until the block ends."""
    config = uvicorn.Config(
        create_app(store, settings, now=now), host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            yield Served(url, store, http)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def wait_feed_live(http: httpx.Client) -> None:
    """Wait until the server listens for notifications (its first LISTEN is asynchronous)."""
    deadline = time.monotonic() + 20
    while not http.get("/api/health").json()["feed_live"]:
        assert time.monotonic() < deadline, "the change feed never went live"
        time.sleep(0.05)


@pytest.fixture(scope="session")
def ui_seeded(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """One seeded database for every read-only web test of the session."""
    name = f"flowrun_ui_{os.getpid()}_{next(_databases)}"
    with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(TEMPLATE)))
    try:
        yield seed(pg_server.dsn_for(name), tmp_path_factory.mktemp("ui-seeded") / "archive", runs=240)
    finally:
        with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def ui(ui_seeded: Seeded) -> Iterator[Served]:
    """The seeded store's dashboard, read-only, for the whole session."""
    with ui_seeded.open() as store, served(store) as running:
        yield running


@pytest.fixture
def fresh(dsn: str, tmp_path: Path) -> Iterator[Served]:
    """A dashboard over a new, empty store of this test's own."""
    with FlowRunStore.open(dsn=dsn, archive=tmp_path / "archive", migrate=False) as store, served(store) as running:
        yield running
