"""``FlowRunStore``: the whole contract in one object.

Writes go to ``oltp.RunStore`` on PostgreSQL; reporting, export and retention
are added by the ``olap`` and ``sync`` packages as they land.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any

from flowrun import embedded
from flowrun.config import Settings
from oltp.clock import Clock
from oltp.store import RunStore


class FlowRunStore(RunStore):
    """Lifecycle writes on PostgreSQL plus reporting over live and archived runs."""

    def __init__(self, settings: Settings, dsn: str, *, clock: Clock | None, migrate: bool, server: Any) -> None:
        super().__init__(
            dsn, schema=settings.schema, clock=clock, migrate_schema=migrate, max_connections=settings.pool_size
        )
        self.settings = settings
        self._server = server

    @classmethod
    def open(
        cls,
        dsn: str | None = None,
        archive: str | os.PathLike[str] | None = None,
        clock: Clock | None = None,
        migrate: bool = True,
        *,
        home: str | os.PathLike[str] | None = None,
        schema: str | None = None,
    ) -> FlowRunStore:
        """Open the store; with no DSN anywhere, on the embedded server in the data dir."""
        settings = Settings.resolve(dsn=dsn, archive=archive, home=home, schema=schema)
        server = None
        target = settings.dsn
        if target is None:
            server = embedded.start(settings.pgdata)
            target = embedded.dsn(server)
        return cls(settings, target, clock=clock, migrate=migrate, server=server)

    def __enter__(self) -> FlowRunStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
