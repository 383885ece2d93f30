"""Async connections to PostgreSQL: psycopg's async pool, with the sync pool's rules.

``AsyncDatabase`` is ``oltp.connection.Database`` for an event loop: autocommit
connections on the store's schema, a connection the server closed while idle
swapped before it is used, conflicts retried, driver errors translated by the
same SQLSTATE table. The pool cannot open in a constructor (that needs the
loop), so it opens on ``open()`` or on first use.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import psycopg
import psycopg_pool

from oltp.connection import DEFAULT_SCHEMA, MAX_RETRIES, closed_by_server, is_conflict, schema_name, search_path
from oltp.connection import translate_errors as translate_errors
from oltp.errors import StoreUnavailable
from oltp.plan import Plan, run_async

T = TypeVar("T")
AsyncConn = psycopg.AsyncConnection[tuple[Any, ...]]


class AsyncDatabase:
    """A pool of async autocommit connections to one schema of one PostgreSQL database."""

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

        async def configure(conn: AsyncConn) -> None:
            await conn.execute(set_path)

        self._pool = psycopg_pool.AsyncConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            kwargs={"autocommit": True},
            configure=configure,
            open=False,
            name="flowrun-async",
        )
        self._max_size = max_size
        self._timeout = timeout
        self._opened = False

    async def open(self) -> None:
        """Open the pool and wait for its first connections (idempotent)."""
        if self._opened:
            return
        try:
            with translate_errors():
                await self._pool.open(wait=True, timeout=self._timeout)
        except StoreUnavailable:
            await self._pool.close()  # stop its workers from reconnecting forever
            raise
        self._opened = True

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConn]:
        """Borrow a live connection; driver errors come out translated."""
        await self.open()
        with translate_errors():
            conn = await self._borrow()
            try:
                yield conn
            finally:
                await self._pool.putconn(conn)

    async def _borrow(self) -> AsyncConn:
        # Why: see Database._borrow (an idle connection the server closed is swapped unused).
        for _ in range(self._max_size + 1):
            conn = await self._pool.getconn()
            if not closed_by_server(conn):
                return conn
            await conn.close()
            await self._pool.putconn(conn)
        return await self._pool.getconn()

    async def run(self, work: Callable[[AsyncConn], Awaitable[T]]) -> T:
        """Run ``work`` on a pooled connection, retrying it after a deadlock or serialization failure."""
        attempt = 1
        while True:
            try:
                async with self.connection() as conn:
                    return await work(conn)
            except StoreUnavailable as exc:
                if not is_conflict(exc) or attempt >= MAX_RETRIES:
                    raise
            await asyncio.sleep(0.002 * attempt)
            attempt += 1

    async def execute(self, plan: Callable[[], Plan[T]]) -> T:
        """Carry out the plan ``plan()`` makes, on a pooled connection (a new plan for each retry)."""
        return await self.run(lambda conn: run_async(conn, plan()))

    async def close(self) -> None:
        """Close every connection of the pool."""
        await self._pool.close()
