"""Whatever a user types or points at ends as one line on stderr, exit code 2, and an unchanged store.

A table of hostile arguments (durations, dates, paths, environment variables,
nesting depth, paging bounds near 2**63, NaN waits, bad DSNs, unknown options)
is fed to every command through the console entry point itself (``main``, in
this process: one import instead of a process start-up per case). Each case
must end with SystemExit(2), exactly one ``error: `` line, no traceback, nothing
on stdout, and the store's tables, archive and data dir as they were. The same
mistakes through the Python API raise typed ``FlowRunStoreError``/``ValueError``.
"""

from __future__ import annotations

import math
import re
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from flowrun import FlowRunStore, FlowRunStoreError, InvalidArgument
from flowrun import cli as flowrun_cli
from tests.flowrun.conftest import clean_env

BIG = str(2**63)
DEEP_SQL = "select " + "(" * 5000 + "1" + ")" * 5000

# (arguments, environment, a word the error line must contain); "{file}" is a regular file, "{dsn}" the test's database.
CASES: list[tuple[list[str], dict[str, str], str]] = [
    # durations
    (["prune", "--older-than", "1000000000d"], {}, "duration"),
    (["prune", "--older-than", "99999999999999"], {}, "duration"),
    (["prune", "--older-than", "9" * 400], {}, "duration"),
    (["prune", "--older-than", "-1d"], {}, "duration"),
    (["prune", "--older-than", "nan"], {}, "duration"),
    (["prune", "--older-than", "inf"], {}, "duration"),
    (["prune", "--older-than", ""], {}, "duration"),
    (["prune", "--older-than", "7 days"], {}, "duration"),
    (["prune", "--older-than", "1d1d"], {}, "duration"),
    (["prune", "--older-than", "1s1d"], {}, "duration"),
    (["prune"], {}, "--older-than"),
    (["export", "--every", "soon"], {}, "soon"),
    (["export", "--every", "0"], {}, "--every"),
    (["export", "--every", "1000000000d"], {}, "duration"),
    (["export", "--wait", "nan"], {}, "duration"),
    (["export", "--wait", "-5s"], {}, "duration"),
    (["export", "--wait", "99999999999999"], {}, "wait"),
    (["export", "--wait", "1000000000d"], {}, "duration"),
    (["compact", "--wait", "abc"], {}, "duration"),
    (["compact", "--wait", "1e9"], {}, "duration"),
    (["verify", "--json", "--format", "csv"], {}, "contradicts"),
    (["export", "--batch-size", "0"], {}, "batch-size"),
    (["export", "--batch-size", "abc"], {}, "batch-size"),
    (["export", "--batch-size", "9" * 30], {}, "batch-size"),
    # dates and windows
    (["timeseries", "--until", "9999-12-31T23:00-10:00"], {}, "--until"),
    (["timeseries", "--since", "0001-01-01T00:00+10:00"], {}, "--since"),
    (["timeseries", "--until", "0001-01-01T00:00Z"], {}, "window"),
    (["timeseries", "--since", "9999-12-31T23:00Z"], {}, "since"),
    (["timeseries", "--since", "2026-03-01T00:00"], {}, "time zone"),
    (["timeseries", "--until", "yesterday"], {}, "--until"),
    (["timeseries", "--since", ""], {}, "--since"),
    (["timeseries", "--since", "2026-02-30T00:00Z"], {}, "--since"),
    (["timeseries", "--hour", "--day"], {}, "--hour"),
    (["timeseries", "--since", "2026-03-02T00:00Z", "--until", "2026-03-01T00:00Z"], {}, "since"),
    (["timeseries", "--hour", "--since", "2020-01-01T00:00Z", "--until", "2026-01-01T00:00Z"], {}, "10000"),
    (["timeseries", "--flow", ""], {}, "flow"),
    (["timeseries", "--flow", "no-such-flow"], {}, "no-such-flow"),
    # paging and filters
    (["runs", "--skip", "-1"], {}, "skip"),
    (["runs", "--skip", str(2**63 - 1)], {}, "skip"),
    (["runs", "--skip", BIG], {}, "skip"),
    (["runs", "--skip", "9" * 30], {}, "skip"),
    (["runs", "--take", "0"], {}, "take"),
    (["runs", "--take", "1001"], {}, "take"),
    (["runs", "--take", "-1"], {}, "take"),
    (["runs", "--take", "abc"], {}, "take"),
    (["runs", "--take", BIG], {}, "take"),
    (["runs", "--status", "Exploded"], {}, "Exploded"),
    (["runs", "--status", ""], {}, "RunStatus"),
    (["runs", "--flow", "no-such-flow"], {}, "no-such-flow"),
    (["runs", "--format", "xml"], {}, "xml"),
    (["runs", "--json", "--format", "csv"], {}, "--json"),
    (["runs", "--bogus"], {}, "--bogus"),
    (["flows", "--take", "3"], {}, "--take"),
    # run ids
    (["show", "xyz!"], {}, "run_id"),
    (["show", ""], {}, "RUN_ID"),
    (["show", "12"], {}, "run_id"),
    (["show", "0" * 37], {}, "run_id"),
    (["show"], {}, "RUN_ID"),
    # SQL
    (["sql", "   "], {}, "empty"),
    (["sql", "select from where"], {}, "query"),
    (["sql", "select * from nowhere"], {}, "nowhere"),
    (["sql", DEEP_SQL], {}, "query"),
    # paths
    (["--archive", "{file}", "export"], {}, "archive"),
    (["--archive", "{file}/sub", "export"], {}, "archive"),
    (["--archive", "/proc/flowrun-archive", "export"], {}, "archive"),
    (["--home", "{file}/home", "--dsn", "", "stats"], {}, "{file}"),
    (["--home", "/dev/null", "--dsn", "", "server", "start"], {}, "/dev/null"),
    # environment variables
    (["stats"], {"FLOWRUN_POOL_SIZE": "abc"}, "FLOWRUN_POOL_SIZE"),
    (["stats"], {"FLOWRUN_POOL_SIZE": "0"}, "pool_size"),
    (["stats"], {"FLOWRUN_POOL_SIZE": "-1"}, "pool_size"),
    (["stats"], {"FLOWRUN_POOL_SIZE": "9" * 30}, "pool_size"),
    (["stats"], {"FLOWRUN_SCHEMA": "bad schema;"}, "schema"),
    (["stats"], {"FLOWRUN_SCHEMA": "x" * 100}, "schema"),
    (["info"], {"FLOWRUN_POOL_SIZE": "abc"}, "FLOWRUN_POOL_SIZE"),
    (["--dsn", 'missing = "', "stats"], {}, "invalid DSN"),
    (["--dsn", "postgresql://[::1", "stats"], {}, "invalid DSN"),
    (["--dsn", "", "stats"], {"FLOWRUN_DSN": "nonsense"}, "invalid DSN"),
    # the demo and the CLI itself
    (["demo", "--runs", "-1"], {}, "--runs"),
    (["demo", "--threads", "0"], {}, "--threads"),
    (["demo", "--threads", "1000"], {}, "--threads"),
    (["no-such-command"], {}, "no-such-command"),
    (["server", "explode"], {}, "explode"),
]


def _table_counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        counts = {}
        for table in ("flow_runs", "flow_steps", "flow_step_attempts", "export_outbox", "archive_state"):
            row = conn.execute(sql.SQL("SELECT count(*) FROM flowrun.{}").format(sql.Identifier(table))).fetchone()
            assert row is not None
            counts[table] = int(row[0])
        return counts


@pytest.fixture
def signals_restored() -> Iterator[None]:
    """``main`` installs its SIGINT/SIGTERM handlers; give pytest its own back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_the_table_is_large() -> None:
    assert len(CASES) >= 60
    commands = {next(a for a in args if not a.startswith("-") and a not in ("{file}",)) for args, _, _ in CASES}
    assert {"prune", "export", "compact", "timeseries", "runs", "show", "sql", "stats", "demo", "flows"} <= commands


def test_hostile_arguments_are_one_line_exit_2_and_change_nothing(
    dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    signals_restored: None,
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory\n")
    archive, home = tmp_path / "archive", tmp_path / "home"
    before = _table_counts(dsn)
    for key in list(clean_env()):
        monkeypatch.setenv(key, clean_env()[key])
    for key in [k for k in __import__("os").environ if k.startswith("FLOWRUN_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("FLOWRUN_HOME", str(home))
    failures = []
    for args, env, needle in CASES:
        argv = [a.replace("{file}", str(a_file)) for a in args]
        if "--dsn" not in argv:
            argv = ["--dsn", dsn, *(["--archive", str(archive)] if "--archive" not in argv else []), *argv]
        with monkeypatch.context() as m:
            for key, value in env.items():
                m.setenv(key, value)
            m.setattr(sys, "argv", ["flowrun", *argv])
            with pytest.raises(SystemExit) as exit_info:
                flowrun_cli.main()
        captured = capsys.readouterr()
        lines = [line for line in captured.err.splitlines() if line.strip()]
        word = needle.replace("{file}", str(a_file)).lower()
        ok = (
            exit_info.value.code == 2
            and captured.out == ""
            and len(lines) == 1
            and lines[0].startswith("error: ")
            and word in lines[0].lower()
            and "Traceback" not in captured.err
        )
        if not ok:
            failures.append((args, env, exit_info.value.code, captured.out[:200], captured.err[:400]))
    assert failures == [], "\n".join(map(repr, failures))
    assert _table_counts(dsn) == before
    assert not archive.exists() and not home.exists()
    assert a_file.read_text() == "not a directory\n"


def test_hostile_arguments_through_the_api_raise_typed_errors(
    dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWRUN_POOL_SIZE", "abc")
    with pytest.raises(InvalidArgument, match="FLOWRUN_POOL_SIZE"):
        FlowRunStore.open(dsn=dsn)
    monkeypatch.delenv("FLOWRUN_POOL_SIZE")
    with FlowRunStore.open(dsn=dsn, migrate=False) as store:
        before = _table_counts(dsn)
        run = uuid.uuid4()
        deep = "[" * 100_000 + "]" * 100_000
        with pytest.raises(InvalidArgument, match="nested"):
            store.start_run(uuid.uuid4(), "deep", run, "manual", trigger_data=deep)
        for skip in (2**63 - 1, 2**63, 2**62 + 1):
            with pytest.raises(InvalidArgument, match="skip"):
                store.get_runs_page(skip=skip)
        for wait in (math.nan, math.inf, -1.0):
            with pytest.raises(InvalidArgument, match="wait"):
                store.export(wait=wait)
            with pytest.raises(InvalidArgument, match="wait"):
                store.compact(wait=wait)
        for older in ("1000000000d", "99999999999999", "nan"):
            with pytest.raises(InvalidArgument):
                store.prune(older)
        with pytest.raises(InvalidArgument, match="no flow named"):
            store.resolve_flow("no-such-flow")
        with pytest.raises(FlowRunStoreError):
            store.sql("select * from nowhere")
        # Values of the wrong type, not only the wrong text: os.fspath and dict() raise TypeError for them.
        for where in (123, None, b"/tmp/archive", ["/tmp/archive"], "  "):
            with pytest.raises(InvalidArgument, match="archive"):
                store.move_archive(where)  # type: ignore[arg-type]
        assert store.get_runs_page(skip=2**62).runs == []
        assert _table_counts(dsn) == before
    with pytest.raises(InvalidArgument, match="invalid DSN"):
        FlowRunStore.open(dsn='missing = "')
    a_file = tmp_path / "a-file"
    a_file.write_text("not an archive\n")
    with pytest.raises(InvalidArgument, match=re.escape(f"archive {a_file} is not a directory")):
        FlowRunStore.open(dsn=dsn, archive=a_file)
    wrong_types: list[dict[str, object]] = [
        {"archive": 123},
        {"archive": b"/tmp/archive"},
        {"home": 7},
        {"dsn": 5432},
        {"storage_options": "endpoint=http://127.0.0.1"},
        {"storage_options": {"allow_http": True}},
    ]
    for arguments in wrong_types:
        with pytest.raises(InvalidArgument, match=next(iter(arguments))):
            FlowRunStore.open(**arguments)  # type: ignore[arg-type]
