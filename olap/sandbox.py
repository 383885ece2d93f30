"""Analysts' SQL in a throw-away DuckDB database that holds the views and nothing else.

Every ``sql()`` call gets a fresh in-memory database with external access off and
its configuration locked: no file or network access (``read_csv``, ``COPY … TO``,
``ATTACH`` of a file, ``INSTALL``/``LOAD``), no settings changes, no Python
variables resolved as tables. Its inputs are Arrow objects we register (live rows;
``pyarrow`` datasets for archive files on object storage, read by ``pyarrow`` on
DuckDB's behalf) and, on a local disk, exactly the archive files the snapshot
lists (``allowed_paths``). The reader's own database, its search index and its
secrets are out of reach, and whatever a query does to its database is gone when
it returns. Only one read-only statement runs; anything else is ``QueryRefused``
before DuckDB sees it: ``allowed_paths`` alone would let ``COPY … TO`` overwrite a
readable file. Why this design, and what was measured: ``docs/api.md``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from olap import frames, intervals
from oltp.errors import DatabaseError, InvalidQuery, QueryRefused

if TYPE_CHECKING:
    import polars as pl

CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": "false",
    "autoload_known_extensions": "false",
    "allow_community_extensions": "false",
    "python_enable_replacements": "false",
    "temp_directory": "",
}

_READ_ONLY = frozenset(
    {
        duckdb.StatementType.SELECT,
        duckdb.StatementType.EXPLAIN,
        duckdb.StatementType.MULTI,  # PIVOT: a type for its columns, then a SELECT
    }
)

# The analyst's own mistakes; any other DuckDB error is the store's.
_QUERY_ERRORS = (
    duckdb.ParserException,
    duckdb.SyntaxException,
    duckdb.BinderException,
    duckdb.CatalogException,
    duckdb.ConversionException,
    duckdb.OutOfRangeException,
    duckdb.TypeMismatchException,
    duckdb.InvalidTypeException,
    duckdb.InvalidInputException,
    duckdb.NotImplementedException,
    duckdb.OutOfMemoryException,
    duckdb.DependencyException,
    duckdb.ConstraintException,
)


def run(
    query: str, relations: Mapping[str, object], views: Mapping[str, str], readable: Collection[str] = ()
) -> pl.DataFrame:
    """``query`` over ``views`` (name -> SELECT, in order) in a fresh sandboxed database.

    ``relations`` are Arrow objects (``pa.Table``, ``pyarrow.dataset.Dataset``) registered by name;
    ``readable`` the local archive files the views' ``read_parquet`` may open (and nothing else may).
    """
    statement = read_only_statement(query)
    con = connect(readable)
    try:
        for name, source in relations.items():
            con.register(name, source)
        for name, body in views.items():
            con.execute(f"CREATE TEMP VIEW {name} AS {body}")
        try:
            table = con.sql(statement).to_arrow_table()
        except duckdb.IOException:
            raise  # a listed file vanished under a compaction: ``Sources.retry`` takes a fresh snapshot
        except duckdb.InvalidInputException as exc:
            if any(path in str(exc) for path in readable):
                raise  # a listed file that does not decode: ``Sources.retry`` names it (``ArchiveCorrupt``)
            raise InvalidQuery(f"invalid query: {_first_line(exc)}") from exc
        except duckdb.PermissionException as exc:
            raise QueryRefused(f"sql() runs without file, network or extension access: {_first_line(exc)}") from exc
        except _QUERY_ERRORS as exc:
            raise InvalidQuery(f"invalid query: {_first_line(exc)}") from exc
        except duckdb.Error as exc:
            raise DatabaseError(f"DuckDB error: {_first_line(exc)}") from exc
    finally:
        con.close()
    import polars as pl  # only sql() answers in polars: readers of the other calls never load it

    try:
        frame = pl.from_arrow(intervals.as_durations(table))
    except (pl.exceptions.PolarsError, pa.ArrowException) as exc:
        raise InvalidQuery(f"the result has a column type polars cannot hold; cast it: {_first_line(exc)}") from exc
    assert isinstance(frame, pl.DataFrame)
    return frames.utc_frame(frame)


def connect(readable: Collection[str] = ()) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory database with external access off but for ``readable``, in UTC, its settings locked."""
    con = duckdb.connect(config=CONFIG)
    try:
        # Exact files, never directories: ``allowed_directories`` would let COPY write beside them.
        con.execute("SET allowed_paths = $paths", {"paths": sorted(readable)})
        con.execute("SET enable_external_access = false")
        # TimeZone belongs to the ICU extension, which a connect-time config cannot name yet.
        con.execute("SET TimeZone = 'UTC'")
        # Last: once locked, not even SET GLOBAL can change a setting.
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def read_only_statement(query: str) -> str:
    """The one read-only statement in ``query``, or ``QueryRefused`` / ``InvalidQuery`` saying why not."""
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise InvalidQuery(f"invalid query: {_first_line(exc)}") from exc
    if len(statements) != 1:
        raise QueryRefused(f"sql() runs exactly one statement, got {len(statements)}")
    statement = statements[0]
    if statement.type not in _READ_ONLY:
        kind = statement.type.name
        raise QueryRefused(f"sql() runs read-only queries (SELECT, WITH, FROM, PIVOT, DESCRIBE, EXPLAIN), not {kind}")
    return statement.query


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
