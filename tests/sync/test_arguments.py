"""Bad arguments are refused before anything is read or written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oltp.errors import InvalidArgument
from sync import compact, export_completed_runs


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_size": 0},
        {"batch_size": 1_000_001},
        {"batch_size": True},
        {"batch_size": 2.5},
        {"wait": -1},
        {"wait": "5"},
        {"schema": "no-such schema"},
        {"schema": ""},
    ],
)
def test_export_rejects_bad_arguments_without_side_effects(kwargs: dict[str, Any], archive: str) -> None:
    with pytest.raises(InvalidArgument):
        export_completed_runs("dbname=never-opened", archive, **kwargs)
    assert not Path(archive).exists()


@pytest.mark.parametrize("kwargs", [{"max_rows_per_file": 0}, {"wait": -0.5}, {"schema": "x;drop"}])
def test_compact_rejects_bad_arguments_without_side_effects(kwargs: dict[str, Any], archive: str) -> None:
    with pytest.raises(InvalidArgument, match=next(iter(kwargs)).split("_per")[0]):
        compact("dbname=never-opened", archive, **kwargs)
    assert not Path(archive).exists()
