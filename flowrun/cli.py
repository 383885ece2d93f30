"""The ``flowrun`` command line: run the demo, migrate, export, prune, compact, query, run the server.

Every command is a thin shell over one ``FlowRunStore`` method: arguments are
parsed and validated first (nothing is opened or written for a bad one), the
store is opened from the global options through ``Location`` (the one place
that knows how), and the answer is printed by ``flowrun.output`` as a table
that fits the terminal, or as JSON or CSV for scripts. ``main`` turns every
error a user can cause into one line on stderr and exit code 2, and SIGINT or
SIGTERM into one line saying what was finished.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from importlib import metadata
from types import FrameType
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from flowrun import dashboard, demo, job_process, jsonable, server_commands, tables
from flowrun.demo_clock import ThreadClock
from flowrun.location import Location
from flowrun.output import Format, FormatOption, JsonOption, WideOption, chosen, emit, err, json_line, out
from flowrun.store import FlowRunStore
from olap import timeseries as olap_timeseries
from oltp import arguments
from oltp.errors import FlowRunStoreError, InvalidArgument
from oltp.records import Granularity
from sync import progress as sync_progress
from sync.durations import parse_duration, retention
from sync.errors import ArchiveBusy, ArchiveCorrupt
from sync.export import DEFAULT_BATCH_SIZE
from sync.progress import ProgressUpdate, console_progress
from sync.upgrade import UpgradeReport

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Run history for workflow engines: PostgreSQL for live runs, a Delta Lake archive, DuckDB for reports.",
)
app.add_typer(server_commands.app, name="server")
app.command(name="info")(server_commands.info)

# Exit codes: 0 success, 1 "not found" or corrupt files found, 2 a user mistake or an unusable store, 128+n a signal.
NOT_FOUND = 1
CORRUPT = 1  # flowrun verify found archive files that are not what was written
USAGE = 2


class Finished:
    """What a command has completed so far, for the one line printed when a signal stops it."""

    note = "nothing was changed"


def _version(value: bool) -> None:
    if value:
        out.print(f"flowrun {metadata.version('flowrun-store')}")
        raise typer.Exit()


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
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Run history for workflow engines: PostgreSQL for live runs, a Delta Lake archive, DuckDB for reports."""
    ctx.obj = Location(dsn=dsn, archive=archive, home=home, schema=schema)


def _location(ctx: typer.Context) -> Location:
    location = ctx.find_root().obj
    assert isinstance(location, Location)
    return location


WaitOption = Annotated[
    str, typer.Option("--wait", help="How long to wait for another export or compaction to finish (e.g. 30s, 5m).")
]


def _duration(text: str, name: str) -> timedelta:
    """``parse_duration`` with the option's name in its error."""
    try:
        return parse_duration(text)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{name}: {exc}") from None


def _wait_seconds(text: str) -> float:
    return _duration(text, "--wait").total_seconds()


# -- schema ------------------------------------------------------------------------------


@app.command()
def migrate(ctx: typer.Context, fmt: FormatOption = None, json_output: JsonOption = False) -> None:
    """Create the store's tables, or upgrade them to this version (safe to repeat)."""
    form = chosen(fmt, json_output)
    schema, revision = _location(ctx).migrate()
    emit(
        {"schema": schema, "revision": revision},
        form,
        lambda: f"schema [bold]{escape(schema)}[/bold] is at revision [bold]{escape(revision)}[/bold]",
    )


# -- the demo and the dashboard -------------------------------------------------------------


@app.command(name="demo")
def demo_command(
    ctx: typer.Context,
    runs: Annotated[
        int, typer.Option(min=0, max=10_000_000, help="Number of flow runs to play (re-runs included).")
    ] = 10_000,
    threads: Annotated[int, typer.Option(min=1, max=64, help="Engine workers playing runs at once.")] = 8,
    json_output: JsonOption = False,
) -> None:
    """Play 30 days of engine traffic, export it, prune the older half, and show the dashboard."""
    clock = ThreadClock()
    with _location(ctx).open(clock=clock, migrate=True, asynchronous_commit=True) as store:
        with _progress(disable=json_output) as progress:
            task = progress.add_task("playing runs", total=runs)
            summary = demo.run_demo(store, clock, runs, threads=threads, on_run=lambda: progress.advance(task))
        Finished.note = f"the demo played {summary.played.runs} run(s)"
        board = dashboard.collect(store)
    if json_output:
        sys.stdout.write(jsonable.dumps({"demo": summary, **board.as_dict()}) + "\n")
    else:
        out.print(dashboard.render(board, summary, width=out.width))
        out.print(
            "\nSee it in a browser: run [bold]flowrun ui[/bold] (with the same --home/--dsn options, if any)"
            " and open [bold]http://127.0.0.1:8080/[/bold]"
        )


@app.command(name="dashboard")
def dashboard_command(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """The demo's dashboard for the runs already in the store (live and archived)."""
    with _location(ctx).open() as store:
        board = dashboard.collect(store)
    if json_output:
        sys.stdout.write(jsonable.dumps(board.as_dict()) + "\n")
    else:
        out.print(dashboard.render(board, width=out.width))


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
    batch_size: Annotated[
        int | None, typer.Option(min=1, max=1_000_000, help="Runs per export batch (one Delta commit).")
    ] = None,
    every: Annotated[
        str | None, typer.Option(help="Keep exporting, pausing this long between rounds (e.g. 60, 30s, 5m).")
    ] = None,
    wait: WaitOption = "0s",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Report idle rounds of --every too.")] = False,
    fmt: FormatOption = None,
    json_output: JsonOption = False,
) -> None:
    """Move completed runs to the Delta archive, exactly once (repeat with --every)."""
    form = chosen(fmt, json_output)
    pause = _duration(every, "--every") if every is not None else None
    if pause is not None and pause <= timedelta(0):
        raise InvalidArgument(f"--every must be a positive duration, got {every!r}")
    waiting = _wait_seconds(wait)
    size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
    job_process.keep_heap()
    _progress_lines()
    rounds = exported = 0
    with _location(ctx).open() as store:
        while True:
            try:
                with console_progress("export") as progress:
                    report = store.export(size, progress=_quiet_idle(progress, pause, verbose), wait=waiting)
            except ArchiveBusy as exc:
                if pause is None:
                    raise
                # On a schedule, another exporter holding the archive is a round to skip, not a failure.
                err.print(f"[yellow]skipped:[/yellow] {escape(str(exc))}")
            except ArchiveCorrupt as exc:
                if pause is None:
                    raise
                # The round archived the other runs; those of the damaged file's date stay queued.
                err.print(f"[red]error:[/red] {escape(str(exc))} (its date's re-exported runs stay queued)")
            else:
                rounds += 1
                exported += report.runs
                Finished.note = f"{rounds} export round(s) finished, {exported} run(s) archived"
                if pause is not None and report.runs == 0 and not verbose:
                    pass  # an idle round of a schedule is not news
                elif form is Format.JSON and pause is not None:
                    json_line(report._asdict())  # JSON Lines, each with its time
                else:
                    line = (
                        f"exported {report.runs} run(s), {report.steps} step(s), {report.attempts}"
                        f" attempt(s) in {report.files} commit(s), {report.seconds:.2f}s"
                    )
                    emit(report, form, lambda text=line: text)  # type: ignore[misc]
            if pause is None:
                return
            sys.stdout.flush()
            time.sleep(pause.total_seconds())


def _quiet_idle(progress: sync_progress.Progress, pause: timedelta | None, verbose: bool) -> sync_progress.Progress:
    """On a schedule, progress of a round that found nothing to export stays unsaid."""
    if pause is None or verbose:
        return progress

    def show(update: ProgressUpdate) -> None:
        if update.done or update.rows:
            progress(update)

    return show


@app.command()
def prune(
    ctx: typer.Context,
    older_than: Annotated[str, typer.Option(help="Remove runs completed longer ago than this (e.g. 7d, 12h).")],
    fmt: FormatOption = None,
    json_output: JsonOption = False,
) -> None:
    """Delete from PostgreSQL the runs completed before now - OLDER_THAN that are already archived."""
    form = chosen(fmt, json_output)
    period = retention(_duration(older_than, "--older-than"), "--older-than")
    _progress_lines()
    with _location(ctx).open() as store, console_progress("prune") as progress:
        Finished.note = "runs pruned so far stay pruned (each is in the archive)"
        removed = store.prune(period, progress=progress)
    ago = "before now" if not period else f"more than {tables.duration_text(period.total_seconds() * 1000)} ago"
    emit(
        {"pruned": removed, "older_than_seconds": period.total_seconds()},
        form,
        lambda: f"pruned {removed} archived run(s) completed {ago}",
    )


@app.command()
def compact(
    ctx: typer.Context,
    vacuum_after: Annotated[
        str, typer.Option(help="Delete files the table dropped this long ago, not sooner (e.g. 6h, 1d).")
    ] = "6h",
    wait: WaitOption = "0s",
    fmt: FormatOption = None,
    json_output: JsonOption = False,
) -> None:
    """Optimize each archive partition into few files sorted by start time, checkpoint, vacuum."""
    form = chosen(fmt, json_output)
    waiting = _wait_seconds(wait)
    keep = retention(_duration(vacuum_after, "--vacuum-after"), "--vacuum-after")
    job_process.keep_heap()
    _progress_lines()
    with _location(ctx).open() as store, console_progress("compact") as progress:
        Finished.note = "a compaction stopped before its Delta commit changed nothing"
        report = store.compact(progress=progress, wait=waiting, vacuum_after=keep)
    emit(
        report,
        form,
        lambda: (
            f"compacted {report.partitions} partition(s): {report.files_removed} file(s) merged into"
            f" {report.files_written}, {report.files_vacuumed} old file(s) vacuumed, {report.seconds:.2f}s"
        ),
    )


@app.command()
def verify(ctx: typer.Context, fmt: FormatOption = None, json_output: JsonOption = False) -> None:
    """Read every archive file back: size, row count and SHA-256 as written; exit 1 listing corrupt files."""
    form = chosen(fmt, json_output)
    _progress_lines()
    with _location(ctx).open() as store, console_progress("verify") as progress:
        Finished.note = "nothing was changed (files hashed for the first time stay recorded)"
        report = store.verify_archive(progress=progress)
    if form is not Format.TABLE:
        emit(report, form, str, lambda: [f._asdict() for f in report.corrupt])
    else:
        for file in report.corrupt:
            out.print(f"{file.path}: {file.reason}", soft_wrap=True, markup=False)
        for uri in report.trusted:
            err.print(f"no hash recorded, trusted on this first verify: {uri}", soft_wrap=True, markup=False)
        version = "no archive yet" if report.version is None else f"version {report.version}"
        err.print(
            f"verified {report.files} file(s), {report.bytes / 1e6:.1f} MB of {version}:"
            f" {len(report.corrupt)} corrupt, {len(report.trusted)} trusted on first verify, {report.seconds:.2f}s",
            markup=False,
        )
    if report.corrupt:
        raise typer.Exit(CORRUPT)


@app.command("move-archive")
def move_archive(
    ctx: typer.Context,
    new_location: Annotated[str, typer.Argument(help="Where the archive now lives (directory or s3://...).")],
    wait: WaitOption = "0s",
    fmt: FormatOption = None,
    json_output: JsonOption = False,
) -> None:
    """Record that the archive was copied to NEW_LOCATION (checks it holds this database's table)."""
    form = chosen(fmt, json_output)
    waiting = _wait_seconds(wait)
    with _location(ctx).open() as store:
        old = store.move_archive(new_location, wait=waiting)
    emit({"from": old, "to": new_location}, form, lambda: f"archive moved from {old} to {new_location}")


@app.command("upgrade-archive")
def upgrade_archive(
    ctx: typer.Context,
    wait: WaitOption = "0s",
    fmt: FormatOption = None,
    json_output: JsonOption = False,
) -> None:
    """Convert a v1 Parquet archive into the Delta table (runs pruned from PostgreSQL included); rerun after a crash."""
    form = chosen(fmt, json_output)
    waiting = _wait_seconds(wait)
    job_process.keep_heap()
    _progress_lines()
    with _location(ctx).open() as store, console_progress("upgrade") as progress:
        Finished.note = "batches committed so far are recorded; run upgrade-archive again to finish"
        report = store.upgrade_archive(progress=progress, wait=waiting)
    emit(report, form, lambda: _upgrade_line(report))


def _upgrade_line(report: UpgradeReport) -> str:
    if not report.retired_to:
        return "nothing to upgrade: the archive holds no v1 files (already upgraded, or never v1)"
    lost = (
        f"; {report.lost} run(s) were lost before this upgrade (a vacuum deleted their v1 run files; their steps"
        " and attempts are kept there)"
        if report.lost
        else ""
    )
    return (
        f"upgraded {report.runs} archived run(s) ({report.steps} step(s), {report.attempts} attempt(s)) in"
        f" {report.commits} commit(s); {report.skipped} v1 run(s) left to `flowrun export` or already in the table;"
        f" {report.files} v1 file(s) moved to {report.retired_to}, {report.seconds:.2f}s{lost}"
    )


def _progress_lines() -> None:
    """Off a terminal, archive jobs report progress as log lines on stderr (cron mail, the journal)."""
    if not sync_progress.log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%dT%H:%M:%S%z"))
        sync_progress.log.addHandler(handler)
        sync_progress.log.setLevel(logging.INFO)


# -- reporting ---------------------------------------------------------------------------

FlowOption = Annotated[str | None, typer.Option(help="Only runs of this flow: its name, id or id prefix.")]


def _flow_id(store: FlowRunStore, flow: str | None) -> object:
    return None if flow is None else store.resolve_flow(flow)


@app.command()
def stats(ctx: typer.Context, fmt: FormatOption = None, json_output: JsonOption = False) -> None:
    """Flows, active runs, and runs succeeded and failed today (UTC)."""
    form = chosen(fmt, json_output)
    with _location(ctx).open() as store:
        statistics = store.get_statistics()
    emit(statistics, form, lambda: tables.statistics_table(statistics))


@app.command()
def flows(
    ctx: typer.Context, fmt: FormatOption = None, json_output: JsonOption = False, wide: WideOption = False
) -> None:
    """Every flow with runs: name, id, number of runs, last run."""
    form = chosen(fmt, json_output)
    with _location(ctx).open() as store:
        rows = store.flows().to_dicts()
    emit(rows, form, lambda: tables.flows_table(rows, _width(wide), wide=wide), wide=wide)


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
    flow: FlowOption = None,
    fmt: FormatOption = None,
    json_output: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """Runs per hour or day with their counts by status and p50/p95/p99 durations."""
    form = chosen(fmt, json_output)
    if hour and day:
        raise InvalidArgument("choose one of --hour and --day")
    granularity = Granularity.HOUR if hour else Granularity.DAY
    start, end = _window(granularity, _instant(since, "--since"), _instant(until, "--until"))
    olap_timeseries.window(granularity, start, end)  # the store's own window checks, before opening it
    with _location(ctx).open() as store:
        buckets = store.get_run_timeseries(granularity, start, end, _flow_id(store, flow))  # type: ignore[arg-type]
    title = f"Runs per {granularity.value}, {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    emit(
        buckets,
        form,
        lambda: tables.timeseries_table(buckets, title, _width(wide), hourly=hour, wide=wide),
        wide=wide,
    )


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
    try:
        return arguments.aware_utc(value, name)
    except OverflowError:
        raise InvalidArgument(f"{name} is out of range in UTC: {text!r}") from None


def _window(granularity: Granularity, since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """Fill a missing end with the end of the current bucket, a missing start with 24 hours or 30 days before."""
    step = timedelta(hours=1) if granularity is Granularity.HOUR else timedelta(days=1)
    span = timedelta(hours=24) if granularity is Granularity.HOUR else timedelta(days=30)
    try:
        if until is None:
            now = datetime.now(UTC)
            floor = now.replace(minute=0, second=0, microsecond=0)
            if granularity is Granularity.DAY:
                floor = floor.replace(hour=0)
            until = floor + step
        if since is None:
            since = until - span
    except OverflowError:
        raise InvalidArgument("the window reaches outside the years 1-9999; give both --since and --until") from None
    return since, until


@app.command()
def runs(
    ctx: typer.Context,
    flow: FlowOption = None,
    status: Annotated[
        str | None, typer.Option(help="Running, Succeeded, Failed, Cancelled, TimedOut or Skipped (any case).")
    ] = None,
    search: Annotated[
        str | None, typer.Option(help="Text in the run id, flow, trigger, job, step keys, errors.")
    ] = None,
    skip: Annotated[int, typer.Option(help="Runs to skip (paging).")] = 0,
    take: Annotated[int, typer.Option(help="Runs to show, 1-1000.")] = 50,
    fmt: FormatOption = None,
    json_output: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """List runs, newest first, with filters, search and paging."""
    form = chosen(fmt, json_output)
    run_status = arguments.run_status(status, case_insensitive=True) if status is not None else None
    arguments.paging(skip, take)
    with _location(ctx).open() as store:
        flow_id = _flow_id(store, flow)
        page = store.get_runs_page(flow_id=flow_id, status=run_status, skip=skip, take=take, search=search)  # type: ignore[arg-type]
    emit(
        {"total_count": page.total_count, "runs": page.runs},
        form,
        lambda: tables.runs_table(page, skip, _width(wide), wide=wide),
        lambda: [_run_row(r) for r in page.runs],
        wide=wide,
    )


def _run_row(run: object) -> dict[str, object]:
    plain = jsonable.jsonable(run)
    assert isinstance(plain, dict)
    plain.pop("steps", None)
    return plain


@app.command()
def show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run's id, or a unique prefix of it.", show_default=False)],
    fmt: FormatOption = None,
    json_output: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """One run with every attempt of its steps, and the runs re-run from it (live or archived)."""
    form = chosen(fmt, json_output)
    arguments.text(run_id, "RUN_ID")
    with _location(ctx).open() as store:
        rid = store.resolve_run(run_id)
        run = store.get_run_detail(rid) if rid is not None else None
        derived = store.get_derived_runs(run.id) if run is not None else []
    if run is None:
        err.print(f"[red]error:[/red] run {escape(run_id)} not found")
        raise typer.Exit(NOT_FOUND)
    emit(
        {**jsonable.jsonable(run), "derived_runs": [_run_row(r) for r in derived]},
        form,
        lambda: tables.run_detail(run, derived, _width(wide), wide=wide),
        lambda: [_run_row(run)],
        wide=wide,
    )


@app.command()
def sql(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="DuckDB SQL over the views runs, steps, attempts.", show_default=False)],
    fmt: FormatOption = None,
    json_output: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """Query live and archived runs with DuckDB SQL (views: runs, steps, attempts)."""
    form = chosen(fmt, json_output)
    if not query.strip():
        raise InvalidArgument("the query is empty")
    with _location(ctx).open() as store:
        frame = store.sql(query)
    if form is Format.CSV:
        sys.stdout.write(frame.write_csv())
        return
    emit(frame.to_dicts(), form, lambda: tables.frame_table(frame, _width(wide)), wide=wide)


def _width(wide: bool) -> int | None:
    return None if wide else out.width


# -- the web dashboard ------------------------------------------------------------------------


@app.command()
def ui(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to bind; any but loopback needs FLOWRUN_UI_TOKEN.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8080,
    actions: Annotated[
        bool,
        typer.Option("--actions", help="Allow retrying steps and cancelling runs from the page (needs the token)."),
    ] = False,
) -> None:
    """Serve the web dashboard and its REST API (live and archived runs) until Ctrl-C."""
    from flowrun.web import server, settings  # the web stack loads only for this command

    config = settings.UiSettings.from_env(actions=actions or None)
    settings.check_exposure(host, config)
    with _location(ctx).open() as store:
        err.print(f"flowrun ui: serving http://{escape(_url_host(host))}:{port}/ (Ctrl-C to stop)", soft_wrap=True)
        # uvicorn stops gracefully on SIGINT/SIGTERM, then re-raises the signal: exit 128+n as every command.
        server.serve(store, config, host, port)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


# -- the entry point -------------------------------------------------------------------------


class Stopped(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised where the program is: blocks unwind, the embedded server is left properly."""

    signal_name = ""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    Stopped.signal_name = signal.Signals(signum).name
    raise Stopped()


def main() -> None:
    """Console entry point: every user mistake becomes one line on stderr and exit code 2."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _on_signal)
    try:
        # Not standalone: typer's own error boxes and "Aborted!" would be several lines.
        code = app(standalone_mode=False)
    except KeyboardInterrupt:
        code = 130
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        code = 130
    except typer.TyperException as exc:  # click's usage errors: a bad option, a missing argument
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.stderr.write(str(exc) + "\n")
            sys.exit(USAGE)
        _fail(getattr(exc, "format_message", exc.__str__)(), USAGE)
    except FlowRunStoreError as exc:
        _fail(str(exc) or type(exc).__name__, USAGE)
    except (OSError, ValueError, OverflowError, RecursionError) as exc:
        # Whatever a user points us at (an unwritable --archive, a file where a directory should be).
        _fail(f"{type(exc).__name__}: {exc}", USAGE)
    if Stopped.signal_name:
        err.print(f"stopped by {Stopped.signal_name}: {Finished.note}")
        sys.exit(128 + signal.Signals[Stopped.signal_name].value)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    lines = [line.strip() for line in str(message).strip().splitlines() if line.strip()]
    err.print(f"[red]error:[/red] {escape(lines[0] if lines else 'failed')}")
    sys.exit(code)
