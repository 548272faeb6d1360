"""Graph message downloads in listing order on a few threads, ahead of the import."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from mailintake.sources.base import SourceItem
from mailintake.spool import Body, Spooled

CONCURRENCY = 4  # Outlook: four concurrent requests per app and mailbox (oauth-facts §3.6)


class Downloads:
    """Message downloads in the order the listing gave them, on CONCURRENCY threads, so the
    request slots stay busy from one batch to the next and while the output writes a batch.
    Once the import has asked for a first message, listed messages are downloaded up to
    ``ahead`` before it asks for them; any other is started when asked for."""

    def __init__(self, download: Callable[[SourceItem], Body], ahead: int) -> None:
        self._download = download
        self._ahead = ahead
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._listed: OrderedDict[str, SourceItem] = OrderedDict()  # not started yet
        self._started: dict[str, Future[Body]] = {}  # not asked for yet

    def offer(self, items: Sequence[SourceItem]) -> None:
        """Listed messages the import is likely to ask for."""
        with self._lock:
            for item in items:
                self._listed[item.key] = item
            self._fill()

    def claim(self, item: SourceItem) -> Future[Body]:
        """The download of ``item``; one listed before it starts first (batches asked for
        from several threads are still downloaded in listing order)."""
        with self._lock:
            if item.key in self._listed:
                self._start_until(item.key)
            future = self._started.pop(item.key, None)
            if future is None:  # not listed here
                future = self._submit(item)
            self._fill()
            return future

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            unclaimed = list(self._started.values())
            self._started.clear()
            self._listed.clear()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        for future in unclaimed:
            _discard(future)

    def _fill(self) -> None:
        if self._pool is None:  # the import has not asked for anything yet
            return
        while self._listed and len(self._started) < self._ahead:
            self._start_next()

    def _start_until(self, key: str) -> None:
        while self._start_next() != key:
            pass

    def _start_next(self) -> str:
        key, item = self._listed.popitem(last=False)
        self._started[key] = self._submit(item)
        return key

    def _submit(self, item: SourceItem) -> Future[Body]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="graph")
        return self._pool.submit(self._download, item)


def _discard(future: Future[Body]) -> None:
    """A download nobody asked for: its spool file, if any, is removed."""
    if future.cancelled() or future.exception() is not None:
        return
    body = future.result()
    if isinstance(body, Spooled):
        body.discard()


__all__ = ["CONCURRENCY", "Downloads"]
