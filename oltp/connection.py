"""Connections to PostgreSQL: the pool, the schema search path, and error translation.

Every statement the store runs goes through ``Database.connection()``, which hands
out an autocommit connection whose ``search_path`` is the store's schema. Most
lifecycle methods are a single statement, so autocommit makes each one its own
transaction in one round trip; methods that need several statements open an
explicit transaction inside. Driver errors leave this module as the store's own
taxonomy, chained to the original.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg
import psycopg.errors
import psycopg_pool
from psycopg import sql

from oltp.errors import DatabaseError, FlowRunStoreError, InvalidArgument, StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_SCHEMA = "flowrun"
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# Deadlocks and serialization failures abort a statement without effect, so retrying
# it is always safe; connection losses are not retried (a commit may have landed).
_RETRYABLE = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)
_MAX_RETRIES = 5


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
    """Re-raise driver errors as ``FlowRunStoreError`` subclasses, chained to the original."""
    try:
        yield
    except FlowRunStoreError:
        raise
    except psycopg_pool.PoolTimeout as exc:
        raise StoreUnavailable(f"no database connection available: {exc}") from exc
    except _RETRYABLE as exc:  # before OperationalError: they are subclasses of it
        raise StoreUnavailable(f"transaction aborted by a conflict, retry: {_first_line(exc)}") from exc
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        # Class 08 (connection exception), 57P01-03 (shutdown) and a dropped socket.
        raise StoreUnavailable(f"database unavailable: {_first_line(exc)}") from exc
    except psycopg.Error as exc:
        raise DatabaseError(f"database error [{exc.sqlstate}]: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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
        with translate_errors():
            self._pool.open(wait=True, timeout=timeout)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        """Borrow a connection; driver errors come out translated."""
        try:
            with translate_errors(), self._pool.connection() as conn:
                yield conn
        except StoreUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, psycopg.OperationalError | psycopg.InterfaceError) and not isinstance(
                cause, _RETRYABLE
            ):
                # The server restarted or dropped us: replace every broken idle connection
                # now, so the next call does not trip over one the pool still holds.
                self._refresh()
            raise

    def run(self, work: Callable[[psycopg.Connection[tuple[object, ...]]], T]) -> T:
        """Run ``work`` on a pooled connection, retrying it after a deadlock or serialization failure."""
        attempt = 1
        while True:
            try:
                with self.connection() as conn:
                    return work(conn)
            except StoreUnavailable as exc:
                if not isinstance(exc.__cause__, _RETRYABLE) or attempt >= _MAX_RETRIES:
                    raise
            time.sleep(0.002 * attempt)
            attempt += 1

    def _refresh(self) -> None:
        try:
            self._pool.check()
        except Exception:  # the server may still be down; the pool reconnects later
            log.debug("pool check after a connection error failed", exc_info=True)

    def close(self) -> None:
        """Close every connection of the pool."""
        self._pool.close()
