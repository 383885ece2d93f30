"""Errors over HTTP: the store's typed errors become 4xx JSON, never a 500 for bad input.

The body is always ``{"error": {"type": ..., "message": ...}}`` with ``type`` the
error's class name (``InvalidPaging``, ``InvalidStatus``, ``RunNotFound``...), the
same taxonomy the Python API raises and the CLI prints.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from oltp.errors import (
    FlowRunStoreError,
    InvalidArgument,
    InvalidTransition,
    RunAlreadyExists,
    RunNotFound,
    StepNotFound,
    StoreUnavailable,
)
from sync.errors import ArchiveConflict, ArchiveUnavailable, ArchiveUpgradeRequired

# Most specific first: the first class an error is an instance of gives its status.
STATUS: tuple[tuple[type[Exception], int], ...] = (
    (InvalidArgument, 400),
    (RunNotFound, 404),
    (StepNotFound, 404),
    (InvalidTransition, 409),
    (RunAlreadyExists, 409),
    (StoreUnavailable, 503),
    (ArchiveUnavailable, 503),
    # The archive needs an operator (a `flowrun upgrade-archive` or `move-archive`) before it can be read.
    (ArchiveUpgradeRequired, 503),
    (ArchiveConflict, 503),
)


class ResponseTooLarge(FlowRunStoreError):
    """An answer is larger than the configured response limit."""


def error_body(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    """The JSON body of every error answer."""
    return {"error": {"type": kind, "message": message, **extra}}


def status_of(exc: Exception) -> int:
    """The HTTP status for a store error; a store error of no known kind is the server's fault."""
    for kind, status in STATUS:
        if isinstance(exc, kind):
            return status
    if isinstance(exc, ResponseTooLarge):
        return 413
    return 500


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    async def store_error(request: Request, exc: Exception) -> JSONResponse:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return JSONResponse(error_body(type(exc).__name__, message), status_code=status_of(exc))

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = []
        for item in exc.errors():
            where = ".".join(str(part) for part in item.get("loc", ()) if part not in ("query", "path", "body"))
            problems.append(f"{where or 'request'}: {item.get('msg', 'invalid')}")
        return JSONResponse(error_body("InvalidArgument", "; ".join(problems) or "invalid request"), status_code=400)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        kind = {404: "NotFound", 405: "MethodNotAllowed", 403: "Forbidden"}.get(exc.status_code, "HTTPError")
        return JSONResponse(error_body(kind, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

    app.add_exception_handler(FlowRunStoreError, store_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
