"""Serving the dashboard with uvicorn: ``flowrun ui`` and anyone who wants it in one call."""

from __future__ import annotations

import uvicorn

from flowrun.store import FlowRunStore
from flowrun.web.app import create_app
from flowrun.web.settings import UiSettings, check_exposure

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def server(
    store: FlowRunStore, settings: UiSettings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
) -> uvicorn.Server:
    """A uvicorn server for the dashboard over ``store``; refuses a non-loopback ``host`` without a token."""
    check_exposure(host, settings)
    config = uvicorn.Config(
        create_app(store, settings),
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(config)


def serve(store: FlowRunStore, settings: UiSettings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve until interrupted (Ctrl-C)."""
    server(store, settings, host, port).run()
