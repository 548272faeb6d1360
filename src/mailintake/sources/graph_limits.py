"""Graph's limits for one application and mailbox (oauth-facts §3.6): four requests at once,
and the wait a 429's ``Retry-After`` asks for, honoured by every worker.

The four concurrent requests are held here, in the process: a mailbox is polled by one
worker at a time (its lease), and the pass that holds the lease makes every request of the
mailbox through these slots, so no other process can add a fifth. What crosses processes is
the wait: a 429 tells one worker, and the time it gives is stored (``Book``, kept in the
database by store.throttle) so that any worker about to call Graph for the same application
and mailbox waits for it, or skips its poll when the wait is long."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

from mailintake.errors import Throttled
from mailintake.observability.logging import get_logger
from mailintake.sources.graph_downloads import CONCURRENCY

log = get_logger(__name__)
# A stored wait up to this long is waited out before the poll; a longer one skips the poll.
SHORT_WAIT = 10.0


class Book(Protocol):
    """Where the waits Graph asked for are kept for every worker."""

    def not_before(self, client_id: str, mailbox: str) -> datetime | None: ...

    def hold_off(self, client_id: str, mailbox: str, until: datetime) -> None: ...


class Limits:
    """The request slots of one mailbox in this pass, and the shared wait of Graph's 429."""

    def __init__(self, name: str, client_id: str, mailbox: str, book: Book | None) -> None:
        self.name = name
        self.client_id = client_id
        self.mailbox = mailbox
        self.book = book
        self._slots = threading.BoundedSemaphore(CONCURRENCY)
        self._lock = threading.Lock()
        self._reduced = False

    def acquire(self) -> None:
        """A request slot, held until the request's answer is complete (``release``)."""
        self._slots.acquire()

    def release(self) -> None:
        self._slots.release()

    def before_session(self, sleep: float = SHORT_WAIT) -> None:
        """Before the first request: wait out a short stored wait, or skip the poll (Throttled)
        while a long one lasts."""
        if self.book is None:
            return
        until = self.book.not_before(self.client_id, self.mailbox)
        now = datetime.now(UTC)
        if until is None or until <= now:
            return
        wait = (until - now).total_seconds()
        if wait <= sleep:
            log.info("graph.throttle_wait", mailbox=self.name, seconds=round(wait, 1))
            time.sleep(wait)
            return
        raise Throttled(
            f"{self.name}: throttled by Microsoft Graph until {until:%H:%M:%S} UTC (a 429 "
            f"Retry-After for this application and {self.mailbox}); this poll is skipped, "
            "not failed",
            until,
        )

    def throttled(self, wait: float) -> None:
        """Graph answered 429 asking for ``wait`` seconds: every worker is told, and this
        session keeps one request fewer in flight (the server counts a request until it has
        finished sending it, so four back to back can briefly look like five)."""
        if self.book is not None:
            until = datetime.now(UTC) + timedelta(seconds=wait)
            self.book.hold_off(self.client_id, self.mailbox, until)
        with self._lock:
            if not self._reduced:
                self._reduced = self._slots.acquire(blocking=False)
