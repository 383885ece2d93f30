"""Connections to PostgreSQL: the pool, the schema search path, and error translation.

Every statement the store runs goes through ``Database.connection()``, which hands
out an autocommit connection whose ``search_path`` is the store's schema. Most
lifecycle methods are a single statement, so autocommit makes each one its own
transaction in one round trip; methods that need several statements open an
explicit transaction inside. Driver errors leave this module as the store's own
taxonomy, chained to the original. A connection the server closed while it sat
idle in the pool is replaced before it is handed out, so only calls that were
in flight when the server went away fail.
"""

from __future__ import annotations

import re
import select
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
import psycopg.errors
import psycopg_pool
from psycopg import sql

from oltp.errors import FlowRunStoreError, InvalidArgument, StoreUnavailable
from oltp.plan import Plan, run_plan
from oltp.sqlstate import CONFLICTS, error_for, first_line

T = TypeVar("T")

DEFAULT_SCHEMA = "flowrun"
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
MAX_RETRIES = 5


def schema_name(value: str) -> str:
    """Validate a PostgreSQL schema name (plain identifier, at most 63 characters)."""
    if not isinstance(value, str) or not _SCHEMA_NAME.match(value):
        raise InvalidArgument(f"schema must be a plain identifier of at most 63 characters, got {value!r}")
    return value


def search_path(schema: str) -> sql.Composed:
    """Session setup: the store's schema first, then public (where extensions often live), in UTC."""
    return sql.SQL("SET search_path TO {}, public; SET TIME ZONE 'UTC'").format(sql.Identifier(schema))


def connect(dsn: str, schema: str, *, autocommit: bool = True) -> psycopg.Connection[tuple[object, ...]]:
    """One connection outside the pool (migrations, export jobs), errors translated."""
    with translate_errors():
        conn = psycopg.connect(dsn, autocommit=True)
        conn.execute(search_path(schema))
        conn.autocommit = autocommit
        return conn


@contextmanager
def translate_errors() -> Iterator[None]:
    """Re-raise driver errors as ``FlowRunStoreError`` subclasses (``oltp.sqlstate``), chained to the original."""
    try:
        yield
    except FlowRunStoreError:
        raise
    except psycopg_pool.PoolTimeout as exc:
        raise StoreUnavailable(f"no database connection available: {exc}") from exc
    except psycopg.Error as exc:
        connection_error = isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
        raise error_for(exc.sqlstate, first_line(exc), connection_error=connection_error) from exc


def is_conflict(exc: BaseException) -> bool:
    """True when a store error was caused by a conflict that aborted a statement without effect."""
    cause = exc.__cause__
    return isinstance(cause, psycopg.Error) and cause.sqlstate in CONFLICTS


def closed_by_server(conn: psycopg.BaseConnection[Any]) -> bool:
    """True when an idle connection is closed, or has input waiting (the server's goodbye, or EOF)."""
    if conn.closed:
        return True
    fd = conn.fileno()
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([fd], [], [], 0)  # Windows: no poll(), and no fd limit on sockets
    return bool(readable)


class Database:
    """A pool of autocommit connections to one schema of one PostgreSQL database."""

    def __init__(
        self,
        dsn: str,
        schema: str = DEFAULT_SCHEMA,
        *,
        min_size: int = 1,
        max_size: int = 8,
        timeout: float = 10.0,
    ) -> None:
        self.dsn = dsn
        self.schema = schema_name(schema)
        set_path = search_path(self.schema)

        def configure(conn: psycopg.Connection[tuple[object, ...]]) -> None:
            conn.execute(set_path)

        self._pool = psycopg_pool.ConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            kwargs={"autocommit": True},
            configure=configure,
            open=False,
            name="flowrun",
        )
        self._max_size = max_size
        try:
            with translate_errors():
                self._pool.open(wait=True, timeout=timeout)
        except StoreUnavailable:
            self._pool.close()  # stop its workers from reconnecting forever
            raise

    def open(self) -> None:
        """Nothing to do: the pool opened in the constructor (kept so both stores read alike)."""

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        """Borrow a live connection; driver errors come out translated."""
        with translate_errors():
            conn = self._borrow()
            try:
                yield conn
            finally:
                # A broken connection is dropped and replaced by the pool; an open
                # transaction (none is left by our code) would be rolled back.
                self._pool.putconn(conn)

    def _borrow(self) -> psycopg.Connection[tuple[object, ...]]:
        # A connection the server closed while it sat idle in the pool (a restart, an idle
        # timeout, pg_terminate_backend) has the server's goodbye waiting on its socket.
        # Nothing was sent on it yet, so swapping it for a live one is safe, and the first
        # call after a restart does not fail for a reason that is already over.
        for _ in range(self._max_size + 1):
            conn = self._pool.getconn()
            if not closed_by_server(conn):
                return conn
            conn.close()
            self._pool.putconn(conn)  # the pool discards a closed connection and opens a new one
        return self._pool.getconn()

    def run(self, work: Callable[[psycopg.Connection[tuple[object, ...]]], T]) -> T:
        """Run ``work`` on a pooled connection, retrying it after a deadlock or serialization failure."""
        attempt = 1
        while True:
            try:
                with self.connection() as conn:
                    return work(conn)
            except StoreUnavailable as exc:
                if not is_conflict(exc) or attempt >= MAX_RETRIES:
                    raise
            time.sleep(0.002 * attempt)
            attempt += 1

    def execute(self, plan: Callable[[], Plan[T]]) -> T:
        """Carry out the plan ``plan()`` makes, on a pooled connection (a new plan for each retry)."""
        return self.run(lambda conn: run_plan(conn, plan()))

    def close(self) -> None:
        """Close every connection of the pool."""
        self._pool.close()
