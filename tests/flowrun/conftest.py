"""Fixtures of the front-door tests: the real ``flowrun`` executable, and stores seeded through the public API.

``cli`` runs the console script of the venv in a subprocess, pointed at the
test's database (``--dsn``), a temporary archive and a temporary
``FLOWRUN_HOME``, with every other ``FLOWRUN_*`` variable removed so nothing of
the developer's environment leaks in. ``seeded`` is a database of its own,
shared by a module's read-only tests, into which the demo's players play a
small engine workload that is then exported and pruned of its older half, so
the commands answer from live and archived runs together.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from flowrun import FlowRunStore
from flowrun.demo import DemoSummary, run_demo
from flowrun.demo_clock import ThreadClock
from tests.conftest import TEMPLATE, PgServer

FLOWRUN = Path(sys.executable).with_name("flowrun")
_databases = itertools.count()


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any FLOWRUN_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWRUN_")}
    env.update({"COLUMNS": "200", "LINES": "50", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def shows(row: str, text: str, min_width: int) -> bool:
    """``text`` is in ``row`` whole, or cut with an ellipsis to no fewer than ``min_width`` columns.

    How far a flexible column is cut depends on the other cells of the table (their data, the
    time of day in a start column), so the tests accept any cut the layout allows.
    """
    return text in row or any(f"{text[:keep]}…" in row for keep in range(min_width - 1, len(text)))


@dataclass
class Cli:
    """The ``flowrun`` executable, aimed at one test's database, archive and home."""

    dsn: str
    archive: Path
    home: Path

    def run(self, *args: str, code: int = 0, env: dict[str, str] | None = None, target: bool = True) -> Any:
        """Run ``flowrun [--dsn --archive] args`` and insist on exit ``code``."""
        head = ["--dsn", self.dsn, "--archive", str(self.archive)] if target else []
        done = subprocess.run(
            [str(FLOWRUN), *head, *args],
            env=env or clean_env(FLOWRUN_HOME=str(self.home)),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == code, f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        return done

    def json(self, *args: str) -> Any:
        """Run a command with ``--json`` and parse its output."""
        return json.loads(self.run(*args, "--json").stdout)

    def run_many(self, *commands: list[str], code: int = 0) -> list[Any]:
        """Run independent commands at once (each is a whole process start-up); results in order."""
        with ThreadPoolExecutor(max_workers=len(commands)) as pool:
            return list(pool.map(lambda args: self.run(*args, code=code), commands))


@pytest.fixture
def cli(dsn: str, tmp_path: Path) -> Cli:
    """The executable aimed at this test's own fresh database."""
    return Cli(dsn=dsn, archive=tmp_path / "archive", home=tmp_path / "home")


@dataclass
class Seeded:
    """A database holding a small demo workload, half of it archived and pruned."""

    dsn: str
    archive: Path
    summary: DemoSummary

    def open(self) -> FlowRunStore:
        """The store as the CLI sees it (wall clock, no migration)."""
        return FlowRunStore.open(dsn=self.dsn, archive=self.archive, migrate=False)


def seed(dsn: str, archive: Path, runs: int = 300) -> Seeded:
    """Play ``runs`` demo runs into ``dsn``, export them and prune those older than 14 days."""
    clock = ThreadClock()
    with FlowRunStore.open(dsn=dsn, archive=archive, clock=clock) as store:
        summary = run_demo(store, clock, runs, threads=4)
    return Seeded(dsn, archive, summary)


@pytest.fixture(scope="module")
def seeded(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """One seeded database shared by a module's read-only tests."""
    name = f"flowrun_seeded_{os.getpid()}_{next(_databases)}"
    with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(TEMPLATE)))
    try:
        yield seed(pg_server.dsn_for(name), tmp_path_factory.mktemp("seeded") / "archive")
    finally:
        with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def seeded_cli(seeded: Seeded, tmp_path: Path) -> Cli:
    """The executable aimed at the module's seeded database."""
    return Cli(dsn=seeded.dsn, archive=seeded.archive, home=tmp_path / "home")


@pytest.fixture
def store(seeded: Seeded) -> Iterator[FlowRunStore]:
    """The seeded store, opened in the test process to ask it the same questions."""
    with seeded.open() as opened:
        yield opened
