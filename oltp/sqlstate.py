"""The one SQLSTATE -> error table, for every driver the project talks to PostgreSQL with.

psycopg (the lifecycle stores, migrations, prune), ADBC (the archive jobs'
Arrow connection) and the reporting reader all hand their driver's error to
``error_for``, so one server condition is one error whatever path met it:

- ``StoreUnavailable`` (transient, safe to retry): the connection is gone or
  cannot be made (class 08, or no SQLSTATE at all: the socket died before the
  server said anything), the server is shutting down, crashing or starting
  (57P01-57P03), it has no connection slot left (53300), or a transaction was
  aborted by a conflict that left no effect (40001 serialization failure,
  40P01 deadlock) or by a lock wait that timed out (55P03);
- ``DatabaseError``: anything else. psycopg files some of these under
  ``OperationalError`` too (a key too long for its index, 54000; a statement
  timeout, 57014), but retrying them would fail again, so they are not
  "unavailable" whatever the driver's class says.
"""

from __future__ import annotations

from oltp.errors import DatabaseError, FlowRunStoreError, StoreUnavailable

# SQLSTATE -> why it is transient (the first words of the error message).
TRANSIENT: dict[str, str] = {
    "57P01": "database unavailable",  # admin_shutdown
    "57P02": "database unavailable",  # crash_shutdown
    "57P03": "database unavailable",  # cannot_connect_now (starting up)
    "53300": "database unavailable",  # too_many_connections
    "40001": "transaction aborted by a conflict, retry",  # serialization_failure
    "40P01": "transaction aborted by a conflict, retry",  # deadlock_detected
    "55P03": "lock not available, retry",  # lock_not_available
}
# Conflicts abort a statement without effect, so a store may retry them by itself;
# connection losses are not retried (a commit may have landed).
CONFLICTS = frozenset({"40001", "40P01"})


def error_for(sqlstate: str | None, message: str, *, connection_error: bool) -> FlowRunStoreError:
    """The store's error for a driver error with this SQLSTATE and (first line of) message.

    ``connection_error`` is the driver's own verdict (an ``OperationalError`` or
    ``InterfaceError``): without a SQLSTATE it means the socket is gone; a client-side
    error without one (a malformed call) is not transient.
    """
    if sqlstate is None:
        if connection_error:
            return StoreUnavailable(f"database unavailable: {message}")
        return DatabaseError(f"database error [client]: {message}")
    if sqlstate.startswith("08"):
        return StoreUnavailable(f"database unavailable: {message}")
    reason = TRANSIENT.get(sqlstate)
    if reason is not None:
        return StoreUnavailable(f"{reason}: {message}")
    return DatabaseError(f"database error [{sqlstate}]: {message}")


def first_line(exc: BaseException) -> str:
    """The first line of an error's text (drivers append context and hints below it)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
