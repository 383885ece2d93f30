"""Reading the next export batch while the current one is written.

An export alternates between PostgreSQL (reading a batch) and the local CPU
and disk (sorting, compressing, fsyncing it, then the manifest commit). A
reader thread with its own connections (two: steps and attempts are read in
parallel, in one snapshot) overlaps the two: it reads batch n+1
while batch n is written and committed, and never runs further ahead than
that, so at most three batches are in memory. Reading ahead is safe: batches
hold disjoint outbox rows, and a run written again in the meantime comes back
at a higher revision, which the commits handle in order.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

from sync.arrow_connection import ArrowConnection
from sync.snapshot import Batch, Helper, QueueKey, create_id_table, read_batch

_POLL_SECONDS = 0.1


class BatchPrefetcher:
    """Iterate over export batches, each read on a background thread one step ahead."""

    def __init__(self, dsn: str, schema: str, size: int) -> None:
        self._dsn = dsn
        self._schema = schema
        self._size = size
        self._ready: queue.Queue[Batch | BaseException] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flowrun-export-reader", daemon=True)

    def __enter__(self) -> BatchPrefetcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        # A read in progress finishes before the thread sees the flag; it is a daemon,
        # so a stuck read never keeps the process alive.
        self._thread.join(timeout=30)

    def __iter__(self) -> Iterator[Batch]:
        while True:
            item = self._ready.get()
            if isinstance(item, BaseException):
                raise item
            if item.empty:
                return
            yield item

    def _run(self) -> None:
        try:
            with ArrowConnection(self._dsn, self._schema) as conn:
                create_id_table(conn)
                helper = Helper(ArrowConnection(self._dsn, self._schema))
                try:
                    after: QueueKey | None = None
                    while not self._stop.is_set():
                        batch = read_batch(conn, after, self._size, helper)
                        if not self._offer(batch) or batch.empty:
                            return
                        after = batch.last
                finally:
                    helper.close()
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._offer(exc)

    def _offer(self, item: Batch | BaseException) -> bool:
        while not self._stop.is_set():
            try:
                self._ready.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False
