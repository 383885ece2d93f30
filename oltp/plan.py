"""Operations as plans: each statement written once, run by a sync or an async driver.

A lifecycle operation is a generator (a *plan*): it yields the statements it
needs (a ``Query``, or a ``Snapshot`` of reads taken together), receives each
one's ``Result`` and returns the call's value. It never touches a connection,
so one plan serves psycopg's sync connections (``run_plan``) and its async ones
(``run_async``), as psycopg's own ``generators.py`` serves both of its
connection kinds. A driver error is thrown back into the plan at the statement
that caused it, so a plan catches what it expects (``UniqueViolation`` ->
``RunAlreadyExists``) right where it sent the statement.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import psycopg
from psycopg import sql

T = TypeVar("T")
Params = Sequence[Any] | Mapping[str, Any] | None
Row = tuple[Any, ...]
SqlText = str | sql.SQL | sql.Composed


@dataclass(frozen=True, slots=True)
class Query:
    """One statement and its parameters."""

    text: SqlText
    params: Params = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Reads from one REPEATABLE READ, READ ONLY transaction, sent in one round trip (pipeline mode)."""

    queries: tuple[Query, ...]


class Result(NamedTuple):
    """What a statement gave back: its rows (none for a command) and its row count."""

    rows: list[Row]
    rowcount: int

    def one(self) -> Row | None:
        """The first row, or None."""
        return self.rows[0] if self.rows else None


Request = Query | Snapshot
# A plan receives a Result for a Query and a list of Results for a Snapshot.
Plan = Generator[Request, Any, T]

_SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"


def run_plan(conn: psycopg.Connection[Row], plan: Plan[T]) -> T:
    """Carry out ``plan`` on a sync autocommit connection."""
    try:
        request = next(plan)
        while True:
            try:
                reply = _execute(conn, request)
            except psycopg.Error as exc:
                request = plan.throw(exc)
            else:
                request = plan.send(reply)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def run_async(conn: psycopg.AsyncConnection[Row], plan: Plan[T]) -> T:
    """Carry out ``plan`` on an async autocommit connection."""
    try:
        request = next(plan)
        while True:
            try:
                reply = await _execute_async(conn, request)
            except psycopg.Error as exc:
                request = plan.throw(exc)
            else:
                request = plan.send(reply)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def _execute(conn: psycopg.Connection[Row], request: Request) -> Result | list[Result]:
    if isinstance(request, Query):
        cur = conn.execute(request.text, request.params)
        return Result(cur.fetchall() if cur.description else [], cur.rowcount)
    with conn.pipeline(), conn.transaction():
        conn.execute(_SNAPSHOT)
        cursors = [conn.execute(q.text, q.params) for q in request.queries]
    return [Result(cur.fetchall(), cur.rowcount) for cur in cursors]


async def _execute_async(conn: psycopg.AsyncConnection[Row], request: Request) -> Result | list[Result]:
    if isinstance(request, Query):
        cur = await conn.execute(request.text, request.params)
        return Result(await cur.fetchall() if cur.description else [], cur.rowcount)
    async with conn.pipeline(), conn.transaction():
        await conn.execute(_SNAPSHOT)
        cursors = [await conn.execute(q.text, q.params) for q in request.queries]
    return [Result(await cur.fetchall(), cur.rowcount) for cur in cursors]
