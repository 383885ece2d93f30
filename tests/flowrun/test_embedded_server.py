"""The embedded server's life: dead users never keep it alive, ``server status`` tells the truth, strangers stay out.

Each test has its own ``FLOWRUN_HOME``, so its own server; the ``flowrun``
executable and a Python process that opens the store are its users.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from flowrun import embedded
from tests.flowrun.conftest import FLOWRUN, clean_env

USER = """
import sys
from flowrun import FlowRunStore
store = FlowRunStore.open()
print("ready", flush=True)
sys.stdin.read()  # until killed
"""


def _flowrun(home: Path, *args: str) -> Any:
    done = subprocess.run(
        [str(FLOWRUN), *args], capture_output=True, text=True, env=clean_env(FLOWRUN_HOME=str(home)), timeout=180
    )
    assert done.returncode == 0, done
    return json.loads(done.stdout) if "--json" in args else done.stdout


def _postgres_processes(pgdata: Path) -> list[int]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and str(pgdata) in cmdline:
            found.append(process.pid)
    return found


def test_server_commands_and_a_killed_user(tmp_path: Path) -> None:
    home = tmp_path / "home"
    pgdata = home / "postgres"
    assert _flowrun(home, "migrate", "--json")["revision"]
    assert _flowrun(home, "server", "status", "--json")["running"] is False  # the last user stopped it
    assert _postgres_processes(pgdata) == []

    started = _flowrun(home, "server", "start", "--json")
    assert started["running"] and started["held"] and started["users"] == []
    assert _flowrun(home, "stats", "--json")["total_flows"] == 0
    assert _flowrun(home, "server", "status", "--json")["running"] is True  # held: outlives its users
    stopped = _flowrun(home, "server", "stop", "--json")
    assert stopped["stopped"] and not stopped["running"] and _postgres_processes(pgdata) == []

    user = subprocess.Popen(
        [sys.executable, "-c", USER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(FLOWRUN_HOME=str(home)),
    )
    try:
        assert user.stdout is not None and user.stdout.readline().strip() == "ready"
        status = _flowrun(home, "server", "status", "--json")
        assert status["running"] and status["users"] == [user.pid] and status["stale_users"] == []
        os.kill(user.pid, signal.SIGKILL)
        user.wait(timeout=30)
    finally:
        if user.poll() is None:
            user.kill()
        user.communicate()  # reaps it and closes its pipes
    status = _flowrun(home, "server", "status", "--json")
    assert status["running"] and status["users"] == [] and status["stale_users"] == [user.pid]  # the truth

    # The next user prunes the dead one and, being the last to leave, stops the server.
    assert _flowrun(home, "stats", "--json")["active_runs"] == 0
    status = _flowrun(home, "server", "status", "--json")
    assert not status["running"] and status["users"] == [] and status["stale_users"] == []
    deadline = time.monotonic() + 30
    while _postgres_processes(pgdata):
        assert time.monotonic() < deadline, "postgres outlived its last user"
        time.sleep(0.1)


def _as_nobody(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "nobody", "--", *command], capture_output=True, text=True, timeout=60, cwd="/"
    )


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runuser") is None, reason="needs root and runuser")
def test_another_local_user_cannot_connect(tmp_path: Path) -> None:
    # A data dir whose path is too long for a socket address: the socket goes to a private directory in /tmp.
    pgdata = tmp_path / ("d" * max(1, 120 - len(str(tmp_path)))) / "postgres"
    server = embedded.start(pgdata)
    try:
        assert server.socket_dir != pgdata and str(server.socket_dir).startswith("/tmp/")
        assert server.socket_dir == embedded.status(pgdata).socket_dir
        assert server.socket_dir.stat().st_mode & 0o777 == 0o700
        psql = [str(embedded.bin_path() / "psql"), "-w", "-X", server.dsn()]
        owner = subprocess.run([*psql, "-tAc", "select current_user"], capture_output=True, text=True, timeout=60)
        assert owner.stdout == "postgres\n"  # the owner gets in
        psql += ["-c", "select 1"]
        refused = _as_nobody(psql)
        assert refused.returncode != 0 and "Permission denied" in refused.stderr, refused
        # Even with the directory opened to everyone (as some tools do), authentication is peer: still refused.
        server.socket_dir.chmod(0o755)
        try:
            refused = _as_nobody(psql)
        finally:
            server.socket_dir.chmod(0o700)
        assert refused.returncode != 0 and "authentication failed" in refused.stderr, refused
    finally:
        embedded.leave(server)
    assert not embedded.status(pgdata).running


TWO_SERVERS = """
import sys
from pathlib import Path
from flowrun import embedded
first, second = (embedded.start(Path(p)) for p in sys.argv[1:3])
embedded.leave(first)  # the other one is left at exit
"""


def test_a_process_that_leaves_one_of_two_servers_still_stops_the_other_at_exit(tmp_path: Path) -> None:
    first, second = tmp_path / "one" / "pgdata", tmp_path / "two" / "pgdata"
    done = subprocess.run(
        [sys.executable, "-c", TWO_SERVERS, str(first), str(second)], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    for pgdata in (first, second):
        assert embedded.status(pgdata).initialised
        assert not embedded.status(pgdata).running, pgdata
        assert _postgres_processes(pgdata) == []
