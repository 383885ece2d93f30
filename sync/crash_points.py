"""Test hook: stop the exporter at a named moment so a test can ``kill -9`` it there.

Set ``FLOWRUN_EXPORT_PAUSE_AT=<stage>:<n>`` in the environment of an export,
compaction or prune process and it stops forever the ``n``-th time it reaches
``<stage>``, after touching the file named by ``FLOWRUN_EXPORT_PAUSE_SIGNAL``
(or printing ``flowrun-pause <stage> <n>`` to stderr when that is unset). The
crash tests wait for the signal, then kill the process: the moment of death is
exact, not a matter of timing. Unset, ``reached`` costs one dictionary lookup.

Stages, in the order an export meets them: ``lock_acquired``, ``orphan_removed``
(after each leftover file is deleted), ``snapshot_read``, ``tmp_written``,
``tmp_synced``, ``renamed`` (per file), ``dir_synced`` (per directory),
``files_published``, ``before_commit`` (manifest transaction open),
``after_commit``, ``between_batches``. Compaction: ``compact_written`` (per
new file), ``compact_before_commit``, ``compact_after_commit``,
``compact_old_removed`` (per old file). Prune: ``prune_batch``.
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
    """Note that ``stage`` was reached; pause forever if the environment asks for this one."""
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
    if signal:
        Path(signal).write_text(f"{stage} {_seen[stage]}\n")
    else:
        print(f"flowrun-pause {stage} {_seen[stage]}", file=sys.stderr, flush=True)
    while True:  # until the test kills us
        time.sleep(60)
