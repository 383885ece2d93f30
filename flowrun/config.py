"""Settings, read once: arguments first, then ``FLOWRUN_*`` variables, then defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import conninfo

from oltp.arguments import path_text, string_mapping, text
from oltp.connection import DEFAULT_SCHEMA, schema_name
from oltp.errors import InvalidArgument
from sync.archive_location import archive_uri


def default_home() -> Path:
    """``$FLOWRUN_HOME``, else ``~/.local/share/flowrun``."""
    env = os.environ.get("FLOWRUN_HOME")
    return Path(env).expanduser() if env else Path.home() / ".local" / "share" / "flowrun"


MAX_POOL_SIZE = 1000


def _pool_size(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise InvalidArgument(f"FLOWRUN_POOL_SIZE must be an integer from 1 to {MAX_POOL_SIZE}, got {text!r}") from None


def checked_dsn(dsn: str) -> str:
    """``dsn`` if libpq can parse it, else an ``InvalidArgument`` that says what a DSN looks like."""
    try:
        conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "unparseable"
        raise InvalidArgument(
            f"invalid DSN ({reason}): use a URI like postgresql://user@host:5432/db or 'host=... dbname=...'"
        ) from None
    return dsn


@dataclass(frozen=True, slots=True)
class Settings:
    """Where the store keeps its data; ``dsn`` None means the embedded server in ``home``."""

    home: Path
    dsn: str | None
    archive: str
    schema: str = DEFAULT_SCHEMA
    pool_size: int = 8
    # delta-rs storage options for an object store archive; None: from FLOWRUN_S3_* / AWS_* variables.
    storage_options: Mapping[str, str] | None = None

    @classmethod
    def resolve(
        cls,
        dsn: str | None = None,
        archive: str | os.PathLike[str] | None = None,
        home: str | os.PathLike[str] | None = None,
        schema: str | None = None,
        pool_size: int | None = None,
        storage_options: Mapping[str, str] | None = None,
    ) -> Settings:
        """Fill every setting from the arguments, the environment or the defaults, and validate."""
        home_path = Path(path_text(home, "home")).expanduser() if home is not None else default_home()
        home_path = Path(os.path.abspath(home_path))  # as the archive: a later chdir must not move it
        dsn = dsn or os.environ.get("FLOWRUN_DSN") or None  # an empty DSN is no DSN
        archive_text = path_text(archive, "archive") if archive is not None else os.environ.get("FLOWRUN_ARCHIVE")
        if not archive_text:
            archive_text = str(home_path / "archive")
        size = pool_size if pool_size is not None else _pool_size(os.environ.get("FLOWRUN_POOL_SIZE", "8"))
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_POOL_SIZE:
            raise InvalidArgument(f"pool_size must be an integer from 1 to {MAX_POOL_SIZE}, got {size!r}")
        return cls(
            home=home_path,
            dsn=None if dsn is None else checked_dsn(text(dsn, "dsn")),
            # Absolute: jobs resolve the archive on every call, and a later chdir must not move it.
            archive=archive_uri(archive_text),
            schema=schema_name(schema or os.environ.get("FLOWRUN_SCHEMA") or DEFAULT_SCHEMA),
            pool_size=size,
            storage_options=None if storage_options is None else string_mapping(storage_options, "storage_options"),
        )

    @property
    def pgdata(self) -> Path:
        """Data directory of the embedded server."""
        return self.home / "postgres"
