"""Graph message downloads in listing order on a few threads, ahead of the import, and what
a download that failed means: the message's failure, or the pass's."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from mailintake.errors import MailintakeError, MessageUnavailable, NetworkError
from mailintake.sources.base import Fetched, SourceItem
from mailintake.sources.graph_answers import GraphRefused
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


def outcome(
    name: str, item: SourceItem, future: Future[Body], probe: Callable[[], object]
) -> Fetched:
    """The download's body, or MessageUnavailable when the failure is the message's: Graph
    refused this one download with a code (500 ErrorMimeContentConversionFailed for
    encrypted or opaque-signed S/MIME items and their reports, 404 ErrorItemNotFound for an
    item gone since the listing), or it kept failing (504, a connection dropped halfway
    through a large item) while Graph answers ``probe`` (a small request) at once. A
    refused token, throttling, or a Graph that does not answer ``probe`` either stop the
    pass as before: nothing is charged to the message then."""
    try:
        return future.result()
    except GraphRefused as exc:
        return MessageUnavailable(f"{name}: Graph cannot give message {_id(item)}: {exc}")
    except NetworkError as exc:
        try:
            probe()
        except MailintakeError:
            raise exc from None
        return MessageUnavailable(
            f"{name}: Graph kept failing to give message {_id(item)} while it answers other "
            f"requests: {exc}"
        )


def _id(item: SourceItem) -> str:
    return str(item.source.get("id", item.key))


def _discard(future: Future[Body]) -> None:
    """A download nobody asked for: its spool file, if any, is removed."""
    if future.cancelled() or future.exception() is not None:
        return
    body = future.result()
    if isinstance(body, Spooled):
        body.discard()


__all__ = ["CONCURRENCY", "Downloads", "outcome"]
