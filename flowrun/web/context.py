"""What every route of one dashboard app shares: the store, its settings, the change feed, the caches."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fastapi import Request

from flowrun.store import FlowRunStore
from flowrun.web.feed import ChangeFeed
from flowrun.web.insights_cache import InsightsCache
from flowrun.web.settings import UiSettings


@dataclass
class UiContext:
    """One app's shared state (``app.state.ui``)."""

    store: FlowRunStore
    settings: UiSettings
    feed: ChangeFeed
    insights: InsightsCache
    now: Callable[[], datetime]


def context(request: Request) -> UiContext:
    """The app's context, for a route (a FastAPI dependency)."""
    ui = request.app.state.ui
    assert isinstance(ui, UiContext)
    return ui
