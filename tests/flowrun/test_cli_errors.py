"""The CLI's behaviour on user mistakes and unusable stores: one readable line, exit code 2, nothing written."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from flowrun.cli import app
from oltp import migrate
from oltp.errors import InvalidArgument
from sync.archive_location import ArchiveLocation
from tests.conftest import PgServer
from tests.flowrun.conftest import FLOWRUN, Cli, clean_env

COMMANDS = [
    "demo",
    "dashboard",
    "migrate",
    "export",
    "prune",
    "compact",
    "move-archive",
    "verify",
    "stats",
    "flows",
    "timeseries",
    "runs",
    "show",
    "sql",
    "info",
]
UNREACHABLE = "postgresql://flowrun@127.0.0.1:1/nowhere?connect_timeout=5"


def _one_error_line(stderr: str, *needles: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle.lower() in lines[0].lower(), lines[0]


def _table_counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return {
            table: conn.execute(sql.SQL("SELECT count(*) FROM flowrun.{}").format(sql.Identifier(table))).fetchone()[0]  # type: ignore[index]
            for table in ("flow_runs", "flow_steps", "flow_step_attempts", "export_outbox", "archive_state")
        }


def test_every_command_has_help() -> None:
    # The executable itself for the top level and one command; every other command's help in process
    # (the same typer app the console script runs, without a process start-up per command).
    top = subprocess.run([str(FLOWRUN), "--help"], capture_output=True, text=True, env=clean_env(), timeout=60)
    assert top.returncode == 0 and "Usage: flowrun" in top.stdout
    for word in (*COMMANDS, "--dsn", "--archive", "--home", "--schema"):
        assert word in top.stdout
    demo = subprocess.run([str(FLOWRUN), "demo", "--help"], capture_output=True, text=True, env=clean_env(), timeout=60)
    assert demo.returncode == 0 and "--runs" in demo.stdout
    runner = CliRunner()
    for name in COMMANDS:
        result = runner.invoke(app, [name, "--help"], prog_name="flowrun", env={"COLUMNS": "200"})
        assert result.exit_code == 0, (name, result.output)
        assert f"Usage: flowrun {name}" in result.output
        assert "--json" in result.output, name
        assert "<bool>" not in result.output, name  # flags are flags, not typed values
    for name in ("status", "start", "stop"):
        result = runner.invoke(app, ["server", name, "--help"], prog_name="flowrun", env={"COLUMNS": "200"})
        assert result.exit_code == 0 and f"Usage: flowrun server {name}" in result.output


def test_version() -> None:
    done = subprocess.run([str(FLOWRUN), "--version"], capture_output=True, text=True, env=clean_env(), timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("flowrun ") and done.stdout.split()[1][0].isdigit()


# The full table of hostile arguments runs in process (test_hostile_arguments.py); these few go through the
# real executable, its start-up and its signal handlers.
MISTAKES = [
    (["runs", "--status", "Exploded"], "Exploded"),
    (["runs", "--take", "5000"], "take"),
    (["timeseries", "--until", "9999-12-31T23:00-10:00"], "--until"),
    (["prune", "--older-than", "1000000000d"], "duration"),
]


def test_user_mistakes_are_one_line_exit_2_and_write_nothing(cli: Cli) -> None:
    before = _table_counts(cli.dsn)
    procs = [
        (
            args,
            needle,
            subprocess.Popen(
                [str(FLOWRUN), "--dsn", cli.dsn, "--archive", str(cli.archive), *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=clean_env(FLOWRUN_HOME=str(cli.home)),
            ),
        )
        for args, needle in MISTAKES
    ]
    for args, needle, proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 2, (args, stdout, stderr)
        assert stdout == "", args
        _one_error_line(stderr, needle)
    assert _table_counts(cli.dsn) == before
    assert not cli.archive.exists()
    assert not cli.home.exists()


def test_an_archive_uri_the_readers_cannot_reach_is_refused_at_once(cli: Cli) -> None:
    # az:// was written by delta-rs but unreadable (pyarrow has no such scheme): refused, naming the form that works.
    before = _table_counts(cli.dsn)
    env = clean_env(FLOWRUN_DSN=cli.dsn, FLOWRUN_HOME=str(cli.home))
    for args in (["stats"], ["export"]):
        done = cli.run("--archive", "az://container/archive", *args, code=2, target=False, env=env)
        _one_error_line(done.stderr, "unsupported archive uri", "abfss://")
    done = cli.run("--archive", "ftp://host/archive", "stats", code=2, target=False, env=env)
    _one_error_line(done.stderr, "unsupported archive uri", "'s3'")
    with pytest.raises(InvalidArgument, match="abfss://"):
        ArchiveLocation.resolve("az://container/archive")
    assert _table_counts(cli.dsn) == before


def test_a_gcs_archive_without_credentials_is_unavailable_in_seconds_not_a_hang(cli: Cli) -> None:
    # pyarrow's GCS client retried for 15 minutes by default, deaf to Ctrl-C; cli.run gives up after 120 s.
    env = clean_env(FLOWRUN_DSN=cli.dsn, FLOWRUN_HOME=str(cli.home))
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)  # none to find: the client asks the metadata server, in vain
    done = cli.run("--archive", "gs://no-such-bucket/archive", "stats", code=2, target=False, env=env)
    _one_error_line(done.stderr, "gs://no-such-bucket/archive is unavailable")


@pytest.mark.parametrize("args", [["stats"], ["migrate"], ["export"], ["runs", "--json"], ["demo", "--runs", "5"]])
def test_unreachable_dsn_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, args: list[str]) -> None:
    home, archive = tmp_path / "home", tmp_path / "archive"
    done = subprocess.run(
        [str(FLOWRUN), "--dsn", UNREACHABLE, "--archive", str(archive), *args],
        capture_output=True,
        text=True,
        env=clean_env(FLOWRUN_HOME=str(home)),
        timeout=60,
    )
    assert done.returncode == 2, done
    assert done.stdout == ""
    _one_error_line(done.stderr, "unavailable", "127.0.0.1")
    assert not home.exists() and not archive.exists()


def test_unreachable_dsn_from_the_environment(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(FLOWRUN), "stats"],
        capture_output=True,
        text=True,
        env=clean_env(FLOWRUN_DSN=UNREACHABLE, FLOWRUN_HOME=str(tmp_path / "home")),
        timeout=60,
    )
    assert done.returncode == 2
    _one_error_line(done.stderr, "unavailable")
    assert not (tmp_path / "home").exists()


def test_migrate_creates_the_schema_on_an_empty_database(pg_server: PgServer, tmp_path: Path) -> None:
    name = f"flowrun_empty_{tmp_path.name[-12:]}".lower().replace("-", "_")
    with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        cli = Cli(dsn=pg_server.dsn_for(name), archive=tmp_path / "archive", home=tmp_path / "home")
        # Before migrating, commands that read refuse and name the command that fixes it.
        refused = cli.run("stats", code=2)
        _one_error_line(refused.stderr, "flowrun migrate")
        assert migrate.current_revision(cli.dsn, "flowrun") is None
        assert cli.json("migrate") == {"schema": "flowrun", "revision": migrate.head_revision()}
        assert migrate.current_revision(cli.dsn, "flowrun") == migrate.head_revision()
        again = cli.run("migrate")  # idempotent
        assert f"revision {migrate.head_revision()}" in again.stdout
        assert cli.json("stats") == {"total_flows": 0, "active_runs": 0, "completed_today": 0, "failed_today": 0}
    finally:
        with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_show_unknown_run_is_not_found_exit_1(cli: Cli) -> None:
    done = cli.run("show", "00000000-0000-4000-8000-000000000000", code=1)
    assert "not found" in done.stderr and done.stdout == ""
