"""How the CLI prints an answer: a table for people, JSON or CSV for scripts and logs.

Every command hands ``emit`` the store's answer and, for people, a rich
renderable built from it; ``--format json`` (or ``--json``) prints the answer as
strict JSON, ``--format csv`` its rows as CSV with a header. Tables are drawn at
the terminal's width (``COLUMNS`` off a terminal, 80 by default) and never wrap
a cell onto a second line: a long cell ends with an ellipsis instead.
"""

from __future__ import annotations

import csv
import enum
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console, RenderableType

from flowrun import jsonable
from oltp.errors import InvalidArgument


class Format(enum.StrEnum):
    """Output formats of every reporting command."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"


FormatOption = Annotated[
    Format | None, typer.Option("--format", case_sensitive=False, help="table (default), json or csv.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Same as --format json.")]
WideOption = Annotated[bool, typer.Option("--wide", help="Full ids and every column, whatever the width.")]

WIDE = 100_000  # --wide: tables take the width they need, the terminal wraps them
out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def chosen(format_: Format | None, json_flag: bool) -> Format:
    """The format asked for; ``--json`` is ``--format json`` and may not contradict it."""
    if json_flag and format_ not in (None, Format.JSON):
        raise InvalidArgument(f"--json contradicts --format {format_.value}")
    return Format.JSON if json_flag else (format_ or Format.TABLE)


def emit(
    value: Any,
    fmt: Format,
    table: Callable[[], RenderableType],
    rows: Callable[[], Sequence[dict[str, Any]]] | None = None,
    *,
    wide: bool = False,
) -> None:
    """Print ``value`` as JSON, its ``rows`` as CSV, or ``table()`` for a person (``wide``: beyond the terminal)."""
    if fmt is Format.JSON:
        sys.stdout.write(jsonable.dumps(value) + "\n")
    elif fmt is Format.CSV:
        write_csv(rows() if rows is not None else _default_rows(value))
    else:
        shown = table()
        # Plain lines (paths, DSNs, one-line reports) are never cut: the terminal may wrap them.
        console = Console(highlight=False, width=WIDE) if wide else out
        console.print(shown, soft_wrap=isinstance(shown, str))


def json_line(value: dict[str, Any]) -> None:
    """One JSON Lines record with the time it was written (UTC), flushed at once for log shippers."""
    record = {"at": datetime.now(UTC).isoformat(timespec="milliseconds"), **jsonable.jsonable(value)}
    sys.stdout.write(json.dumps(record, allow_nan=False, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def write_csv(rows: Sequence[dict[str, Any]]) -> None:
    """Rows as CSV with a header from the first row; nested values as JSON text."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    if not rows:
        return
    header = list(rows[0])
    writer.writerow(header)
    for row in rows:
        writer.writerow([_csv_cell(jsonable.jsonable(row.get(name))) for name in header])


def _csv_cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else value


def _default_rows(value: Any) -> list[dict[str, Any]]:
    plain = jsonable.jsonable(value)
    if isinstance(plain, list):
        return [item if isinstance(item, dict) else {"value": item} for item in plain]
    if isinstance(plain, dict):
        return [plain]
    return [{"value": plain}]
