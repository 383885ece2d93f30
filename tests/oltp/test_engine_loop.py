"""The engine loop of docs/engine.md, run as written: a worker killed mid-step is taken over."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from oltp.records import RunStatus, StepStatus
from oltp.store import RunStore

DOC = Path(__file__).resolve().parents[2] / "docs" / "engine.md"


def _program(tmp_path: Path) -> Path:
    [code] = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    program = tmp_path / "engine.py"
    program.write_text(code, encoding="utf-8")
    return program


def _wait_for(what: str, check: Callable[[], bool], worker: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert worker.poll() is None, f"the worker exited ({worker.returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_worker_killed_mid_step_is_replaced_once_its_lease_expires(dsn: str, tmp_path: Path) -> None:
    program = _program(tmp_path)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        with RunStore(dsn, migrate_schema=False) as store:
            rid = uuid.uuid4()
            store.start_run(uuid.uuid4(), "etl", rid, "manual")

            def steps() -> dict[str, Any]:
                detail = store.get_run_detail(rid)
                assert detail is not None and detail.steps is not None
                return {s.step_key: s for s in detail.steps}

            workers.append(subprocess.Popen([sys.executable, str(program), dsn, "w1", "hold"]))
            _wait_for("w1 hung in transform", lambda: "transform" in steps(), workers[0])
            os.kill(workers[0].pid, signal.SIGKILL)
            assert workers[0].wait(timeout=30) == -signal.SIGKILL
            [held] = [d for d in store.get_dispatches(rid) if d.step_key == "transform"]
            assert held.owner == "w1" and held.lease_expires_at is not None

            workers.append(subprocess.Popen([sys.executable, str(program), dsn, "w2", "-", "3"]))
            finished = lambda: store.get_run_detail(rid).status is RunStatus.SUCCEEDED  # type: ignore[union-attr]  # noqa: E731
            _wait_for("w2 finished the run", finished, workers[1])
            assert workers[1].wait(timeout=60) == 0

            done = steps()
            assert [(a.job_id, a.status) for a in done["transform"].attempts] == [
                ("w1", StepStatus.RUNNING),  # the killed worker's attempt: it never reported
                ("w2", StepStatus.SUCCEEDED),
            ]
            assert [(a.job_id, a.status) for a in done["extract"].attempts] == [("w1", StepStatus.SUCCEEDED)]
            assert [(a.job_id, a.status) for a in done["load"].attempts] == [("w2", StepStatus.SUCCEEDED)]
            assert store.get_dispatches(rid) == []
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=30)
