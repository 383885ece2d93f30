"""Archive jobs in child processes that stop at a named stage, to be killed (SIGKILL) or resumed there.

A child gets ``FLOWRUN_EXPORT_PAUSE_AT=<stage>:<n>`` (the test hook in
``sync.crash_points``); it writes a signal file when it gets there and waits.
``kill_when_paused`` waits for that file and sends SIGKILL: the moment of
death is exact, and none of the job's cleanup code runs. ``resume`` deletes the
file instead, so a test can write to the store at an exact moment of the job.
A child is spawned before the test prepares its data, imports the library
meanwhile, and starts its job when ``run`` sends it the arguments (the stage
travels with them: the hook reads the environment when a stage is reached).
``Spares`` keeps processes started ahead, already past their imports, for
tests whose data is ready at once (cloned from a prepared template).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sync.crash_points import PAUSE_AT, PAUSE_SIGNAL

_CHILD = """
import json, os, sys
from datetime import datetime, timedelta
from sync import ArchiveBusy, compact, export_completed_runs, prune, upgrade_archive
args = json.loads(sys.stdin.readline())
os.environ.update(args["env"])
job, dsn, archive, size, wait = args["job"], args["dsn"], args["archive"], args["size"], args["wait"]
clock = lambda: datetime.fromisoformat(args["now"])
try:
    if job == "export":
        result = export_completed_runs(dsn, archive, batch_size=size, clock=clock, wait=wait)._asdict()
    elif job == "upgrade":
        result = upgrade_archive(dsn, archive, batch_size=size, clock=clock, wait=wait)._asdict()
    elif job == "compact":
        result = compact(dsn, archive, clock=clock, max_rows_per_file=size, wait=wait)._asdict()
    else:
        result = {"pruned": prune(dsn, timedelta(0), now=clock(), batch_size=size)}
except ArchiveBusy as exc:
    print(json.dumps({"busy": str(exc)}), flush=True)
    sys.exit(3)
print(json.dumps(result), flush=True)
"""


class Child:
    """A job process that pauses at ``stage`` (``name:n``), or runs straight through when ``stage`` is None."""

    def __init__(self, stage: str | None, tmp: Path, process: subprocess.Popen[str] | None = None) -> None:
        self.stage = stage
        self.signal_file = tmp / f"paused-{(stage or 'none').replace(':', '-')}-{time.monotonic_ns()}"
        self.env = {PAUSE_AT: stage, PAUSE_SIGNAL: str(self.signal_file)} if stage is not None else {}
        self.process = process or spawn()

    def run(self, job: str, dsn: str, archive: str, now: str, size: int, *, wait: float = 30.0) -> None:
        """Start the job (a killed predecessor's session may hold the lock a moment longer: wait for it)."""
        assert self.process.stdin is not None
        args = {"job": job, "dsn": dsn, "archive": archive, "now": now, "size": size, "wait": wait, "env": self.env}
        self.process.stdin.write(json.dumps(args) + "\n")
        self.process.stdin.flush()

    def wait_paused(self, timeout: float = 60.0) -> None:
        """Block until the job reports it paused; fail if it ended first."""
        deadline = time.monotonic() + timeout
        while not self.signal_file.exists():
            if self.process.poll() is not None:
                out, err = self.process.communicate()
                raise AssertionError(f"the job ended ({self.process.returncode}) before {self.stage}:\n{out}\n{err}")
            if time.monotonic() > deadline:
                self.discard()
                raise AssertionError(f"the job never reached {self.stage}")
            time.sleep(0.005)

    def kill_when_paused(self) -> None:
        """Wait for the pause, SIGKILL the process there and reap it."""
        try:
            self.wait_paused()
        finally:
            if self.process.poll() is None:
                os.kill(self.process.pid, signal.SIGKILL)
            self.process.communicate()
        assert self.process.returncode == -signal.SIGKILL

    def resume(self) -> None:
        """Let a paused job go on."""
        self.signal_file.unlink()

    def result(self, timeout: float = 120.0) -> tuple[int, dict[str, Any]]:
        """Wait for the job to end: its exit code and the JSON it printed."""
        out, err = self.process.communicate(timeout=timeout)
        lines = out.strip().splitlines()
        assert lines, f"the job printed nothing (exit {self.process.returncode}):\n{err}"
        return self.process.returncode, json.loads(lines[-1])

    def discard(self) -> None:
        """Kill a child that is no longer needed."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


def spawn() -> subprocess.Popen[str]:
    """A job process importing the library, waiting for its job on stdin."""
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class Spares:
    """Job processes started ahead: taking one costs no interpreter start-up or imports."""

    def __init__(self, ahead: int = 0) -> None:
        self._ready: list[subprocess.Popen[str]] = [spawn() for _ in range(ahead)]

    def take(self, stage: str | None, tmp: Path) -> Child:
        """A child for ``stage`` on a process started earlier; another starts in its place."""
        process = self._ready.pop() if self._ready else spawn()
        self._ready.append(spawn())
        return Child(stage, tmp, process)

    def close(self) -> None:
        """Stop the processes nobody took."""
        for process in self._ready:
            process.kill()
            process.communicate()
        self._ready.clear()
