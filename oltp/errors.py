"""The error taxonomy of flowrun-store.

Everything the library raises on purpose derives from ``FlowRunStoreError``.
Bad arguments raise ``InvalidArgument`` subclasses, which are also
``ValueError`` so plain Python callers can catch them the usual way. Driver
errors are translated by SQLSTATE class in ``oltp.connection`` and raised
``from`` the original so the server's message is never lost.
"""

from __future__ import annotations

import uuid


class FlowRunStoreError(Exception):
    """Base of every error flowrun-store raises on purpose."""


class InvalidArgument(FlowRunStoreError, ValueError):
    """An argument is malformed; nothing was read or written."""


class InvalidStatus(InvalidArgument):
    """A status string is not one of the known spellings (or not allowed here)."""


class InvalidJson(InvalidArgument):
    """A JSON field is not strict JSON (NaN and Infinity are rejected too)."""


class NaiveDatetime(InvalidArgument):
    """A datetime without tzinfo was given where an instant is required."""


class InvalidPaging(InvalidArgument):
    """``skip`` or ``take`` is out of range."""


class InvalidTimeRange(InvalidArgument):
    """A timeseries window is reversed or spans too many buckets."""


class InvalidQuery(InvalidArgument):
    """``sql()`` was given a query DuckDB cannot parse, bind or run, or whose result polars cannot hold."""


class QueryRefused(InvalidQuery):
    """``sql()`` was given something the sandbox does not run: not one read-only query, or one reaching
    for files, extensions, other databases or settings."""


class RunNotFound(FlowRunStoreError, LookupError):
    """No run with this id is in the store (or it is archived and read-only)."""

    def __init__(self, run_id: uuid.UUID, detail: str = "") -> None:
        self.run_id = run_id
        super().__init__(f"run {run_id} not found{': ' + detail if detail else ''}")


class StepNotFound(FlowRunStoreError, LookupError):
    """The run has no step with this key."""

    def __init__(self, run_id: uuid.UUID, step_key: str) -> None:
        self.run_id = run_id
        self.step_key = step_key
        super().__init__(f"step {step_key!r} not found in run {run_id}")


class InvalidTransition(FlowRunStoreError):
    """The requested status change is not allowed from the current state."""


class RunAlreadyExists(FlowRunStoreError):
    """``start_run`` was given an id that is already stored."""

    def __init__(self, run_id: uuid.UUID) -> None:
        self.run_id = run_id
        super().__init__(f"run {run_id} already exists")


class StoreUnavailable(FlowRunStoreError):
    """The database cannot be reached or dropped the connection; safe to retry."""


class DatabaseError(FlowRunStoreError):
    """The database refused a statement for a reason the store does not expect."""


class MigrationRequired(FlowRunStoreError):
    """The database schema is older than this library; run ``flowrun migrate``."""


class ArchiveBusy(FlowRunStoreError):
    """Another exporter or compactor holds the archive lock; try again later."""


class StaleAttempt(InvalidTransition):
    """A completion named an attempt that is no longer the step's newest; nothing was written.

    A worker that lost its dispatch (its lease expired and another worker started the
    step again) gets this instead of overwriting its successor's attempt.
    """

    def __init__(self, run_id: uuid.UUID, step_key: str, attempt: int, newest: int) -> None:
        self.run_id = run_id
        self.step_key = step_key
        self.attempt = attempt
        self.newest = newest
        super().__init__(
            f"attempt {attempt} of step {step_key!r} in run {run_id} is not the newest (that is {newest});"
            " the completion is refused"
        )
