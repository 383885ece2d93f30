"""The allocator settings of a ``flowrun`` process, applied before its libraries load.

An archive job allocates and frees a few hundred MB for every batch, in three
allocators: glibc's (numpy, the PostgreSQL driver's result buffers), Arrow's
mimalloc and the jemalloc inside deltalake. By default each hands freed memory
back to the operating system at once or within seconds, so the next batch faults
the same amount in again and the kernel zeroes every page: in a 1M-run export a
fifth of the process's CPU time was the kernel's (``docs/benchmarks.md``, "The
export's page faults"). Here freed memory is kept for reuse a while instead.

The command's process is its own, so the settings are process-wide. mimalloc and
jemalloc read theirs from the environment when they load: ``configure()`` sets
them for every command, first thing (``flowrun.launch``), and they hand memory
unused for 30 s back, so an idle ``flowrun serve`` still returns it. glibc's heap
has no such clock (memory below its trim threshold stays until the process ends),
so ``keep_heap()`` is called by the archive jobs' commands only, when they start.
Child processes inherit the environment, which only tells the same allocators the
same. An operator's own setting of any of them wins. A program of its own that runs
archive jobs calls ``configure()`` first thing, before it imports the store, and
``keep_heap()`` before the job.
"""

from __future__ import annotations

import ctypes
import os
import platform

# Freed memory goes back to the OS after 30 s unused: a job reuses it batch after batch.
ENVIRONMENT = {
    "MIMALLOC_PURGE_DELAY": "30000",  # milliseconds (default 10)
    # jemalloc's prefixed build in deltalake (and polars): dirty pages become "muzzy" (MADV_FREE,
    # reused without a fault) after 30 s, and are returned 30 s later (defaults 10 s and 0).
    "_RJEM_MALLOC_CONF": "dirty_decay_ms:30000,muzzy_decay_ms:30000",
}
# glibc: blocks up to this size come from the heap, not a mapping of their own (the default
# threshold moves, up to 32 MiB: a batch's larger buffers were mapped and unmapped every time)...
MMAP_THRESHOLD = 256 * 2**20
# ... and the heap's free top is handed back only above this (default: twice the threshold).
TRIM_THRESHOLD = 512 * 2**20
# Older names the same allocators still read for a setting: one of them set is the operator's choice.
_LEGACY = {"MIMALLOC_PURGE_DELAY": ("MIMALLOC_RESET_DELAY",)}
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
_GLIBC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
# The same two settings in glibc's current form, ``GLIBC_TUNABLES=name=value:name=value``.
_GLIBC_TUNABLES = ("glibc.malloc.mmap_threshold", "glibc.malloc.trim_threshold")


def configure() -> list[str]:
    """Set mimalloc's and jemalloc's settings the operator has not made; the names of those set."""
    applied = []
    for name, value in ENVIRONMENT.items():
        if not any(known in os.environ for known in (name, *_LEGACY.get(name, ()))):
            os.environ[name] = value
            applied.append(name)
    return applied


def keep_heap() -> list[str]:
    """Raise glibc's mmap and trim thresholds for the rest of the process, unless the operator set them."""
    applied: list[str] = []
    if platform.libc_ver()[0] == "glibc" and not _glibc_thresholds_set():
        libc = ctypes.CDLL(None)  # the C library this process runs on
        for parameter, size in ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
            if libc.mallopt(parameter, size) == 1:  # 1 on success
                applied.append(f"mallopt({parameter}, {size})")
    return applied


def _glibc_thresholds_set() -> bool:
    """True when the environment sets glibc's mmap or trim threshold (``mallopt`` would override it)."""
    tunables = {item.partition("=")[0] for item in os.environ.get("GLIBC_TUNABLES", "").split(":")}
    return any(name in os.environ for name in _GLIBC_VARIABLES) or any(name in tunables for name in _GLIBC_TUNABLES)
