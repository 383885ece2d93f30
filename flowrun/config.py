"""Settings, read once: arguments first, then ``FLOWRUN_*`` variables, then defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from oltp.connection import DEFAULT_SCHEMA, schema_name
from oltp.errors import InvalidArgument


def default_home() -> Path:
    """``$FLOWRUN_HOME``, else ``~/.local/share/flowrun``."""
    env = os.environ.get("FLOWRUN_HOME")
    return Path(env).expanduser() if env else Path.home() / ".local" / "share" / "flowrun"


@dataclass(frozen=True, slots=True)
class Settings:
    """Where the store keeps its data; ``dsn`` None means the embedded server in ``home``."""

    home: Path
    dsn: str | None
    archive: str
    schema: str = DEFAULT_SCHEMA
    pool_size: int = 8

    @classmethod
    def resolve(
        cls,
        dsn: str | None = None,
        archive: str | os.PathLike[str] | None = None,
        home: str | os.PathLike[str] | None = None,
        schema: str | None = None,
        pool_size: int | None = None,
    ) -> Settings:
        """Fill every setting from the arguments, the environment or the defaults, and validate."""
        home_path = Path(home).expanduser() if home is not None else default_home()
        dsn = dsn if dsn is not None else os.environ.get("FLOWRUN_DSN") or None
        archive_text = os.fspath(archive) if archive is not None else os.environ.get("FLOWRUN_ARCHIVE")
        if not archive_text:
            archive_text = str(home_path / "archive")
        size = pool_size if pool_size is not None else int(os.environ.get("FLOWRUN_POOL_SIZE", "8"))
        if size < 1:
            raise InvalidArgument(f"pool_size must be >= 1, got {size}")
        return cls(
            home=home_path,
            dsn=dsn,
            archive=archive_text,
            schema=schema_name(schema or os.environ.get("FLOWRUN_SCHEMA") or DEFAULT_SCHEMA),
            pool_size=size,
        )

    @property
    def pgdata(self) -> Path:
        """Data directory of the embedded server."""
        return self.home / "postgres"
