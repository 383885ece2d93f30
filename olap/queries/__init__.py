"""DuckDB queries longer than a few lines, loaded by name."""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def load(name: str) -> str:
    """The text of ``queries/<name>.sql``."""
    return files(__package__).joinpath(f"{name}.sql").read_text(encoding="utf-8")
