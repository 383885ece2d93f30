"""Test hook: stop the exporter at a named moment so a test can ``kill -9`` it there.

Set ``FLOWRUN_EXPORT_PAUSE_AT=<stage>:<n>`` in the environment of an export,
compaction or prune process and it stops the ``n``-th time it reaches
``<stage>``, after writing the file named by ``FLOWRUN_EXPORT_PAUSE_SIGNAL``; it
goes on when that file is deleted (without a signal file it prints
``flowrun-pause <stage> <n>`` to stderr and stops for good). The crash tests
wait for the signal, then kill the process: the moment of death is exact, not
a matter of timing; other tests resume it after writing to the store at that
exact moment. Unset, ``reached`` costs one environment lookup.

Stages, in the order an export meets them: ``lock_acquired``,
``pending_recorded`` (a crashed job's batch finished), ``snapshot_read``,
``pending_written`` (outbox rows filed), ``files_written`` (an append's data
files on storage, not yet committed), ``delta_committed``, ``before_commit``
(PostgreSQL transaction open), ``after_commit``, ``between_batches``.
Compaction: ``lock_acquired``, ``compact_committed`` (optimize committed to
Delta), ``compact_recorded`` (version recorded in PostgreSQL),
``compact_checkpointed``, ``compact_vacuumed``. Prune: ``prune_batch``. Upgrade
of a v1 archive: ``lock_acquired``, then per batch ``pending_written``,
``files_written``, ``delta_committed``, ``after_commit``, ``between_batches``; then
``upgrade_converted``, ``upgrade_file_moved`` (after each v1 file moved) and
``upgrade_retired``.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from pathlib import Path

PAUSE_AT = "FLOWRUN_EXPORT_PAUSE_AT"
PAUSE_SIGNAL = "FLOWRUN_EXPORT_PAUSE_SIGNAL"

_seen: Counter[str] = Counter()


def reached(stage: str) -> None:
    """Note that ``stage`` was reached; pause there if the environment asks for this one."""
    target = os.environ.get(PAUSE_AT)
    if target is None:
        return
    name, _, count = target.partition(":")
    if name != stage:
        return
    _seen[stage] += 1
    if _seen[stage] != int(count or "1"):
        return
    signal = os.environ.get(PAUSE_SIGNAL)
    if not signal:
        print(f"flowrun-pause {stage} {_seen[stage]}", file=sys.stderr, flush=True)
        while True:  # until the test kills us
            time.sleep(60)
    path = Path(signal)
    path.write_text(f"{stage} {_seen[stage]}\n")
    while path.exists():  # until the test kills us, or deletes the file to let us go on
        time.sleep(0.005)
