"""``create_app``: the dashboard and its API as one ASGI application over a ``FlowRunStore``.

Mount it in an existing service or serve it with ``flowrun.web.server.serve``.
The app owns no store: the caller opens and closes it. While the app runs
(its lifespan), one task listens for the store's change notifications and feeds
the event streams, and the overview's whole-history aggregates are computed in
the background from the start.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from flowrun.store import FlowRunStore
from flowrun.web import api, errors, pages
from flowrun.web.context import UiContext
from flowrun.web.feed import ChangeFeed
from flowrun.web.insights_cache import InsightsCache
from flowrun.web.security import SecurityMiddleware
from flowrun.web.settings import UiSettings

STATIC = Path(__file__).with_name("static")
# How long stopping waits for a background computation of the overview's aggregates.
SHUTDOWN_WAIT = 120.0


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def create_app(
    store: FlowRunStore, settings: UiSettings | None = None, *, now: Callable[[], datetime] | None = None
) -> FastAPI:
    """The dashboard over ``store``; ``now`` places the default chart windows (default: the wall clock)."""
    config = settings or UiSettings()
    feed = ChangeFeed(store.dsn, store.schema)
    cache = InsightsCache(store, config.insights_ttl)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(feed.run(), name="flowrun-change-feed")
        if config.warm_insights:
            cache.warm()
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await asyncio.to_thread(cache.wait, SHUTDOWN_WAIT)

    app = FastAPI(
        title="flowrun",
        summary="Run history of workflow engines: live and archived runs, read-only unless actions are enabled.",
        version="1",
        openapi_url="/api/openapi.json",
        docs_url=None,  # the interactive docs load their scripts from a CDN, which the CSP (rightly) refuses
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.ui = UiContext(
        store=store,
        settings=config,
        feed=feed,
        insights=cache,
        now=now or _wall_clock,
    )
    errors.install(app)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(SecurityMiddleware, token=config.token)
    return app
