"""The interop tests' shared pieces: one Spark session, and stores with an exported demo workload.

``exported_local`` and ``exported_s3`` each hold 300 demo runs over 30 days in a
database of their own, exported (the older half then pruned from PostgreSQL) to
an archive on the local disk or on the S3 server; ``exported`` is either, for
the readers that take both.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import psycopg
import pytest
from psycopg import sql

from flowrun import FlowRunStore
from flowrun.demo import run_demo
from flowrun.demo_clock import ThreadClock
from tests.conftest import TEMPLATE, PgServer
from tests.fixtures.s3_server import S3Server
from tests.fixtures.spark import spark  # noqa: F401  (the session's Spark, for these tests only)

_databases = itertools.count()


@dataclass(frozen=True)
class Exported:
    """A database whose demo workload went through export and prune: the archive holds most of it."""

    dsn: str
    archive: str
    storage_options: Mapping[str, str] = field(default_factory=dict)

    @property
    def table_uri(self) -> str:
        """The Delta table other engines read (``docs/archive.md``)."""
        return f"{self.archive}/runs"


def _export_demo(pg_server: PgServer, archive: str, options: Mapping[str, str] | None) -> Iterator[Exported]:
    name = f"flowrun_interop_{os.getpid()}_{next(_databases)}"
    with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(TEMPLATE)))
    try:
        dsn, clock = pg_server.dsn_for(name), ThreadClock()
        with FlowRunStore.open(dsn=dsn, archive=archive, clock=clock, storage_options=options) as store:
            summary = run_demo(store, clock, 300, threads=4)
        assert summary.pruned > 0
        yield Exported(dsn, archive, dict(options or {}))
    finally:
        with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def exported_local(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    """The demo workload exported to a directory."""
    yield from _export_demo(pg_server, str(tmp_path_factory.mktemp("interop") / "archive"), None)


@pytest.fixture(scope="session")
def exported_s3(pg_server: PgServer, s3_server: S3Server) -> Iterator[Exported]:
    """The demo workload exported to the S3 server."""
    yield from _export_demo(pg_server, s3_server.uri("interop-archive"), s3_server.storage_options())


@pytest.fixture(params=["local", "s3"])
def exported(request: pytest.FixtureRequest) -> Exported:
    """Each archive in turn."""
    found: Exported = request.getfixturevalue(f"exported_{request.param}")
    return found
