"""A PostgreSQL connection that speaks Arrow: parameters in, tables out.

The archive jobs move columns, not rows, so they talk to PostgreSQL through
ADBC (``adbc-driver-postgresql``): results arrive as Arrow tables with the
archive's own types (``arrow.uuid``, ``timestamp[us, UTC]``), and whole Arrow
arrays bind as one array parameter (``= ANY($1::uuid[])``,
``unnest($1::uuid[], $2::int8[])``). No value becomes a Python object on the
way. The driver reads a statement without parameters through binary ``COPY``,
one with parameters through a whole libpq result converted value by value (more
CPU, the result held twice): the export's large reads therefore take their keys
from a table instead (``sync.snapshot``). Driver errors leave as the store's
taxonomy.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import adbc_driver_manager
import pyarrow as pa
from psycopg import sql

from oltp.sqlstate import error_for, first_line


def _import_dbapi() -> None:
    """Import ADBC's DB-API without the polars bind backend it registers when polars is installed.

    That import alone costs a reader 0.2-0.9 s at start (polars' runtime library), for a
    backend used only when asked for by name; we bind Arrow arrays and tuples through its
    default (pyarrow) one. A process that imported polars already keeps the backend, and so
    does one with other threads running: hiding polars from one import hides it from every
    thread, and another thread's ``import polars`` in that moment would fail.
    """
    hide = "polars" not in sys.modules and threading.active_count() == 1
    if hide:
        sys.modules["polars"] = None  # type: ignore[assignment]  # an ImportError for this one import
    try:
        import adbc_driver_manager.dbapi  # noqa: F401
    finally:
        if hide:
            del sys.modules["polars"]


_import_dbapi()
import adbc_driver_postgresql.dbapi as adbc  # noqa: E402

# olap.live reads live rows through the same driver, imported here once.
__all__ = ["ArrowConnection", "adbc", "array_param", "scalar_param", "translate_adbc_errors"]


@contextmanager
def translate_adbc_errors() -> Iterator[None]:
    """Re-raise ADBC errors by the store's SQLSTATE table (``oltp.sqlstate``), chained to the original."""
    try:
        yield
    except adbc_driver_manager.Error as exc:
        connection_error = isinstance(exc, adbc_driver_manager.OperationalError | adbc_driver_manager.InterfaceError)
        raise error_for(exc.sqlstate or None, first_line(exc), connection_error=connection_error) from exc


def array_param(values: pa.Array) -> pa.Array:
    """Wrap an array as ONE list value, to bind as a PostgreSQL array parameter."""
    return pa.ListArray.from_arrays(pa.array([0, len(values)], pa.int32()), values)


def scalar_param(value: Any, type_: pa.DataType) -> pa.Array:
    """A one-value array of ``type_``, to bind as a scalar parameter."""
    return pa.array([value], type_)


class ArrowConnection:
    """One ADBC connection to the store's schema; explicit transactions only."""

    def __init__(self, dsn: str, schema: str) -> None:
        with translate_adbc_errors():
            self._conn = adbc.connect(dsn, autocommit=False)
            self._cur = self._conn.cursor()
            self._cur.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(schema)).as_string())
            self._conn.commit()

    def __enter__(self) -> ArrowConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back by the server)."""
        with translate_adbc_errors():
            self._cur.close()
            self._conn.close()

    @contextmanager
    def transaction(self, *, snapshot: bool = False, by_key: bool = False) -> Iterator[None]:
        """Commit the block's statements together.

        ``snapshot`` makes it REPEATABLE READ, READ ONLY. ``by_key`` is for statements that
        touch a batch's rows through ``= ANY($1::uuid[])`` on a primary key: PostgreSQL
        underestimates how selective a large id array is on a big table and would scan the
        whole table for every batch (cost growing with the store), so scans are disabled.
        """
        # ADBC has already opened the transaction (at connect or at the last commit):
        # SET TRANSACTION is therefore its first statement.
        with translate_adbc_errors():
            if snapshot:
                self._cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            if by_key:
                self._cur.execute("SET LOCAL enable_seqscan = off")
            try:
                yield
            except BaseException:
                with suppress(adbc_driver_manager.Error):  # the original error matters more
                    self._conn.rollback()
                raise
            self._conn.commit()

    def query(self, query: str, *params: pa.Array) -> pa.Table:
        """Run a statement with positional parameters (``$1``...) and return its rows."""
        with translate_adbc_errors():
            self._execute(query, params)
            return self._cur.fetch_arrow_table()

    def execute(self, query: str, *params: pa.Array) -> None:
        """Run a statement that returns no rows."""
        with translate_adbc_errors():
            self._execute(query, params)

    def rows(self, query: str, *params: pa.Array) -> list[tuple[Any, ...]]:
        """Run a statement and return its (few) rows as Python tuples."""
        with translate_adbc_errors():
            self._execute(query, params)
            return list(self._cur.fetchall())

    def _execute(self, query: str, params: tuple[pa.Array, ...]) -> None:
        if params:
            batch = pa.record_batch(list(params), names=[f"p{i}" for i in range(1, len(params) + 1)])
            self._cur.execute(query, parameters=batch)
        else:
            self._cur.execute(query)
