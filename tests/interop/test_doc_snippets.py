"""The reading snippets of ``docs/archive.md`` run as written and see every archived run and step."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pytest

from olap import RunAnalytics
from tests.interop.conftest import Exported

# One worker runs the interop tests: one JVM, one export of each archive.
pytestmark = pytest.mark.xdist_group("interop")

DOC = Path(__file__).resolve().parents[2] / "docs" / "archive.md"
_SNIPPET = re.compile(r"```python\n# read with: (\w+)\n(.*?)```", re.DOTALL)


def snippets() -> dict[str, str]:
    """Engine name -> the code of its snippet."""
    found = dict(_SNIPPET.findall(DOC.read_text()))
    assert set(found) == {"spark", "duckdb", "polars", "deltalake"}, sorted(found)
    return found


@pytest.fixture(scope="module")
def counts(exported_local: Exported) -> tuple[int, int]:
    """(runs, steps) an archive-only reader of ours sees."""
    with RunAnalytics(None, exported_local.archive) as reader:
        return reader.sql("SELECT count(*) AS n FROM runs")["n"].item(), reader.sql("SELECT count(*) AS n FROM steps")[
            "n"
        ].item()


def _rows(relation: Any) -> int:
    if isinstance(relation, duckdb.DuckDBPyRelation):
        return int(relation.aggregate("count(*)").fetchall()[0][0])
    if isinstance(relation, pl.LazyFrame):
        return int(relation.select(pl.len()).collect().item())
    if isinstance(relation, pa.Table | pa.Array | pa.ChunkedArray):
        return len(relation)
    return int(relation.count())  # a Spark DataFrame


@pytest.mark.parametrize("engine", ["duckdb", "polars", "deltalake", pytest.param("spark", marks=pytest.mark.spark)])
def test_the_snippet_reads_every_run_and_step(
    engine: str, exported_local: Exported, counts: tuple[int, int], request: pytest.FixtureRequest
) -> None:
    if engine == "spark":
        request.getfixturevalue("spark")  # the snippet's getOrCreate() finds the session's Spark
    namespace: dict[str, Any] = {"archive": exported_local.archive}
    exec(compile(snippets()[engine], f"docs/archive.md ({engine})", "exec"), namespace)
    assert (_rows(namespace["runs"]), _rows(namespace["steps"])) == counts
