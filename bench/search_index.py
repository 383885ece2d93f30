"""The search index on an existing archive: build cost, size, and a fresh process's first search with and without it.

    python bench/search_index.py ARCHIVE [TERM ...]

ARCHIVE is a local archive directory that may be modified (use a copy of a benchmark's
archive): the indexes its files lack are written (``sync.search_index.write_missing``,
as compaction does), then each term is searched by a new process, an archive-only
reader's first call, once with the indexes and once with them moved aside (a scan).
Wall and CPU seconds are both printed: on a busy machine the wall time is mostly
waiting for a core.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from sync import search_index
from sync.archive_location import SEARCH_DIR, ArchiveLocation
from sync.archive_table import ArchiveTable

TERMS = ["from service-17", "timeout", "7f3"]

# A new process: import, open a reader, one search (imports not counted).
_FRESH = """
import json, sys, time
from olap import RunAnalytics
began, cpu = time.perf_counter(), time.process_time()
with RunAnalytics(None, sys.argv[1]) as reader:
    page = reader.get_runs_page(search=sys.argv[2], take=50)
print(json.dumps({"wall": time.perf_counter() - began, "cpu": time.process_time() - cpu, "total": page.total_count}))
"""


def fresh_search(archive: str, term: str) -> dict[str, float]:
    """The first search of a new process."""
    done = subprocess.run([sys.executable, "-c", _FRESH, archive, term], check=True, capture_output=True, text=True)
    found: dict[str, float] = json.loads(done.stdout)
    return found


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    archive, terms = sys.argv[1], sys.argv[2:] or TERMS
    location = ArchiveLocation.resolve(archive)
    files = ArchiveTable.open(location).files()
    runs = sum(f.rows for f in files)
    began, cpu = time.perf_counter(), time.process_time()
    written = search_index.write_missing(location, files)
    print(
        f"indexes written: {written} of {len(files)} files in {time.perf_counter() - began:.1f} s "
        f"({time.process_time() - cpu:.1f} s CPU)"
    )
    indexes = Path(location.table_uri, SEARCH_DIR)
    index_bytes = sum(p.stat().st_size for p in indexes.rglob("*.arrow"))
    data_bytes = sum(f.size for f in files)
    print(f"{runs:,} runs: index {index_bytes / runs:.0f} bytes per run, Delta data files {data_bytes / runs:.0f}")
    aside = Path(location.uri, "_search_aside")
    for term in terms:
        indexed = fresh_search(location.uri, term)
        os.rename(indexes, aside)
        try:
            scanned = fresh_search(location.uri, term)
        finally:
            os.rename(aside, indexes)
        assert indexed["total"] == scanned["total"], term
        print(
            f"{term!r}: {indexed['total']:,} runs; indexed {indexed['wall']:.3f} s ({indexed['cpu']:.3f} CPU),"
            f" scan {scanned['wall']:.3f} s ({scanned['cpu']:.3f} CPU)"
        )


if __name__ == "__main__":
    main()
