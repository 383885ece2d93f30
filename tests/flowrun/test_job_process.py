"""The ``flowrun`` command sets its allocators before they load; an operator's own settings win."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from importlib import metadata

import pytest

from flowrun import job_process
from tests.flowrun.conftest import clean_env

# The real entry point in a fresh interpreter, with the allocators asked to print the options
# they run with (jemalloc at exit, mimalloc when it starts).
_COMMAND = """
import json, sys
from flowrun import job_process
job_process.ENVIRONMENT["_RJEM_MALLOC_CONF"] += ",stats_print:true"
job_process.ENVIRONMENT["MIMALLOC_VERBOSE"] = "1"
applied = job_process.configure
job_process.configure = lambda: print(json.dumps(applied()), flush=True) or []
sys.argv = ["flowrun", "--help"]
from flowrun.launch import main
try:
    main()
except SystemExit:
    pass
import pyarrow as pa
pa.allocate_buffer(10)  # mimalloc starts on first use at the latest
print(json.dumps(job_process.keep_heap()), flush=True)  # what the archive jobs' commands call
"""
_VARIABLES = (
    *job_process.ENVIRONMENT,
    "MIMALLOC_VERBOSE",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "GLIBC_TUNABLES",
    "MIMALLOC_RESET_DELAY",
)


def _run(**extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in clean_env(**extra).items() if k not in _VARIABLES or k in extra}
    return subprocess.run([sys.executable, "-c", _COMMAND], env=env, capture_output=True, text=True, timeout=120)


def test_the_command_configures_every_allocator_before_it_loads() -> None:
    done = _run()
    assert done.returncode == 0, done.stderr[-2000:]
    applied = json.loads(done.stdout.splitlines()[0])
    assert {"MIMALLOC_PURGE_DELAY", "_RJEM_MALLOC_CONF"} <= set(applied)
    # What the allocators themselves report: set before pyarrow and deltalake loaded.
    assert "option 'purge_delay': 30000" in done.stderr, done.stderr[-2000:]
    assert "opt.dirty_decay_ms: 30000" in done.stderr
    assert "opt.muzzy_decay_ms: 30000" in done.stderr
    kept = json.loads(done.stdout.splitlines()[-1])
    assert len(kept) == (2 if platform.libc_ver()[0] == "glibc" else 0), kept


def test_an_operators_own_settings_win() -> None:
    done = _run(
        MIMALLOC_PURGE_DELAY="7",
        MIMALLOC_VERBOSE="1",
        _RJEM_MALLOC_CONF="stats_print:true,dirty_decay_ms:1234",
        MALLOC_TRIM_THRESHOLD_="1048576",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[0]) == []
    assert json.loads(done.stdout.splitlines()[-1]) == []
    assert "option 'purge_delay': 7" in done.stderr, done.stderr[-2000:]
    assert "opt.dirty_decay_ms: 1234" in done.stderr
    assert "opt.muzzy_decay_ms: 30000" not in done.stderr


def test_mimallocs_older_name_for_the_delay_is_an_operators_setting_too() -> None:
    done = _run(MIMALLOC_RESET_DELAY="7", MIMALLOC_VERBOSE="1")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[0]) == ["_RJEM_MALLOC_CONF"]
    assert "option 'purge_delay': 7" in done.stderr, done.stderr[-2000:]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's tunables")
def test_glibc_thresholds_set_as_tunables_win() -> None:
    # GLIBC_TUNABLES is glibc's current way to set what MALLOC_TRIM_THRESHOLD_ sets; mallopt would override it.
    tunables = "glibc.malloc.arena_max=4:glibc.malloc.trim_threshold=1048576"
    done = _run(GLIBC_TUNABLES=tunables)
    assert done.returncode == 0, done.stderr[-2000:]
    assert {"MIMALLOC_PURGE_DELAY", "_RJEM_MALLOC_CONF"} <= set(json.loads(done.stdout.splitlines()[0]))
    assert json.loads(done.stdout.splitlines()[-1]) == []


def test_importing_the_package_loads_none_of_the_configured_libraries() -> None:
    # flowrun.launch imports the package first: it must not load them before configure().
    code = "import sys, flowrun, flowrun.launch; print([m for m in ('pyarrow', 'deltalake') if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_the_installed_command_starts_at_the_launcher() -> None:
    (script,) = metadata.entry_points(group="console_scripts", name="flowrun")
    assert script.value == "flowrun.launch:main"
