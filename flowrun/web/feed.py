"""The change feed: one ``LISTEN`` connection per server, fanned out to every open event stream.

``ChangeFeed.run`` holds one asynchronous psycopg connection listening on
``oltp.notify.CHANNEL`` and hands each notification of this store's schema to
every subscriber's queue. The browsers never touch PostgreSQL and never poll the
tables; PostgreSQL pays for one listener whatever the number of open pages.
When the connection drops, subscribers are told (``{"kind": "feed", "live":
false}``, so pages fall back to periodic refresh) and the feed reconnects with a
growing pause, saying ``live: true`` again once it listens.

A subscriber that does not keep up loses events rather than hold the others back
(its queue is bounded); the events are hints to refresh, never the data itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import psycopg
from psycopg import sql

from oltp.notify import CHANNEL

log = logging.getLogger(__name__)
QUEUE_SIZE = 1000
MAX_PAUSE = 10.0


class ChangeFeed:
    """Notifications of one store's schema, fanned out to subscribers' queues."""

    def __init__(self, dsn: str, schema: str) -> None:
        self.dsn = dsn
        self.schema = schema
        self.live = False
        self.received = 0
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._listening = asyncio.Event()

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        """A new queue that receives every event from now on."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Stop feeding ``queue``."""
        self._subscribers.discard(queue)

    @property
    def subscribers(self) -> int:
        """How many queues are fed."""
        return len(self._subscribers)

    async def wait_listening(self, timeout: float) -> bool:
        """Wait until the feed listens (True) or ``timeout`` seconds pass (False)."""
        try:
            await asyncio.wait_for(self._listening.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def publish(self, event: dict[str, Any]) -> None:
        """Hand ``event`` to every subscriber; a full queue drops it."""
        for queue in self._subscribers:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after failures."""
        pause = 0.5
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                log.warning("change feed lost its connection (%s); reconnecting in %.1fs", exc, pause)
            self._set_live(False)
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_PAUSE)

    async def _listen(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
            self._set_live(True)
            async for notify in conn.notifies():
                event = _event(notify.payload, self.schema)
                if event is not None:
                    self.received += 1
                    self.publish(event)

    def _set_live(self, live: bool) -> None:
        if live != self.live:
            self.live = live
            self.publish({"kind": "feed", "live": live})
        if live:
            self._listening.set()
        else:
            self._listening.clear()


def _event(payload: str, schema: str) -> dict[str, Any] | None:
    """The event a notification's payload describes, or None for another schema's or an unreadable one."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.pop("schema", None) != schema:
        return None
    return data
