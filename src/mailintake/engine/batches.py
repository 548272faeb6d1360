"""An import pass's messages in batches: of BATCH messages or BATCH_BYTES at most, fetched
ahead of the one being delivered when the source allows overlapping requests; what is known
of their keys already (Statuses) and a batch on its way to the output (Writing)."""

from __future__ import annotations

import contextlib
import itertools
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from mailintake.engine.listing_digest import ListedBefore
from mailintake.sinks.base import Delivery, Receipt
from mailintake.sources.base import Fetched, MailSource, SourceItem
from mailintake.spool import Spooled
from mailintake.store import imports
from mailintake.store.repo import Store

BATCH = 100
AHEAD = 2  # batches fetched ahead when the source allows overlapping requests
BATCH_BYTES = 64 << 20


class Statuses:
    """The import status of message keys, for a source that asks which keys of a page are
    imported already (to skip work for them, and to leave them out of its listing) and for
    the engine's own look at the items listed right after: one query a page, not two.

    A listing of many keys at once (POP3's UIDL, a first IMAP listing) is screened against
    the mailbox's keys loaded once (one query, then set operations): what a poll costs per
    message kept on the server stays well under a microsecond. What was left out is counted
    here (``skipped``, ``waiting``); ``listed`` is every key asked about."""

    def __init__(
        self,
        store: Store,
        mailbox: str,
        now: datetime | None = None,
        *,
        acknowledged_listed: bool = False,
        whole_listing: bool = False,
    ) -> None:
        self.store, self.mailbox, self.now = store, mailbox, now
        # A source that acknowledges at commit lists acknowledged ones again (done again).
        self.acknowledged_listed = acknowledged_listed
        self._last: dict[str, str | None] = {}  # the keys the source asked about last
        self._bulk: imports.AllStatuses | None = None
        # A source that lists the whole mailbox every pass (POP3): what it listed before is
        # recognised by a digest (engine.listing_digest), not read from the store again.
        self._before = (
            ListedBefore(store, mailbox) if whole_listing and not acknowledged_listed else None
        )
        self.listed: set[str] = set()
        self.left_out: set[str] = set()  # keys said imported: the source may leave them out
        self.skipped = 0  # of those, recorded or acknowledged
        self.waiting = 0  # of those, failed and not due, parked, or skipped by a person

    def imported(self, keys: list[str]) -> set[str]:
        before = self._before if len(keys) >= BULK and self._bulk is None else None
        head = before.head(keys) if before is not None else 0
        if head:  # listed before and imported then: a set of them, nothing read
            rest = keys[head:]
            known, done = self._screen(rest) if rest else (set(), set())
            self.skipped += head
            known = _union(known, set(keys[:head]))
            self.left_out = _union(self.left_out, known)
            self.listed = _union(self.listed, set(keys))
        else:
            known, done = self._screen(keys)
        if before is not None:
            before.remember(keys, done, head)
        return known

    def _screen(self, keys: list[str]) -> tuple[set[str], set[str]]:
        """The keys known (imported, or waiting) and, of those, the ones imported."""
        asked = set(keys)
        if self._bulk is None and len(keys) >= BULK:
            with self.store.read() as repo:
                self._bulk = imports.all_statuses(repo.conn, self.mailbox, self.now)
        if self._bulk is not None:  # set operations only: no loop over the keys
            bulk = self._bulk
            done = asked & bulk.recorded
            if not self.acknowledged_listed:
                done = _union(asked & bulk.acknowledged, done)
            waiting = {k for k, v in bulk.others.items() if v != imports.FAILED and k in asked}
            known = _union(set(done), waiting)
            self.skipped += len(done)
        else:
            found = self._query(keys)
            self._last = {key: found.get(key) for key in keys}
            # A failed message due for a try is not known: the source fetches it again.
            known = {key for key, status in found.items() if status != imports.FAILED}
            if self.acknowledged_listed:
                known = {k for k in known if found[k] != imports.ACKNOWLEDGED}
            waiting = {k for k in known if found[k] not in _DONE}
            done = known - waiting
            self.skipped += len(known) - len(waiting)
        self.waiting += len(waiting)
        self.left_out = _union(self.left_out, known)  # the source reads known at once
        self.listed = _union(self.listed, asked)
        return known, done

    def of(self, keys: list[str]) -> dict[str, str]:
        if self._bulk is not None:
            return {key: status for key in keys if (status := self._bulk.status(key))}
        last = self._last
        if all(key in last for key in keys):  # nothing of them is imported in between
            return {key: status for key in keys if (status := last[key]) is not None}
        return self._query(keys)

    def _query(self, keys: list[str]) -> dict[str, str]:
        with self.store.read() as repo:
            return imports.statuses(repo.conn, self.mailbox, keys, self.now)


BULK = 2000  # a listing of this many keys at once is screened against all the mailbox's
_DONE = (imports.RECORDED, imports.ACKNOWLEDGED)


def _union(one: set[str], other: set[str]) -> set[str]:
    """Both, added to the larger one (which may be changed): no copy of a large set."""
    if len(one) < len(other):
        one, other = other, one
    one |= other
    return one


@dataclass
class Writing:
    """A batch handed to the output, and what is left to do with it."""

    start: int
    batch: list[SourceItem]
    deliveries: list[Delivery]
    oversized: list[Delivery]
    future: Future[list[Receipt | Exception]] | None
    unavailable: list[str] = field(default_factory=list)  # keys the server could not give

    def wait(self) -> None:
        if self.future is not None:
            with contextlib.suppress(Exception):  # the error that stopped the pass is reported
                self.future.result()

    def discard(self) -> None:
        """Remove the spooled files of its large messages."""
        for delivery in (*self.deliveries, *self.oversized):
            if isinstance(delivery.raw, Spooled):
                delivery.raw.discard()


def batches(
    items: Iterator[SourceItem], most_bytes: int, most_messages: int = BATCH
) -> Iterator[tuple[int, list[SourceItem]]]:
    """Batches of ``most_messages`` (BATCH), fewer when their listed sizes add up to
    ``most_bytes``: a batch is held in memory while it is fetched and written (a few at a
    time), so a mailbox of large scans must not make batches of gigabytes."""
    start = 0
    batch: list[SourceItem] = []
    size = 0
    for item in items:
        if batch and size + (item.size or 0) > most_bytes:
            yield start, batch
            start += len(batch)
            batch, size = [], 0
        batch.append(item)
        size += item.size or 0
        if len(batch) == most_messages:  # at once: the next item may wait for the next page
            yield start, batch
            start += len(batch)
            batch, size = [], 0
    if batch:
        yield start, batch


def fetched_batches(
    source: MailSource, batches: Iterator[tuple[int, list[SourceItem]]]
) -> Iterator[tuple[int, list[SourceItem], list[tuple[SourceItem, Fetched]]]]:
    """Batches with their messages. A source whose requests may overlap (Graph: HTTP) has the
    next batches fetched while this one is delivered; the others are used by one thread at a
    time."""
    if not source.prefetch_safe:
        for start, batch in batches:
            yield start, batch, list(source.fetch(batch))
        return
    # The next batches queue their requests behind this one's, so the source's request
    # slots never sit idle; listing what follows goes on here meanwhile.
    with ThreadPoolExecutor(max_workers=AHEAD) as ahead:
        queued: deque[tuple[int, list[SourceItem], Future[list[tuple[SourceItem, Fetched]]]]]
        queued = deque()
        for start, batch in itertools.islice(batches, AHEAD):
            queued.append((start, batch, ahead.submit(_fetch_all, source, batch)))
        while queued:
            start, batch, fetched = queued.popleft()
            following = next(batches, None)
            if following is not None:
                queued.append((*following, ahead.submit(_fetch_all, source, following[1])))
            yield start, batch, fetched.result()


def _fetch_all(source: MailSource, batch: list[SourceItem]) -> list[tuple[SourceItem, Fetched]]:
    return list(source.fetch(batch))
