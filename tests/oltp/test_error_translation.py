"""Driver errors from a real server leave the store as its own taxonomy, by SQLSTATE.

``StoreUnavailable`` promises "transient, safe to retry", so only errors that say
the server cannot be reached may become it; a statement the server refuses for
good (a key too long for its index, a statement timeout) is a ``DatabaseError``.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest

from oltp.connection import translate_errors
from oltp.errors import DatabaseError, FlowRunStoreError, StoreUnavailable
from oltp.store import RunStore


def _translated(dsn: str, statement: str) -> FlowRunStoreError:
    with psycopg.connect(dsn, autocommit=True) as conn, pytest.raises(FlowRunStoreError) as info, translate_errors():
        conn.execute(statement)
    assert isinstance(info.value.__cause__, psycopg.Error), "raised from the driver's error"
    return info.value


def test_a_terminated_session_is_unavailable(dsn: str) -> None:
    error = _translated(dsn, "SELECT pg_terminate_backend(pg_backend_pid())")
    assert type(error) is StoreUnavailable
    assert isinstance(error.__cause__, psycopg.errors.AdminShutdown)


def test_an_unreachable_server_is_unavailable(tmp_path: object) -> None:
    with pytest.raises(StoreUnavailable) as info, translate_errors():
        psycopg.connect(f"host={tmp_path} port=1 dbname=none connect_timeout=2")
    assert info.value.__cause__ is not None


@pytest.mark.parametrize(
    ("statement", "cause"),
    [
        ("SET statement_timeout = 1; SELECT pg_sleep(0.2)", psycopg.errors.QueryCanceled),
        ("SELECT 1/0", psycopg.errors.DivisionByZero),
        ("SELECT * FROM no_such_table", psycopg.errors.UndefinedTable),
    ],
    ids=["statement-timeout", "division", "undefined-table"],
)
def test_errors_that_retrying_cannot_fix_are_database_errors(dsn: str, statement: str, cause: type) -> None:
    error = _translated(dsn, statement)
    assert type(error) is DatabaseError and isinstance(error.__cause__, cause)


def test_a_key_too_large_for_its_index_is_a_database_error_not_unavailable(dsn: str) -> None:
    # The store refuses step keys this long before writing; a raw statement shows the mapping.
    with RunStore(dsn, migrate_schema=False) as store:
        rid = uuid.uuid4()
        store.start_run(uuid.uuid4(), "f", rid, "manual")
    error = _translated(
        dsn,
        "INSERT INTO flowrun.flow_dispatches (run_id, step_key, dispatched_at)"
        f" SELECT '{rid}', string_agg(md5(i::text), ''), now() FROM generate_series(1, 200) i",
    )
    assert type(error) is DatabaseError
    assert isinstance(error.__cause__, psycopg.errors.ProgramLimitExceeded)


def test_every_public_error_is_importable_from_flowrun() -> None:
    import flowrun
    import oltp.errors
    import sync.errors

    for module in (oltp.errors, sync.errors):
        for name, value in vars(module).items():
            if isinstance(value, type) and issubclass(value, FlowRunStoreError):
                assert getattr(flowrun, name) is value, name
                assert name in flowrun.__all__


@pytest.mark.parametrize(
    ("sqlstate", "connection_error", "expected"),
    [
        (None, True, StoreUnavailable),
        (None, False, DatabaseError),
        ("08006", False, StoreUnavailable),
        ("53300", False, StoreUnavailable),
        ("57P01", False, StoreUnavailable),
        ("40P01", False, StoreUnavailable),
        ("57014", True, DatabaseError),
        ("54000", True, DatabaseError),
        ("23505", False, DatabaseError),
    ],
)
def test_one_sqlstate_table_for_every_driver(sqlstate: str | None, connection_error: bool, expected: type) -> None:
    from oltp.sqlstate import error_for

    assert type(error_for(sqlstate, "m", connection_error=connection_error)) is expected


def test_adbc_errors_go_through_the_same_table(dsn: str) -> None:
    from sync.arrow_connection import ArrowConnection

    with ArrowConnection(dsn, "flowrun") as conn, pytest.raises(DatabaseError) as refused:
        conn.execute("SELECT 1/0")
    assert "[22012]" in str(refused.value)
    # A lock wait that times out (55P03) is transient on every path, ADBC's included.
    with psycopg.connect(dsn) as holder, ArrowConnection(dsn, "flowrun") as conn:
        holder.execute("LOCK TABLE flowrun.flow_runs IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(StoreUnavailable) as busy, conn.transaction():
            conn.execute("SET LOCAL lock_timeout = '50ms'")
            conn.execute("SELECT count(*) FROM flow_runs")
        assert "lock not available" in str(busy.value)
