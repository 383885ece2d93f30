"""A new process that only reads starts fast: it never imports the migration stack or polars.

Every ``flowrun runs --search`` is a new process, so its imports are part of every
search. alembic, SQLAlchemy (migrations) and polars (frames for analysts) cost about
a second together; they load only for the commands that use them. The check runs the
real entry points in a subprocess and looks at what it imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flowrun import FlowRunStore
from tests.flowrun.conftest import Cli, clean_env

# Loaded only by `flowrun migrate`, the demo, export and the other archive jobs, `sql` and the frames.
HEAVY = ("alembic", "sqlalchemy", "mako", "polars")

_READER = """
import json, sys
from flowrun.cli import main

result, argv = sys.argv[1], sys.argv[2:]
codes = []
for command in (["runs", "--search", "needle-7"], ["stats"], ["runs", "--status", "failed"]):
    sys.argv = ["flowrun", *argv, *command, "--json"]
    try:
        main()
    except SystemExit as exc:
        codes.append(exc.code)
from olap import RunAnalytics
reader = RunAnalytics(argv[1], argv[3])
total = reader.get_runs_page(search="needle-7", take=5).total_count
reader.close()
import flowrun, oltp
names = [getattr(module, name) for module in (flowrun, oltp) for name in module.__all__]
with open(result, "w") as out:
    json.dump({"codes": codes, "total": total, "names": len(names), "loaded": sorted(set(sys.modules))}, out)
"""


def test_reading_commands_import_neither_migrations_nor_polars(cli: Cli, tmp_path: Path) -> None:
    began = datetime.now(UTC) - timedelta(hours=1)
    with FlowRunStore.open(dsn=cli.dsn, archive=cli.archive, clock=lambda: began) as store:
        for n in range(3):
            run = store.start_run(uuid.uuid4(), "startup", uuid.uuid4(), f"needle-{5 + n}")
            store.complete_run(run.id, "Failed" if n else "Succeeded")
        assert store.export().runs == 3  # archived runs, so the search reads the archive's index too
    result = tmp_path / "result.json"
    argv = ["--dsn", cli.dsn, "--archive", str(cli.archive)]
    done = subprocess.run(
        [sys.executable, "-c", _READER, str(result), *argv],
        env=clean_env(FLOWRUN_HOME=str(cli.home)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(result.read_text())
    assert report["codes"] == [0, 0, 0] and report["total"] == 1, (report["codes"], done.stdout)
    assert report["names"] > 30  # every public name still resolves (loading the stores on demand)
    assert {"duckdb", "psycopg"} <= set(report["loaded"])  # the check looks at the right process
    assert sorted(m for m in HEAVY if m in report["loaded"]) == []


_THREADED = """
import sys, threading
release = threading.Event()
other = threading.Thread(target=release.wait)
other.start()
import sync.arrow_connection
release.set()
other.join()
print("polars" in sys.modules)
"""


def test_polars_is_never_hidden_while_other_threads_run() -> None:
    # Hiding polars from ADBC's import hides it from every thread: with another thread alive
    # (it might be importing polars that moment), ADBC imports it as it would on its own.
    done = subprocess.run(
        [sys.executable, "-c", _THREADED], env=clean_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
