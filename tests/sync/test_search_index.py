"""The search index beside each data file gives exactly the answers of a scan.

One small archive written by the real export (several files per day, live runs
shadowing some days), searched for many terms: substrings of real documents in
both cases, run ids, the field separator, unicode, ``%``, ``_`` and ``\\``, terms
too short for trigrams, terms found nowhere, with and without status and flow
filters. The answers with every index present must equal those with the indexes
deleted, stale (a compaction's files without theirs), replaced by another file's
or truncated. Compaction indexes the files it writes and vacuum takes the indexes
of the files it deletes.
"""

from __future__ import annotations

import os
import random
import shutil
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

import sync
from olap import RunAnalytics
from olap.archive import ArchiveReader
from oltp.store import RunStore
from sync import search_index
from sync.archive_location import SEARCH_DIR, ArchiveLocation
from sync.archive_table import ArchiveTable, DataFile
from tests.conftest import FakeClock
from tests.olap.workload import expected_page, play

_DUCK = duckdb.connect()


def _terms(root: str, model_ids: list[uuid.UUID]) -> list[str]:
    rng = random.Random(7)
    docs: list[str] = []
    for file in ArchiveTable.open(ArchiveLocation.resolve(root)).files():
        docs += pq.read_table(os.path.join(root, "runs", file.path), columns=["search_doc"]).column(0).to_pylist()
    terms = ["billing", "BILLING", "ärger", "ÄRGER", "öl", "%", "_", "\\", "100%", "t_a", "\x1f", "fetch\x1fhttp"]
    terms += ["ab", "5", "zzzq", "upstream", "timeout after", "user_id'", '{"rows": 1', "job-", "http 503 from"]
    for _ in range(30):
        doc = rng.choice(docs)
        start = rng.randrange(len(doc))
        term = doc[start : start + rng.randint(1, 14)]
        terms.append(term.upper() if rng.random() < 0.3 else term)
    for rid in rng.sample(model_ids, 3):
        text = str(rid)
        terms += [text, text[3:17].upper()]
    return terms


def _answers(dsn: str, root: str, terms: list[str], flow_id: uuid.UUID) -> list[Any]:
    answers: list[Any] = []
    with RunAnalytics(dsn, root) as reader:
        for term in terms:
            answers.append(reader.get_runs_page(search=term, take=4))
        for term in terms[:4]:
            answers.append(reader.get_runs_page(search=term, status="Failed", take=3))
            answers.append(reader.get_runs_page(flow_id=flow_id, search=term, skip=1, take=3))
    return answers


def _scanned(root: str, files: list[DataFile], term: str) -> set[str]:
    """Ids of the runs whose document holds ``term``, by DuckDB's ``contains`` (as a scan does)."""
    listed = [os.path.join(root, "runs", f.path) for f in files]
    if not listed:
        return set()
    found = _DUCK.execute(
        "SELECT id FROM read_parquet($files) WHERE contains(search_doc, lower($term))", {"files": listed, "term": term}
    ).fetchall()
    return {str(row[0]) for row in found}


def _index_files(root: str) -> set[str]:
    base = Path(root, "runs", SEARCH_DIR)
    return {str(p.relative_to(base))[: -len(".arrow")] for p in base.rglob("*.arrow")}


def test_index_answers_equal_a_scan_in_every_state(dsn: str, clock: FakeClock, tmp_path: Path) -> None:
    store = RunStore(dsn, clock=clock)
    model = play(store, clock, runs=120)
    root = str(tmp_path / "archive")
    sync.export_completed_runs(dsn, root, batch_size=30, clock=clock)
    # Most runs leave PostgreSQL; the ones still Running stay live and shadow their days.
    sync.prune(dsn, timedelta(0), now=clock.now + timedelta(seconds=1))
    location = ArchiveLocation.resolve(root)
    files = ArchiveTable.open(location).files()
    assert len(files) > len({f.started_date for f in files})  # several files a day
    assert _index_files(root) == {f.path for f in files}  # the export indexed every file it wrote
    # The export builds an appended file's index from the rows in memory: the same bytes as from the file.
    built = {f.path: Path(root, "runs", location.search_index_path(f.path)).read_bytes() for f in files}
    for file in files:
        search_index.write(location, file)
    assert {f.path: Path(root, "runs", location.search_index_path(f.path)).read_bytes() for f in files} == built

    runs = list(model.runs.values())
    terms = _terms(root, [r.id for r in runs])
    # The index against a scan, term by term: each file answered by its index finds what a scan finds.
    reader = ArchiveReader(location)
    answered_by_index = 0
    for term in terms:
        lowered = str(_DUCK.execute("SELECT lower($t)", {"t": term}).fetchall()[0][0])
        answered, scanned = reader.search(files, lowered.encode())
        answered_by_index += len(answered)
        found = {i for _, hits in answered for i in hits.column("id").to_pylist()}
        assert found == _scanned(root, [f for f, _ in answered], term), term
        if len(lowered.encode()) < 3:
            assert answered == [], term
    assert answered_by_index > len(terms) * len(files) // 2
    # A rare term is answered by the indexes alone, no file scanned.
    answered, scanned = reader.search(files, str(runs[3].id)[:13].encode())
    assert scanned == [] and sum(hits.num_rows for _, hits in answered) == 1

    # The reports, with the indexes and without: the same answers, and the model's.
    questions = [*[t for t in terms if len(t) > 2][:10], "ab", "fetch\x1fhttp", "%"]
    flow_id = runs[0].flow_id
    indexed = _answers(dsn, root, questions, flow_id)
    for term, page in zip(questions, indexed, strict=False):
        expected, count = expected_page(runs, search=term, take=4)
        assert (page.runs, page.total_count) == (expected, count), term
    hidden = tmp_path / "hidden"
    shutil.move(os.path.join(root, "runs", SEARCH_DIR), hidden)
    assert _answers(dsn, root, questions, flow_id) == indexed  # every file scanned
    shutil.move(hidden, os.path.join(root, "runs", SEARCH_DIR))

    # Another file's index, and a truncated one, are not used.
    first, second = (os.path.join(root, "runs", location.search_index_path(f.path)) for f in files[:2])
    shutil.copy(first, second)
    with open(first, "r+b") as handle:
        handle.truncate(os.path.getsize(first) // 2)
    assert ArchiveReader(location).search(files[:2], b"zzzq") == ([], files[:2])
    assert _answers(dsn, root, questions, flow_id) == indexed

    # Compaction indexes the files it writes; vacuum takes the indexes of those it deletes.
    report = sync.compact(dsn, root, clock=clock, vacuum_after=timedelta(0))
    assert report.files_vacuumed > 0
    compacted = ArchiveTable.open(location).files()
    assert _index_files(root) == {f.path for f in compacted}
    assert _answers(dsn, root, questions, flow_id) == indexed
    # Stale: the files of a compaction without their indexes.
    for file in compacted[::2]:
        os.remove(os.path.join(root, "runs", location.search_index_path(file.path)))
    assert _answers(dsn, root, questions, flow_id) == indexed

    # What killed jobs leave in _search: a partial write, and the index of a file vacuum deleted
    # (killed before its index went). The next compaction removes both and rewrites the missing.
    kept = Path(root, "runs", location.search_index_path(compacted[1].path))
    partial = kept.with_name(f"{kept.name}.{uuid.uuid4().hex}.tmp")
    shutil.copy(kept, partial)
    orphan = Path(root, "runs", location.search_index_path("started_date=2020-01-01/part-gone.parquet"))
    orphan.parent.mkdir(parents=True)
    shutil.copy(kept, orphan)
    sync.compact(dsn, root, clock=clock, vacuum_after=timedelta(0))
    assert not partial.exists() and not orphan.exists()
    assert _index_files(root) == {f.path for f in ArchiveTable.open(location).files()}
    assert {p.suffix for p in Path(root, "runs", SEARCH_DIR).rglob("*.*")} == {".arrow"}
    assert _answers(dsn, root, questions, flow_id) == indexed
    store.close()


def _data_file(root: Path, docs: list[str]) -> tuple[ArchiveLocation, DataFile]:
    """A Parquet file with the index's source columns (no Delta table needed to index it)."""
    n = len(docs)
    rows = pa.table(
        {
            "id": [str(uuid.UUID(int=i)) for i in range(n)],
            "revision": pa.array([1 + i % 3 for i in range(n)], pa.int64()),
            "started_at": pa.array([datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i) for i in range(n)]),
            "flow_id": [str(uuid.UUID(int=i % 5)) for i in range(n)],
            "status": ["Failed" if i % 7 else "Succeeded" for i in range(n)],
            "source_run_id": [None if i % 4 else str(uuid.UUID(int=i + 1)) for i in range(n)],
            "search_doc": docs,
        }
    )
    relative = "started_date=2026-01-01/part-0.parquet"
    target = root / "runs" / relative
    target.parent.mkdir(parents=True)
    pq.write_table(rows, target)
    location = ArchiveLocation.resolve(str(root))
    return location, DataFile(relative, target.stat().st_size, n, date(2026, 1, 1))


def test_bit_sliced_planes_find_what_a_scan_finds_and_older_indexes_are_rewritten(tmp_path: Path) -> None:
    # 1,003 runs: planes start mid-byte (bit b * 1003), so every plane but the first is read shifted.
    rng = random.Random(3)
    words = ["fetch", "http", "503", "timeout", "ärger", "svc-1", "svc-17", "job", "x\x1fy", "öl"]
    docs = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 12))) + f" run-{i}" for i in range(1003)]
    location, file = _data_file(tmp_path, docs)
    path = tmp_path / "runs" / location.search_index_path(file.path)
    path.parent.mkdir(parents=True)
    # An index of an earlier format is not used (format 2 read the same columns with 128 bytes of keys:
    # read as this format it would give wrong keys), and compaction's write_missing replaces it.
    old = search_index.build(pq.read_table(tmp_path / "runs" / file.path), file)
    old = old.replace_schema_metadata({**old.schema.metadata, b"format": b"flowrun-search-index/2"})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, old.schema) as writer:
        writer.write_table(old)
    assert search_index.open_index(location, file) is None and not search_index.has_index(location, file)
    assert search_index.write_missing(location, [file]) == 1
    assert search_index.has_index(location, file) and search_index.write_missing(location, [file]) == 0
    index = search_index.open_index(location, file)
    assert index is not None and index.rows == 1003

    for term in [*words, "run-1002", "run-10", "tch htt", "svc-17 job", "nowhere", "503 503 503"]:
        needle = term.encode()
        bits = search_index.term_bits(needle)
        assert bits is not None
        hits = index.search(needle, bits)  # a file this small is never too dense to check run by run
        expected = [str(uuid.UUID(int=i)) for i, doc in enumerate(docs) if needle in doc.encode()]
        assert hits is not None
        assert hits.column("id").to_pylist() == expected, term
        found = [int(uuid.UUID(i)) for i in expected]
        assert hits.column("source_run_id").to_pylist() == [
            None if i % 4 else str(uuid.UUID(int=i + 1)) for i in found
        ], term
        assert hits.column("status").to_pylist() == ["Failed" if i % 7 else "Succeeded" for i in found], term
    assert search_index.term_bits(b"ab") is None
