"""One import pass over one mailbox, in the order that loses and doubles nothing:
deliver to the output → record in the store → acknowledge on the server → mark acknowledged.

After a crash: items recorded but not acknowledged are acknowledged first; recorded items are
skipped; a delivery repeated after a crash lands on the same key (the output keeps one copy).

A pass holds the mailbox's lease, its own: one owner id per poll, so a second poll of the same
mailbox is refused, in this process or another.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from mailintake.config import resolve
from mailintake.engine.factories import build_sink, build_source
from mailintake.errors import AuthError, LeaseLost, MailintakeError, NotFound
from mailintake.oauth.tokens import TokenManager
from mailintake.observability import metrics
from mailintake.observability.logging import get_logger
from mailintake.sinks.base import Delivery, MessageSink, Receipt
from mailintake.sources.base import MailSource, SourceItem, TokenProvider
from mailintake.sources.pop3 import header_date
from mailintake.spool import Body, Spooled
from mailintake.store import imports, leases
from mailintake.store.imports import ImportEntry
from mailintake.store.repo import Repo, Store

log = get_logger(__name__)
BUSY = "another poll of this mailbox is running"
# A pass renews its lease after every batch; one that dies leaves it to expire, unless it ran
# on this host, where a lease of a process that no longer exists is taken over at once.
LEASE = timedelta(minutes=5)
BATCH = 100
AHEAD = 2  # batches fetched ahead when the source allows overlapping requests
BATCH_BYTES = 64 << 20
# How long a thread may keep the interpreter while another waits for it. An import's threads
# (fetching, writing, recording) each run short stretches of Python between waits on the
# network, the disk or the store; with the interpreter's default of 5 ms, a thread whose
# wait is over often waits that long again for a busy one to hand over (measured: see
# docs/importing.md, "Speed").
SWITCH_INTERVAL = 0.0002


def use_short_switch_interval() -> None:
    """Set SWITCH_INTERVAL for the whole process (a shorter one set elsewhere stays): called
    by the commands that own a process which imports (``poll``, ``worker``, ``serve``), not
    by constructing a Poller."""
    if sys.getswitchinterval() > SWITCH_INTERVAL:
        sys.setswitchinterval(SWITCH_INTERVAL)


@dataclass
class PollResult:
    mailbox: str
    imported: int = 0
    skipped: int = 0
    failed: int = 0
    error: str | None = None
    state: str | None = None  # the authorization state when a person must act

    def as_dict(self) -> dict[str, object]:
        return {
            "mailbox": self.mailbox,
            "imported": self.imported,
            "skipped": self.skipped,
            "failed": self.failed,
            "error": self.error,
            "authorization_state": self.state,
        }


Progress = Callable[[str, int, int], None]  # mailbox, done, total


@dataclass
class Poller:
    """Polls mailboxes with the store, tokens, and how sources and sinks are built."""

    store: Store
    home: Path
    tokens: TokenManager | None = None
    source_factory: Callable[..., MailSource] = build_source
    sink_factory: Callable[..., MessageSink] = build_sink
    max_size: int | None = None  # overrides every mailbox's max_message_size (tests)
    batch_bytes: int = BATCH_BYTES  # a batch ends at BATCH messages or at this many bytes
    progress: Progress | None = None
    _tokens: TokenManager = field(init=False)

    def __post_init__(self) -> None:
        self._tokens = self.tokens or TokenManager(self.store)

    def poll(self, name: str, *, owner: str | None = None) -> PollResult:
        """One pass over the mailbox ``name`` as ``owner`` (a lease owner id of its own:
        host:pid:nonce, made here when not given)."""
        owner = owner or leases.new_owner()
        result = PollResult(name)
        started = time.monotonic()
        with self.store.begin() as repo:
            if not leases.claim(repo.conn, name, owner, LEASE):
                result.error = BUSY
                log.info("poll.busy", mailbox=name, held_by=leases.holder(repo.conn, name))
                return result
        try:
            self._poll(name, owner, result)
        except AuthError as exc:
            result.error, result.state = str(exc), exc.state
        except MailintakeError as exc:
            result.error = str(exc)
        except Exception as exc:  # isolation: a bug with one mailbox never stops the others
            log.exception("poll.crashed", mailbox=name)
            result.error = f"unexpected error: {exc.__class__.__name__}: {exc}"
        finally:
            with self.store.begin() as repo:
                repo.set_poll_result(name, result.error)
                leases.release(repo.conn, name, owner)
        metrics.POLLS.labels(name, "failed" if result.error else "ok").inc()
        metrics.POLL_SECONDS.labels(name).observe(time.monotonic() - started)
        for outcome in ("imported", "skipped", "failed"):
            metrics.MESSAGES.labels(name, outcome).inc(getattr(result, outcome))
        if result.error:
            log.warning("poll.failed", mailbox=name, error=result.error)
        else:
            log.info(
                "poll.done",
                mailbox=name,
                imported=result.imported,
                skipped=result.skipped,
                failed=result.failed,
            )
        return result

    def _poll(self, name: str, owner: str, result: PollResult) -> None:
        with self.store.read() as repo:
            record = repo.get_mailbox(name, reveal=True)
            output = (
                None
                if record.output == "default" and not _has_output(repo, "default")
                else repo.get_output(record.output, reveal=True)
            )
        spec = record.spec
        token: TokenProvider = lambda: self._tokens.access_token(name)  # noqa: E731
        renew: TokenProvider = lambda: self._tokens.renew(name, force=True).token  # noqa: E731
        spool = self.home / "spool" / name  # large downloads; the lease makes it ours
        shutil.rmtree(spool, ignore_errors=True)  # what a killed pass left
        source = self.source_factory(spec, token, renew, spool=spool)
        sink = self.sink_factory(output, self.home)
        try:
            source.open()
            self._acknowledge_pending(name, source)
            limit = self.max_size or resolve.max_message_size(spec)
            protocol = spec.protocol.value if spec.protocol else ""
            self._import(name, owner, protocol, source, sink, result, limit)
        finally:
            source.close()
            sink.close()

    def _acknowledge_pending(self, name: str, source: MailSource) -> None:
        with self.store.read() as repo:
            pending = imports.pending_acknowledgements(repo.conn, name)
        if pending:
            source.acknowledge([p.source for p in pending])
            with self.store.begin() as repo:
                imports.acknowledged(repo.conn, name, [p.key for p in pending])

    def _import(
        self,
        name: str,
        owner: str,
        protocol: str,
        source: MailSource,
        sink: MessageSink,
        result: PollResult,
        limit: int,
    ) -> None:
        counted = [0]  # messages to import found so far: the progress bar's total
        statuses = _Statuses(self.store, name)

        def todo() -> Iterator[SourceItem]:
            """What to import, page by page as the source lists them: a source that lists
            in pages (Graph) has the first ones downloading while the rest are listed."""
            for page in source.list_pages(statuses.imported):
                known = statuses.of([i.key for i in page])
                for item in page:
                    status = known.get(item.key)
                    if status in (imports.RECORDED, imports.ACKNOWLEDGED):
                        result.skipped += 1
                    elif item.size is not None and item.size > limit:
                        self._fail(
                            name,
                            item,
                            f"message of {item.size} bytes is over the limit of "
                            f"{limit} bytes (max_message_size); it stays on the server",
                        )
                        result.failed += 1
                    else:
                        counted[0] += 1
                        yield item

        # A sink that allows it (the folder output) writes the next batch while this one is
        # made durable, recorded and acknowledged: its writers never wait for the store or
        # the server. Each batch still goes deliver → record → acknowledge, in order.
        overlap = max(1, sink.overlapping_batches)
        writing: deque[_Writing] = deque()
        with ThreadPoolExecutor(max_workers=overlap, thread_name_prefix="deliver") as writers:
            try:
                batches = _batches(todo(), self.batch_bytes)
                for start, batch, fetched in _fetched_batches(source, batches):
                    deliveries, oversized = self._screen(name, protocol, fetched, limit, result)
                    future = writers.submit(sink.deliver, deliveries) if deliveries else None
                    writing.append(_Writing(start, batch, deliveries, oversized, future))
                    while len(writing) >= overlap:
                        self._finish(name, owner, source, writing.popleft(), result, counted[0])
                while writing:
                    self._finish(name, owner, source, writing.popleft(), result, counted[0])
            finally:
                for abandoned in writing:  # an error stopped the pass: their files still go
                    abandoned.wait()
                    abandoned.discard()

    def _screen(
        self,
        name: str,
        protocol: str,
        fetched: list[tuple[SourceItem, Body]],
        limit: int,
        result: PollResult,
    ) -> tuple[list[Delivery], list[Delivery]]:
        """The batch's deliveries, and those over the size limit (recorded as failed)."""
        deliveries = [
            Delivery(
                name,
                protocol,
                item.key,
                item.source,
                raw,
                item.received or _pop3_date(protocol, raw),
            )
            for item, raw in fetched
        ]
        oversized = [d for d in deliveries if d.size > limit]
        for delivery in oversized:  # sizes the listing did not give (Graph)
            self._fail(
                name,
                SourceItem(delivery.key, delivery.source, delivery.size),
                f"message of {delivery.size} bytes is over the limit of {limit} "
                "bytes (max_message_size); it stays on the server",
            )
            result.failed += 1
        return [d for d in deliveries if d.size <= limit], oversized

    def _finish(
        self,
        name: str,
        owner: str,
        source: MailSource,
        writing: _Writing,
        result: PollResult,
        total: int,
    ) -> None:
        try:
            results = writing.future.result() if writing.future is not None else []
            self._deliver(name, owner, source, writing, results, result)
        finally:
            writing.discard()
        if self.progress is not None:
            self.progress(name, writing.start + len(writing.batch), total)

    def _deliver(
        self,
        name: str,
        owner: str,
        source: MailSource,
        writing: _Writing,
        results: list[Receipt | Exception],
        result: PollResult,
    ) -> None:
        """One delivered batch: record → acknowledge → mark acknowledged."""
        batch, deliveries, oversized = writing.batch, writing.deliveries, writing.oversized
        done: list[tuple[Delivery, Receipt]] = []
        for delivery, outcome in zip(deliveries, results, strict=True):
            if isinstance(outcome, Receipt):
                done.append((delivery, outcome))
            else:
                self._fail(
                    name,
                    SourceItem(delivery.key, delivery.source, delivery.size),
                    str(outcome),
                )
                result.failed += 1
        missing = {i.key for i in batch} - {d.key for d in deliveries} - {d.key for d in oversized}
        for item in batch:
            if item.key in missing:  # gone from the server meanwhile
                result.skipped += 1
        if not done:
            return
        with self.store.begin() as repo:
            imports.record(repo.conn, name, [_entry(d, r) for d, r in done])
            kept = leases.renew(repo.conn, name, owner, LEASE)  # renewed per batch
        if not kept:
            raise LeaseLost(f"{name}: another poll took over this mailbox")
        source.acknowledge([d.source for d, _ in done])
        with self.store.begin() as repo:
            imports.acknowledged(repo.conn, name, [d.key for d, _ in done])
        result.imported += len(done)

    def _fail(self, name: str, item: SourceItem, reason: str) -> None:
        with self.store.begin() as repo:
            imports.failed(repo.conn, name, item.key, item.source, reason, size=item.size)
        log.warning("message.failed", mailbox=name, key=item.key, reason=reason)


class _Statuses:
    """The import status of message keys, for a source that asks which keys of a page are
    imported already (to skip work for them) and for the engine's own look at that page
    right after: one query a page, not two."""

    def __init__(self, store: Store, mailbox: str) -> None:
        self.store, self.mailbox = store, mailbox
        self._last: dict[str, str | None] = {}  # the keys the source asked about last

    def imported(self, keys: list[str]) -> set[str]:
        found = self._query(keys)
        self._last = {key: found.get(key) for key in keys}
        return {key for key, status in found.items() if status != imports.FAILED}

    def of(self, keys: list[str]) -> dict[str, str]:
        last = self._last
        if all(key in last for key in keys):  # nothing of them is imported in between
            return {key: status for key in keys if (status := last[key]) is not None}
        return self._query(keys)

    def _query(self, keys: list[str]) -> dict[str, str]:
        with self.store.read() as repo:
            return imports.statuses(repo.conn, self.mailbox, keys)


@dataclass
class _Writing:
    """A batch handed to the output, and what is left to do with it."""

    start: int
    batch: list[SourceItem]
    deliveries: list[Delivery]
    oversized: list[Delivery]
    future: Future[list[Receipt | Exception]] | None

    def wait(self) -> None:
        if self.future is not None:
            with contextlib.suppress(Exception):  # the error that stopped the pass is reported
                self.future.result()

    def discard(self) -> None:
        """Remove the spooled files of its large messages."""
        for delivery in (*self.deliveries, *self.oversized):
            if isinstance(delivery.raw, Spooled):
                delivery.raw.discard()


def _batches(
    items: Iterator[SourceItem], most_bytes: int
) -> Iterator[tuple[int, list[SourceItem]]]:
    """Batches of BATCH messages, fewer when their listed sizes add up to ``most_bytes``:
    a batch is held in memory while it is fetched and written (a few at a time), so a
    mailbox of large scans must not make batches of gigabytes."""
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
        if len(batch) == BATCH:  # at once: the next item may wait for the next page
            yield start, batch
            start += len(batch)
            batch, size = [], 0
    if batch:
        yield start, batch


def _fetched_batches(
    source: MailSource, batches: Iterator[tuple[int, list[SourceItem]]]
) -> Iterator[tuple[int, list[SourceItem], list[tuple[SourceItem, Body]]]]:
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
        queued: deque[tuple[int, list[SourceItem], Future[list[tuple[SourceItem, Body]]]]]
        queued = deque()
        for start, batch in itertools.islice(batches, AHEAD):
            queued.append((start, batch, ahead.submit(_fetch_all, source, batch)))
        while queued:
            start, batch, fetched = queued.popleft()
            following = next(batches, None)
            if following is not None:
                queued.append((*following, ahead.submit(_fetch_all, source, following[1])))
            yield start, batch, fetched.result()


def _fetch_all(source: MailSource, batch: list[SourceItem]) -> list[tuple[SourceItem, Body]]:
    return list(source.fetch(batch))


def _has_output(repo: Repo, name: str) -> bool:
    try:
        repo.get_output(name)
    except NotFound:
        return False
    return True


def _pop3_date(protocol: str, raw: Body) -> datetime | None:
    return header_date(raw) if protocol == "pop3" and isinstance(raw, bytes) else None


def _entry(delivery: Delivery, receipt: Receipt) -> ImportEntry:
    return ImportEntry(
        key=delivery.key,
        source=delivery.source,
        location=receipt.location,
        subject=receipt.subject if receipt.subject is not None else delivery.parsed.subject,
        sender=receipt.sender if receipt.sender is not None else delivery.parsed.sender,
        size=delivery.size,
        sha256=receipt.sha256 or delivery.sha256,
    )
