"""The v1 archive (hand-written Parquet files): finding it, reading it run by run, retiring it.

v1 wrote ``<archive>/{runs,steps,attempts}/started_date=YYYY-MM-DD/<batch_id>.parquet``
(ids as Parquet UUID, statuses dictionary-encoded, one file per kind, date and
batch) and an ownership marker ``<archive>/_flowrun_archive.json``; a ``batch_id``
is a UTC time stamp and a random suffix, with ``compacted-`` in front for
compaction's files. The Delta table lives in ``<archive>/runs`` too, in partition
directories of the same names, and its log lists only its own files: a vacuum
deletes any v1 file still there, and readers of the table never see one. So every
job and reader first calls ``require_upgraded`` (the marker and the v1-only
directories: one metadata request each), and ``sync.upgrade`` converts the files
with the help of this module: ``V1Files.find`` lists them, ``V1Reader`` reads one
partition date keeping each run's newest revision (v1 files can hold superseded
copies and, after a crash, duplicates), and ``V1Files.retire`` moves them to
``<archive>/_v1/`` once their runs are in the table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from sync import crash_points
from sync.archive_location import ArchiveLocation
from sync.errors import ArchiveCorrupt, ArchiveUpgradeRequired

MARKER = "_flowrun_archive.json"
KINDS = ("runs", "steps", "attempts")
# Where the upgrade moves the v1 files: outside the table, so no vacuum reaches them;
# engines skip directories whose name starts with an underscore.
RETIRED = "_v1"
_REMOTE_MOVES = 16
_STEM = r"(?:compacted-)?\d{8}T\d{12}Z-[0-9a-f]{8}(?:-\d+)?"
_NAME = re.compile(rf"^{_STEM}\.parquet$")
_TMP_NAME = re.compile(rf"^\.{_STEM}\.parquet\.tmp$")
_PATH = re.compile(r"^(runs|steps|attempts)/started_date=(\d{4}-\d{2}-\d{2})/([^/]+)$")


def is_v1_name(path: str) -> bool:
    """True for a path whose file name is one v1 wrote (a published file or a writer's leftover)."""
    name = path.rsplit("/", 1)[-1]
    return bool(_NAME.match(name) or _TMP_NAME.match(name))


def evidence(location: ArchiveLocation) -> str | None:
    """The first sign of a v1 archive not yet upgraded at ``location`` (its URI), or None."""
    names = [MARKER, "steps", "attempts"]
    with location.reached():  # the first request of every job and reader
        fs, root = location.root_filesystem()
        infos = fs.get_file_info([f"{root}/{name}" for name in names])
    for name, info in zip(names, infos, strict=True):
        if info.type != pafs.FileType.NotFound:
            return f"{location.uri}/{name}"
    return None


def require_upgraded(location: ArchiveLocation) -> None:
    """Raise ``ArchiveUpgradeRequired`` when ``location`` still holds a v1 archive."""
    found = evidence(location)
    if found is not None:
        raise upgrade_required(location, found)


def upgrade_required(location: ArchiveLocation, found: str) -> ArchiveUpgradeRequired:
    """The error naming what was found and the command that converts it."""
    return ArchiveUpgradeRequired(
        f"the archive {location.describe()} holds a v1 Parquet archive ({found}) that is not upgraded:"
        " run `flowrun upgrade-archive` (same --dsn/--archive/--home) to convert it into the Delta table;"
        " nothing was changed"
    )


@dataclass(frozen=True)
class V1File:
    """One published v1 data file."""

    kind: str
    started_date: date
    path: str  # relative to the archive root, '/'-separated


@dataclass
class V1Files:
    """Every v1 file at a location: data files, a crashed writer's leftovers, the marker."""

    location: ArchiveLocation
    files: list[V1File] = field(default_factory=list)
    others: list[str] = field(default_factory=list)  # leftovers and anything else under steps/ and attempts/
    marker: dict[str, Any] | None = None
    found: str | None = None  # the first sign of v1 (``evidence``)

    @classmethod
    def find(cls, location: ArchiveLocation) -> V1Files:
        """List the location: v1-named files under ``runs/``, everything under ``steps/`` and ``attempts/``."""
        fs, root = location.root_filesystem()
        found = cls(location, found=evidence(location))
        for kind in KINDS:
            selector = pafs.FileSelector(f"{root}/{kind}", recursive=True, allow_not_found=True)
            for info in fs.get_file_info(selector):
                if info.type != pafs.FileType.File:
                    continue
                relative = info.path[len(root) + 1 :]
                if kind == "runs" and not is_v1_name(relative):
                    continue  # the Delta table's own files and log
                parsed = _PATH.match(relative)
                if parsed is not None and _NAME.match(parsed.group(3)):
                    found.files.append(V1File(kind, date.fromisoformat(parsed.group(2)), relative))
                else:
                    found.others.append(relative)
        found.files.sort(key=lambda f: (f.started_date, f.kind, f.path))
        info = fs.get_file_info(f"{root}/{MARKER}")
        if info.type == pafs.FileType.File:
            with fs.open_input_stream(f"{root}/{MARKER}") as stream:
                found.marker = json.loads(stream.read().decode())
        return found

    @property
    def pending(self) -> bool:
        """True while anything of the v1 archive is still in place."""
        return bool(self.files or self.others or self.found)

    def dates(self, kind: str | None = "runs") -> list[date]:
        """Partition dates holding v1 files of ``kind`` (any kind: None), oldest first."""
        return sorted({f.started_date for f in self.files if kind is None or f.kind == kind})

    def of(self, kind: str, day: date) -> list[V1File]:
        """The files of one kind and date."""
        return [f for f in self.files if f.kind == kind and f.started_date == day]

    def retire(self) -> int:
        """Move every v1 file to ``<archive>/_v1/`` (the same relative path), the marker last; files moved."""
        fs, root = self.location.root_filesystem()

        def move(relative: str) -> None:
            target = f"{root}/{RETIRED}/{relative}"
            if self.location.is_local:
                fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
            fs.move(f"{root}/{relative}", target)
            crash_points.reached("upgrade_file_moved")

        # Runs first: they are the files a vacuum of the table would delete. On an object store a
        # move is a copy and a delete, so files move several at a time (a local rename is instant).
        data = [f.path for f in self.files if f.kind == "runs"]
        rest = [f.path for f in self.files if f.kind != "runs"] + self.others
        with ThreadPoolExecutor(max_workers=1 if self.location.is_local else _REMOTE_MOVES) as pool:
            for group in (data, rest):
                list(pool.map(move, group))
        _remove_empty_trees(fs, root)
        if self.marker is not None:
            move(MARKER)
        return len(data) + len(rest) + (self.marker is not None)


def _remove_empty_trees(fs: pafs.FileSystem, root: str) -> None:
    """Delete ``steps/`` and ``attempts/`` once no file is left in them (their existence marks v1)."""
    for kind in ("steps", "attempts"):
        selector = pafs.FileSelector(f"{root}/{kind}", recursive=True, allow_not_found=True)
        infos = fs.get_file_info(selector)
        empty = all(info.type == pafs.FileType.Directory for info in infos)
        if empty and fs.get_file_info(f"{root}/{kind}").type != pafs.FileType.NotFound:
            fs.delete_dir(f"{root}/{kind}")


# Each run at its newest revision; copies of one (run, revision) are identical but for
# ``exported_at`` (a compaction or export killed before its bookkeeping left them).
_NEWEST_RUNS = """
SELECT id, flow_id, flow_name, CAST(status AS VARCHAR) AS status, trigger_key, trigger_data_json,
       background_job_id, started_at, completed_at, source_run_id, revision
  FROM v1_runs
QUALIFY row_number() OVER (PARTITION BY id ORDER BY revision DESC, exported_at DESC) = 1
 ORDER BY started_at, id
"""
# The steps and attempts of the chosen (run, revision) pairs, one copy each.
_STEPS = """
SELECT s.run_id, s.step_key, s.step_type, CAST(s.status AS VARCHAR) AS status, s.input_json, s.output_json,
       s.error_message, s.job_id, s.started_at, s.completed_at, s.attempt_count
  FROM v1_steps s SEMI JOIN chosen c ON s.run_id = c.id AND s.revision = c.revision
QUALIFY row_number() OVER (PARTITION BY s.run_id, s.step_key ORDER BY s.exported_at DESC) = 1
"""
_ATTEMPTS = """
SELECT s.run_id, s.step_key, s.attempt, s.step_type, CAST(s.status AS VARCHAR) AS status, s.input_json,
       s.output_json, s.error_message, s.job_id, s.started_at, s.completed_at
  FROM v1_attempts s SEMI JOIN chosen c ON s.run_id = c.id AND s.revision = c.revision
QUALIFY row_number() OVER (PARTITION BY s.run_id, s.step_key, s.attempt ORDER BY s.exported_at DESC) = 1
"""

# Runs whose steps or attempts are in v1 files but which no v1 runs file of their date
# holds: a vacuum of a table created over the v1 files deleted their run files.
_WITHOUT_RUN = """
SELECT DISTINCT run_id AS id FROM v1_steps WHERE run_id NOT IN (SELECT id FROM v1_runs)
UNION
SELECT DISTINCT run_id AS id FROM v1_attempts WHERE run_id NOT IN (SELECT id FROM v1_runs)
"""
_NO_ROWS = {
    "runs": "SELECT NULL::UUID AS id WHERE FALSE",
    "steps": "SELECT NULL::UUID AS run_id WHERE FALSE",
    "attempts": "SELECT NULL::UUID AS run_id WHERE FALSE",
}


class V1Reader:
    """Reads v1 files one partition date at a time, as the flat tables an export batch holds."""

    def __init__(self, files: V1Files) -> None:
        self._files = files
        self._fs, self._root = files.location.root_filesystem()
        self._con = duckdb.connect(config={"threads": 2, "memory_limit": "512MB"})
        self._con.execute("SET TimeZone = 'UTC'")
        # Ids come back as arrow.uuid, the type PostgreSQL's uuid arrives in over ADBC.
        self._con.execute("SET arrow_lossless_conversion = true")

    def close(self) -> None:
        """Close the DuckDB connection."""
        self._con.close()

    def newest_runs(self, day: date) -> pa.Table:
        """The runs of ``day``, each once, at its newest revision, in start time order."""
        return self._read("runs", day, _NEWEST_RUNS)

    def children(self, day: date, runs: pa.Table) -> tuple[pa.Table, pa.Table]:
        """The steps and attempts of ``runs`` (id, revision) as of those revisions."""
        chosen = runs.select(["id", "revision"])
        return self._read("steps", day, _STEPS, chosen), self._read("attempts", day, _ATTEMPTS, chosen)

    def without_run(self, day: date) -> pa.Table:
        """Ids (``id``) of runs with steps or attempts filed under ``day`` but no run row there."""
        try:
            with closing(self._con.cursor()) as cur:
                for kind in KINDS:
                    files = self._files.of(kind, day)
                    if files:
                        cur.register(f"v1_{kind}", self._dataset(files))
                    else:
                        cur.execute(f"CREATE TEMP VIEW v1_{kind} AS {_NO_ROWS[kind]}")
                return cur.sql(_WITHOUT_RUN).to_arrow_table()
        except (OSError, pa.ArrowException, duckdb.Error) as exc:
            raise _unreadable(self._files.location, "", day, exc) from exc

    def _dataset(self, files: list[V1File]) -> ds.Dataset:
        return ds.dataset([f"{self._root}/{f.path}" for f in files], filesystem=self._fs, format="parquet")

    def _read(self, kind: str, day: date, query: str, chosen: pa.Table | None = None) -> pa.Table:
        """``query`` over the files of ``kind`` and ``day`` (``v1_<kind>``); ``ArchiveCorrupt`` if one is unreadable."""
        files = self._files.of(kind, day)
        if not files:
            return pa.table({})  # the row builder's "no rows of this kind"
        try:
            with closing(self._con.cursor()) as cur:
                cur.register(f"v1_{kind}", self._dataset(files))
                if chosen is not None:
                    cur.register("chosen", chosen)
                return cur.sql(query).to_arrow_table()
        except (OSError, pa.ArrowException, duckdb.Error) as exc:
            raise _unreadable(self._files.location, kind, day, exc) from exc


def _unreadable(location: ArchiveLocation, kind: str, day: date, exc: Exception) -> ArchiveCorrupt:
    """``ArchiveCorrupt`` naming the partition directory (of ``kind``, or of every kind) that failed."""
    where = f"{location.uri}/{kind or '*'}/started_date={day.isoformat()}/"
    return ArchiveCorrupt(where, f"not readable as v1 {kind or 'archive'} files ({str(exc).splitlines()[0]})")


def chunks(table: pa.Table, size: int) -> Iterator[pa.Table]:
    """``table`` in slices of at most ``size`` rows."""
    for start in range(0, table.num_rows, size):
        yield table.slice(start, size)
