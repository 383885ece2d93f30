"""Run an archive job in a child process that stops at a named stage, then kill it with SIGKILL.

The child is started with ``FLOWRUN_EXPORT_PAUSE_AT=<stage>:<n>`` (the test
hook in ``sync.crash_points``); it touches a signal file when it gets there
and waits. ``Child.kill_when_paused`` waits for that file and sends SIGKILL:
the moment of death is exact, and none of the job's cleanup code runs. A
child is spawned before the test prepares its data and imports the library
meanwhile; it starts its job when ``run`` sends it the arguments.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sync.crash_points import PAUSE_AT, PAUSE_SIGNAL

_CHILD = """
import json, sys
from datetime import datetime, timedelta
from sync import compact, export_completed_runs, prune
args = json.loads(sys.stdin.readline())
job, dsn, archive, size = args["job"], args["dsn"], args["archive"], args["size"]
clock = lambda: datetime.fromisoformat(args["now"])
if job == "export":
    export_completed_runs(dsn, archive, batch_size=size, clock=clock, wait=30)
elif job == "compact":
    compact(dsn, archive, clock=clock, max_rows_per_file=size, wait=30)
elif job == "prune":
    prune(dsn, timedelta(0), now=clock(), batch_size=size)
print("finished without pausing", flush=True)
"""


class Child:
    """A job process that will pause at ``stage`` and be killed there."""

    def __init__(self, stage: str, tmp: Path) -> None:
        self.stage = stage
        self.signal_file = tmp / f"paused-{stage.replace(':', '-')}-{time.monotonic_ns()}"
        env = {**os.environ, PAUSE_AT: stage, PAUSE_SIGNAL: str(self.signal_file)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", _CHILD],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, job: str, dsn: str, archive: str, now: str, size: int) -> None:
        """Start the job."""
        assert self.process.stdin is not None
        args = {"job": job, "dsn": dsn, "archive": archive, "now": now, "size": size}
        self.process.stdin.write(json.dumps(args) + "\n")
        self.process.stdin.flush()

    def kill_when_paused(self, timeout: float = 60.0) -> None:
        """Wait for the pause, SIGKILL the process and reap it; fail if it ended on its own."""
        deadline = time.monotonic() + timeout
        try:
            while not self.signal_file.exists():
                if self.process.poll() is not None:
                    out, err = self.process.communicate()
                    raise AssertionError(
                        f"the job ended ({self.process.returncode}) before {self.stage}:\n{out}\n{err}"
                    )
                if time.monotonic() > deadline:
                    raise AssertionError(f"the job never reached {self.stage}")
                time.sleep(0.005)
        finally:
            if self.process.poll() is None:
                os.kill(self.process.pid, signal.SIGKILL)
            self.process.communicate()
        assert self.process.returncode == -signal.SIGKILL

    def discard(self) -> None:
        """Kill a child that was never used."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()
