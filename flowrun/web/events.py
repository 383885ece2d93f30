"""``GET /api/events``: server-sent events of run and step changes, with a heartbeat.

Each stream subscribes to the server's ``ChangeFeed``. It opens with a
``hello`` event saying whether the feed is live; then every batch of changes
that arrived together is one ``changes`` event holding a JSON list (at most
``BATCH`` items, ``more`` set when some were folded away: the page refreshes
either way); a comment line every ``heartbeat`` seconds keeps proxies from
closing an idle stream and lets the server notice a closed browser tab.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from flowrun.web.feed import ChangeFeed

BATCH = 200
# A reconnecting EventSource waits this long (ms) before trying again.
RETRY_MS = 2000


def _message(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def stream(request: Request, feed: ChangeFeed, heartbeat: float) -> AsyncIterator[str]:
    """The event stream of one client, until it disconnects."""
    queue = feed.subscribe()
    try:
        yield f"retry: {RETRY_MS}\n" + _message("hello", {"live": feed.live})
        while True:
            try:
                first = await asyncio.wait_for(queue.get(), heartbeat)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield ": heartbeat\n\n"
                continue
            batch = [first]
            while not queue.empty() and len(batch) < BATCH:
                batch.append(queue.get_nowait())
            more = not queue.empty()
            while not queue.empty():  # fold the rest: one refresh covers them
                queue.get_nowait()
            yield _message("changes", {"events": batch, "more": more})
    finally:
        feed.unsubscribe(queue)


def response(request: Request, feed: ChangeFeed, heartbeat: float) -> StreamingResponse:
    """The streaming response for ``GET /api/events``."""
    return StreamingResponse(
        stream(request, feed, heartbeat),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )
