"""The ``flowrun`` command line: run the demo, migrate, export, prune, compact and query the store.

Every command is a thin shell over one ``FlowRunStore`` method: arguments are
parsed and validated first (nothing is opened or written for a bad one), the
store is opened from the global options through ``Location`` (the one place
that knows how), and the answer is printed as a rich table or, with ``--json``,
as plain JSON for scripts. ``main`` turns the store's own errors into one red
line on stderr and exit code 2.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import psycopg
import typer
from psycopg import conninfo
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from flowrun import dashboard, demo, embedded, jsonable, tables
from flowrun.config import Settings
from flowrun.demo_clock import ThreadClock
from flowrun.store import FlowRunStore
from olap import timeseries as olap_timeseries
from oltp import arguments
from oltp import migrate as migrations
from oltp.clock import Clock
from oltp.errors import FlowRunStoreError, InvalidArgument
from oltp.records import Granularity
from sync import progress as sync_progress
from sync.durations import parse_duration, retention
from sync.errors import ArchiveBusy
from sync.export import DEFAULT_BATCH_SIZE
from sync.progress import console_progress

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Run history for workflow engines: PostgreSQL for live runs, Parquet for the archive, DuckDB for reports.",
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

# Exit codes: 0 success, 1 "not found", 2 a user mistake or an unusable store.
NOT_FOUND = 1
USAGE = 2


@dataclass
class Location:
    """Where the store lives, from the global options; opens it (and its embedded server) on demand."""

    dsn: str | None = None
    archive: str | None = None
    home: str | None = None
    schema: str | None = None
    _server: Any = field(default=None, repr=False)

    def settings(self) -> Settings:
        """Options first, then ``FLOWRUN_*`` variables, then defaults."""
        try:
            return Settings.resolve(dsn=self.dsn, archive=self.archive, home=self.home, schema=self.schema)
        except FlowRunStoreError:
            raise
        except ValueError as exc:  # e.g. FLOWRUN_POOL_SIZE=abc
            raise InvalidArgument(f"invalid setting: {exc}") from None

    def database(self, settings: Settings) -> str:
        """The DSN to use: the configured one, else the embedded server's (started on first use)."""
        if settings.dsn is not None:
            return settings.dsn
        if self._server is None:
            # The handle stops the server when this process exits (unless another process still uses it).
            self._server = embedded.start(settings.pgdata)
        return embedded.dsn(self._server)

    def open(
        self, *, clock: Clock | None = None, migrate: bool = False, asynchronous_commit: bool = False
    ) -> FlowRunStore:
        """Open the store; without ``migrate`` an old or empty schema raises ``MigrationRequired``.

        ``asynchronous_commit`` makes this process's sessions commit without waiting for the WAL flush
        (``synchronous_commit=off``): a crash of the server may lose the last moments of commits, never
        consistency. Only the demo asks for it, to replay simulated history fast.
        """
        settings = self.settings()
        dsn = self.database(settings)
        if asynchronous_commit:
            dsn = _with_session_option(dsn, "-c synchronous_commit=off")
        return FlowRunStore.open(
            dsn=dsn,
            archive=settings.archive,
            clock=clock,
            migrate=migrate,
            home=settings.home,
            schema=settings.schema,
        )

    def migrate(self) -> tuple[str, str]:
        """Create or upgrade the schema; returns (schema, revision)."""
        settings = self.settings()
        return settings.schema, migrations.upgrade(self.database(settings), settings.schema)


def _with_session_option(dsn: str, option: str) -> str:
    """``dsn`` with a server option added to libpq's ``options`` (keeping any already there)."""
    try:
        present = conninfo.conninfo_to_dict(dsn).get("options")
    except psycopg.ProgrammingError as exc:
        raise InvalidArgument(f"invalid DSN: {exc}") from None
    return conninfo.make_conninfo(dsn, options=f"{present} {option}" if present else option)


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]


@app.callback()
def options(
    ctx: typer.Context,
    dsn: Annotated[
        str | None,
        typer.Option(help="PostgreSQL URI (env FLOWRUN_DSN; default: the embedded server in --home)."),
    ] = None,
    archive: Annotated[
        str | None, typer.Option(help="Archive directory or URI (env FLOWRUN_ARCHIVE; default: <home>/archive).")
    ] = None,
    home: Annotated[
        str | None, typer.Option(help="Data directory (env FLOWRUN_HOME; default: ~/.local/share/flowrun).")
    ] = None,
    schema: Annotated[
        str | None, typer.Option(help="PostgreSQL schema of the store (env FLOWRUN_SCHEMA; default: flowrun).")
    ] = None,
) -> None:
    """Run history for workflow engines: PostgreSQL for live runs, Parquet for the archive, DuckDB for reports."""
    ctx.obj = Location(dsn=dsn, archive=archive, home=home, schema=schema)


def _location(ctx: typer.Context) -> Location:
    location = ctx.obj
    assert isinstance(location, Location)
    return location


def _print_json(value: Any) -> None:
    sys.stdout.write(jsonable.dumps(value) + "\n")


# -- schema ------------------------------------------------------------------------------


@app.command()
def migrate(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Create the store's tables, or upgrade them to this version (safe to repeat)."""
    schema, revision = _location(ctx).migrate()
    if json_output:
        _print_json({"schema": schema, "revision": revision})
    else:
        out.print(f"schema [bold]{escape(schema)}[/bold] is at revision [bold]{escape(revision)}[/bold]")


# -- the demo ----------------------------------------------------------------------------


@app.command(name="demo")
def demo_command(
    ctx: typer.Context,
    runs: Annotated[int, typer.Option(min=0, help="Number of flow runs to play (re-runs included).")] = 10_000,
    threads: Annotated[int, typer.Option(min=1, max=64, help="Engine workers playing runs at once.")] = 8,
    json_output: JsonOption = False,
) -> None:
    """Play 30 days of engine traffic, export it, prune the older half, and show the dashboard."""
    clock = ThreadClock()
    with _location(ctx).open(clock=clock, migrate=True, asynchronous_commit=True) as store:
        with _progress(disable=json_output) as progress:
            task = progress.add_task("playing runs", total=runs)
            summary = demo.run_demo(store, clock, runs, threads=threads, on_run=lambda: progress.advance(task))
        board = dashboard.collect(store)
    if json_output:
        _print_json({"demo": summary, **board.as_dict()})
    else:
        out.print(dashboard.render(board, summary, width=out.width))
        out.print(
            "\nSee it in a browser: run [bold]flowrun ui[/bold] (with the same --home/--dsn options, if any)"
            " and open [bold]http://127.0.0.1:8080/[/bold]",
            soft_wrap=True,
        )


def _progress(*, disable: bool) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=disable,
        transient=False,
    )


# -- export and retention ----------------------------------------------------------------


@app.command()
def export(
    ctx: typer.Context,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Runs per Parquet batch.")] = None,
    every: Annotated[
        str | None, typer.Option(help="Keep exporting, pausing this long between rounds (e.g. 60, 30s, 5m).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Move completed runs to the Parquet archive, exactly once (repeat with --every)."""
    pause = parse_duration(every) if every is not None else None
    if pause is not None and pause <= timedelta(0):
        raise InvalidArgument(f"--every must be a positive duration, got {every!r}")
    size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
    _progress_lines()
    with _location(ctx).open() as store:
        while True:
            try:
                with console_progress("export") as progress:
                    report = store.export(size, progress=progress)
            except ArchiveBusy as exc:
                if pause is None:
                    raise
                # On a schedule, another exporter holding the archive is a round to skip, not a failure.
                err.print(f"[yellow]skipped:[/yellow] {escape(str(exc))}", soft_wrap=True)
            else:
                if json_output:
                    # One document per round; with --every, one per line (JSON Lines).
                    sys.stdout.write(jsonable.dumps(report, indent=None if pause else 2) + "\n")
                else:
                    out.print(
                        f"exported {report.runs} run(s), {report.steps} step(s), {report.attempts} attempt(s)"
                        f" in {report.files} file(s), {report.seconds:.2f}s",
                        soft_wrap=True,
                    )
            if pause is None:
                return
            sys.stdout.flush()
            try:
                time.sleep(pause.total_seconds())
            except KeyboardInterrupt:  # Ctrl-C between rounds is the normal way to stop
                return


@app.command()
def prune(
    ctx: typer.Context,
    older_than: Annotated[str, typer.Option(help="Remove runs completed longer ago than this (e.g. 7d, 12h).")],
    json_output: JsonOption = False,
) -> None:
    """Delete from PostgreSQL the runs completed before now - OLDER_THAN that are already archived."""
    period = retention(older_than, "--older-than")
    _progress_lines()
    with _location(ctx).open() as store, console_progress("prune") as progress:
        removed = store.prune(period, progress=progress)
    if json_output:
        _print_json({"pruned": removed, "older_than_seconds": period.total_seconds()})
    else:
        out.print(f"pruned {removed} archived run(s) completed more than {escape(older_than)} ago", soft_wrap=True)


@app.command()
def compact(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Merge each archive partition's small Parquet files into one."""
    _progress_lines()
    with _location(ctx).open() as store, console_progress("compact") as progress:
        report = store.compact(progress=progress)
    if json_output:
        _print_json(report)
    else:
        out.print(
            f"compacted {report.partitions} partition(s): {report.files_removed} file(s) merged into"
            f" {report.files_written}, {report.rows_dropped} superseded row(s) dropped, {report.seconds:.2f}s",
            soft_wrap=True,
        )


def _progress_lines() -> None:
    """Off a terminal, archive jobs report progress as log lines on stderr (cron mail, the journal)."""
    if not sync_progress.log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        sync_progress.log.addHandler(handler)
        sync_progress.log.setLevel(logging.INFO)


# -- reporting ---------------------------------------------------------------------------


@app.command()
def stats(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Flows, active runs, and runs succeeded and failed today (UTC)."""
    with _location(ctx).open() as store:
        statistics = store.get_statistics()
    if json_output:
        _print_json(statistics)
    else:
        out.print(tables.statistics_table(statistics))


@app.command()
def timeseries(
    ctx: typer.Context,
    hour: Annotated[bool, typer.Option("--hour", help="Hourly buckets (default window: the last 24 hours).")] = False,
    day: Annotated[bool, typer.Option("--day", help="Daily buckets, the default (default window: 30 days).")] = False,
    since: Annotated[
        str | None, typer.Option(help="Window start, ISO-8601 with an offset, e.g. 2026-03-01T00:00Z.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Window end (exclusive); default: the end of the current bucket.")
    ] = None,
    flow: Annotated[str | None, typer.Option(help="Only runs of this flow id.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Runs per hour or day with their counts by status and p50/p95/p99 durations."""
    if hour and day:
        raise InvalidArgument("choose one of --hour and --day")
    granularity = Granularity.HOUR if hour else Granularity.DAY
    flow_id = arguments.optional_uuid(flow, "--flow")
    start, end = _window(granularity, _instant(since, "--since"), _instant(until, "--until"))
    olap_timeseries.window(granularity, start, end)  # the store's own window checks, before opening it
    with _location(ctx).open() as store:
        buckets = store.get_run_timeseries(granularity, start, end, flow_id)
    if json_output:
        _print_json(buckets)
    else:
        title = f"Runs per {granularity.value}, {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
        out.print(tables.timeseries_table(buckets, title))


def _instant(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(
            f"{name} must be an ISO-8601 date-time with an offset, e.g. 2026-03-01T00:00Z; got {text!r}"
        ) from None
    if value.tzinfo is None:
        raise InvalidArgument(f"{name} has no time zone: add Z or an offset, e.g. {value.isoformat()}Z")
    return arguments.aware_utc(value, name)


def _window(granularity: Granularity, since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """Fill a missing end with the end of the current bucket, a missing start with 24 hours or 30 days before."""
    step = timedelta(hours=1) if granularity is Granularity.HOUR else timedelta(days=1)
    span = timedelta(hours=24) if granularity is Granularity.HOUR else timedelta(days=30)
    if until is None:
        now = datetime.now(UTC)
        floor = now.replace(minute=0, second=0, microsecond=0)
        if granularity is Granularity.DAY:
            floor = floor.replace(hour=0)
        until = floor + step
    if since is None:
        since = until - span
    return since, until


@app.command()
def runs(
    ctx: typer.Context,
    flow: Annotated[str | None, typer.Option(help="Only runs of this flow id.")] = None,
    status: Annotated[
        str | None, typer.Option(help="Running, Succeeded, Failed, Cancelled, TimedOut or Skipped (any case).")
    ] = None,
    search: Annotated[
        str | None, typer.Option(help="Text in the run id, flow, trigger, job, step keys, errors.")
    ] = None,
    skip: Annotated[int, typer.Option(help="Runs to skip (paging).")] = 0,
    take: Annotated[int, typer.Option(help="Runs to show, 1-1000.")] = 50,
    json_output: JsonOption = False,
) -> None:
    """List runs, newest first, with filters, search and paging."""
    flow_id = arguments.optional_uuid(flow, "--flow")
    run_status = arguments.run_status(status, case_insensitive=True) if status is not None else None
    arguments.paging(skip, take)
    with _location(ctx).open() as store:
        page = store.get_runs_page(flow_id=flow_id, status=run_status, skip=skip, take=take, search=search)
    if json_output:
        _print_json({"total_count": page.total_count, "runs": page.runs})
    else:
        out.print(tables.runs_table(page, skip))


@app.command()
def show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run's id.", show_default=False)],
    json_output: JsonOption = False,
) -> None:
    """One run with its steps and every attempt (live or archived)."""
    rid = arguments.run_id(run_id, "RUN_ID")
    with _location(ctx).open() as store:
        run = store.get_run_detail(rid)
    if run is None:
        err.print(f"[red]error:[/red] run {rid} not found", soft_wrap=True)
        raise typer.Exit(NOT_FOUND)
    if json_output:
        _print_json(run)
    else:
        out.print(tables.run_detail(run))


@app.command()
def sql(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="DuckDB SQL over the views runs, steps, attempts.", show_default=False)],
    json_output: JsonOption = False,
) -> None:
    """Query live and archived runs with DuckDB SQL (views: runs, steps, attempts)."""
    if not query.strip():
        raise InvalidArgument("the query is empty")
    with _location(ctx).open() as store:
        frame = store.sql(query)
    if json_output:
        _print_json(frame.to_dicts())
    else:
        out.print(tables.frame_table(frame))


@app.command()
def ui(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to bind; any but loopback needs FLOWRUN_UI_TOKEN.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8080,
    actions: Annotated[
        bool, typer.Option("--actions", help="Allow retrying steps from the page (needs FLOWRUN_UI_TOKEN).")
    ] = False,
) -> None:
    """Serve the web dashboard and its REST API (live and archived runs) until Ctrl-C."""
    from flowrun.web import server, settings  # the web stack loads only for this command

    config = settings.UiSettings.from_env(actions=actions or None)
    settings.check_exposure(host, config)
    with _location(ctx).open() as store:
        err.print(f"flowrun ui: serving http://{escape(_url_host(host))}:{port}/ (Ctrl-C to stop)", soft_wrap=True)
        server.serve(store, config, host, port)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def main() -> None:
    """Console entry point: the store's errors become one red line on stderr and exit code 2."""
    try:
        app()
    except FlowRunStoreError as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
        sys.exit(USAGE)
    except KeyboardInterrupt:
        sys.exit(130)
