"""Fixtures of the export suite: a store on a fresh database, an empty archive, a plain connection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from oltp.store import RunStore
from tests.conftest import FakeClock
from tests.fixtures.fronts import front  # noqa: F401  (both front doors, for the store-method tests)


@pytest.fixture
def archive(tmp_path: Path) -> str:
    """An archive root that does not exist yet (the first export creates it)."""
    return str(tmp_path / "archive")


@pytest.fixture
def store(dsn: str, clock: FakeClock) -> Iterator[RunStore]:
    """The lifecycle store that writes the runs the exporter archives."""
    with RunStore(dsn, clock=clock, migrate_schema=False, max_connections=4) as pg:
        yield pg
