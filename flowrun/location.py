"""Where the CLI's store lives, from the global options: settings, the DSN, opening the store.

The one place the CLI turns ``--dsn/--archive/--home/--schema`` (then the
``FLOWRUN_*`` variables) into ``Settings``, joins the embedded server when no
DSN is configured (``flowrun.embedded`` owns its life) and opens ``FlowRunStore``.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import conninfo

from flowrun import embedded
from flowrun.config import Settings
from flowrun.store import FlowRunStore
from oltp import migrate as migrations
from oltp.clock import Clock


@dataclass
class Location:
    """Where the store lives, from the global options; opens it (and joins its embedded server) on demand."""

    dsn: str | None = None
    archive: str | None = None
    home: str | None = None
    schema: str | None = None

    def settings(self) -> Settings:
        """Options first, then ``FLOWRUN_*`` variables, then defaults."""
        return Settings.resolve(dsn=self.dsn, archive=self.archive, home=self.home, schema=self.schema)

    def database(self, settings: Settings) -> str:
        """The DSN to use: the configured one, else the embedded server's (started on first use)."""
        if settings.dsn is not None:
            return settings.dsn
        return embedded.start(settings.pgdata).dsn()

    def open(
        self, *, clock: Clock | None = None, migrate: bool = False, asynchronous_commit: bool = False
    ) -> FlowRunStore:
        """Open the store; without ``migrate`` an old or empty schema raises ``MigrationRequired``.

        ``asynchronous_commit`` makes this process's sessions commit without waiting for the WAL flush
        (``synchronous_commit=off``): a crash of the server may lose the last moments of commits, never
        consistency. Only the demo asks for it, to replay simulated history fast.
        """
        settings = self.settings()
        dsn = self.database(settings)
        if asynchronous_commit:
            dsn = _with_session_option(dsn, "-c synchronous_commit=off")
        return FlowRunStore.open(
            dsn=dsn, archive=settings.archive, clock=clock, migrate=migrate, home=settings.home, schema=settings.schema
        )

    def migrate(self) -> tuple[str, str]:
        """Create or upgrade the schema; returns (schema, revision)."""
        settings = self.settings()
        return settings.schema, migrations.upgrade(self.database(settings), settings.schema)


def _with_session_option(dsn: str, option: str) -> str:
    """``dsn`` with a server option added to libpq's ``options`` (keeping any already there)."""
    present = conninfo.conninfo_to_dict(dsn).get("options")
    return conninfo.make_conninfo(dsn, options=f"{present} {option}" if present else option)
