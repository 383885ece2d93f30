"""The analysts' notebook runs top to bottom, headless, against a seeded store."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.flowrun.conftest import Seeded

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def test_notebooks_are_committed_without_outputs() -> None:
    for path in NOTEBOOKS.glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has outputs"


def test_run_history_notebook_executes(seeded: Seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel inherits this environment: the notebook finds the seeded store the way users point it anywhere.
    monkeypatch.setenv("FLOWRUN_DSN", seeded.dsn)
    monkeypatch.setenv("FLOWRUN_ARCHIVE", str(seeded.archive))
    monkeypatch.setenv("FLOWRUN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOKS / "run_history.ipynb", as_version=4)
    client = NotebookClient(
        notebook, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError naming the cell when any cell fails

    outputs = [
        "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in cell.outputs)
        for cell in notebook.cells
        if cell.cell_type == "code"
    ]
    text = "\n".join(outputs)
    with seeded.open() as store:
        total = store.get_runs_page(take=1).total_count
        retried = int(store.steps()["retried"].sum())
    assert f"{total:,} runs of" in text
    assert f"{retried:,} steps were retried after a failure" in text
    assert "re-runs of" in text
    assert not (tmp_path / "home").exists()  # the notebook used the DSN, not an embedded server
