"""One import pass over one mailbox, in the order that loses and doubles nothing:
deliver to the output → record in the store → acknowledge on the server → mark acknowledged.

After a crash: items recorded but not acknowledged are acknowledged first; recorded items are
skipped; a delivery repeated after a crash lands on the same key (the output keeps one copy).
Where the server makes an acknowledgement final only later (POP3 deletes at QUIT), a message
is marked acknowledged only after that, and one marked so that the server still lists is
acknowledged again.

A pass holds the mailbox's lease, its own (one owner id per poll: a second poll of the same
mailbox is refused, in this process or another), renewed on a timer while it works; it stops
before the next message when the lease is lost or its output keeps failing (engine.guard).

A message the server cannot give (MessageUnavailable) fails alone: it is recorded with its
reason and tried again on its own back-off, parked after too many tries (engine.retries);
the pass goes on with the others.

How the messages travel through these steps, batches fetched ahead and overlapping
deliveries, or one at a time for reference, is engine.pipeline's.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mailintake import health
from mailintake.config import resolve
from mailintake.engine.batches import (
    BATCH,
    BATCH_BYTES,
    Statuses,
    Writing,
)
from mailintake.engine.checkpoint import Position
from mailintake.engine.factories import build_source
from mailintake.engine.guard import PassGuard, PassLimits
from mailintake.engine.outcome import BUSY, PollResult
from mailintake.engine.pipeline import Importer, Pass, pipelined
from mailintake.engine.retries import Retries, charge
from mailintake.engine.runtime import ImportRuntime
from mailintake.errors import (
    AuthError,
    LeaseLost,
    MailintakeError,
    MessageUnavailable,
    NotFound,
    Throttled,
)
from mailintake.oauth.tokens import TokenManager
from mailintake.observability import metrics
from mailintake.observability.logging import get_logger
from mailintake.sinks.base import Delivery, MessageSink, PacedSink, Receipt
from mailintake.sources.base import Fetched, MailSource, SourceItem
from mailintake.sources.pop3 import header_date
from mailintake.spool import Body
from mailintake.store import health as health_store
from mailintake.store import imports, leases, throttle
from mailintake.store.imports import ImportEntry
from mailintake.store.repo import Repo, Store

__all__ = ["BATCH", "BATCH_BYTES", "BUSY", "PollResult", "Poller"]

log = get_logger(__name__)
Progress = Callable[[str, int, int], None]  # mailbox, done, total


def _pass_runtime() -> ImportRuntime:
    """A pass's own runtime: the interpreter is left alone."""
    return ImportRuntime(switch_interval=None)


@dataclass
class Poller:
    """Polls mailboxes with the store, tokens, and how sources and sinks are built."""

    store: Store
    home: Path
    tokens: TokenManager | None = None
    source_factory: Callable[..., MailSource] = build_source
    # None: the runtime's (engine.factories.build_sink, with its writer processes).
    sink_factory: Callable[..., MessageSink] | None = None
    max_size: int | None = None  # overrides every mailbox's max_message_size (tests)
    batch_bytes: int = BATCH_BYTES  # a batch ends at this many bytes
    batch_messages: int = BATCH  # or at this many messages (fewer: tests of the batches)
    progress: Progress | None = None
    limits: PassLimits = field(default_factory=PassLimits)  # lease, renewal, failures
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # back-off of failed messages
    delays: Retries = field(default_factory=Retries)  # its max_tries: the mailbox's setting
    # What the importing process holds (its owner, a command, starts and closes it); without
    # one, each pass makes its own, closed when the pass ends.
    runtime: ImportRuntime | None = None
    # How the messages travel through the steps below (engine.pipeline): batches fetched
    # ahead and overlapping deliveries; ``sequential`` is the one-at-a-time reference.
    importer: Importer = pipelined
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
            if not leases.claim(repo.conn, name, owner, self.limits.lease):
                result.error = BUSY
                log.info("poll.busy", mailbox=name, held_by=leases.holder(repo.conn, name))
                return result
        try:
            with contextlib.ExitStack() as held:
                runtime = self.runtime or held.enter_context(_pass_runtime())
                guard = held.enter_context(PassGuard(self.store, name, owner, self.limits))
                self._poll(name, owner, guard, result, runtime)
        except Throttled as exc:
            result.deferred, result.deferred_until = str(exc), exc.until
        except AuthError as exc:
            result.error, result.state = str(exc), exc.state
        except MailintakeError as exc:
            result.error = str(exc)
        except Exception as exc:  # isolation: a bug with one mailbox never stops the others
            log.exception("poll.crashed", mailbox=name)
            result.error = f"unexpected error: {exc.__class__.__name__}: {exc}"
        finally:
            with self.store.begin() as repo:
                if result.deferred is not None:
                    throttle.note_deferred(repo.conn, name, result.deferred)
                else:
                    repo.set_poll_result(name, result.error, "; ".join(result.warnings) or None)
                    health_store.record_poll(repo.conn, name, result.error, self.clock())
                    health.record(repo.conn, self.clock(), name)
                leases.release(repo.conn, name, owner)
        metrics.POLLS.labels(name, "failed" if result.error else "ok").inc()
        metrics.POLL_SECONDS.labels(name).observe(time.monotonic() - started)
        for outcome in ("imported", "skipped", "failed"):
            metrics.MESSAGES.labels(name, outcome).inc(getattr(result, outcome))
        if result.deferred:
            log.info("poll.deferred", mailbox=name, reason=result.deferred)
        elif result.error:
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

    def _poll(
        self, name: str, owner: str, guard: PassGuard, result: PollResult, runtime: ImportRuntime
    ) -> None:
        with self.store.read() as repo:
            record = repo.get_mailbox(name, reveal=True)
            output = (
                None
                if record.output == "default" and not _has_output(repo, "default")
                else repo.get_output(record.output, reveal=True)
            )
        spec = record.spec
        token, renew = self._tokens.providers(name)
        spool = self.home / "spool" / name  # large downloads; the lease makes it ours
        shutil.rmtree(spool, ignore_errors=True)  # what a killed pass left
        source = self.source_factory(
            spec, token, renew, spool=spool, throttle=throttle.GraphThrottle(self.store)
        )
        sink = (self.sink_factory or runtime.build_sink)(output, self.home)
        paced = isinstance(sink, PacedSink)
        if isinstance(sink, PacedSink):
            sink.pace(guard)
        run = Pass(
            name,
            owner,
            spec.protocol.value if spec.protocol else "",
            self.max_size or resolve.max_message_size(spec),
            result,
            guard,
            source,
            sink,
            paced,
            Retries(self.delays.delays, resolve.max_tries(spec)),
            self.clock(),
        )
        try:
            source.open()
            self._acknowledge_pending(run)
            run.position = Position.begin(self.store, name, source, run.now)
            try:
                self.importer(self, run)
            except MailintakeError:  # a stop in order: what was acknowledged is made final
                with contextlib.suppress(MailintakeError):
                    self._commit(run)
                raise
            self._commit(run)
            if run.position is not None:
                run.position.finished(result)
            # The listing was whole, and said which failures are still on the server.
            if not getattr(source, "warnings", None) and getattr(source, "complete", True):
                with self.store.begin() as repo:
                    imports.forget_gone(repo.conn, name, run.listed)
        finally:
            run.result.warnings.extend(getattr(source, "warnings", ()))
            source.close()
            sink.close()

    def _acknowledge_pending(self, run: Pass) -> None:
        with self.store.read() as repo:
            pending = imports.pending_acknowledgements(repo.conn, run.name)
        if pending:
            run.source.acknowledge([p.source for p in pending])
            self._acknowledged(run, [p.key for p in pending])

    def _acknowledged(self, run: Pass, keys: list[str]) -> None:
        """Mark them acknowledged now, or after the source's commit when that makes the
        action final."""
        if run.source.acknowledged_at_commit:
            run.unconfirmed.extend(keys)
            return
        with self.store.begin() as repo:
            imports.acknowledged(repo.conn, run.name, keys)

    def _commit(self, run: Pass) -> None:
        if run.stale:  # marked acknowledged before, but the server still has them
            log.warning("message.acknowledged_again", mailbox=run.name, count=len(run.stale))
            run.source.acknowledge([item.source for item in run.stale])
            run.stale.clear()
        run.source.commit()
        if run.unconfirmed:
            with self.store.begin() as repo:
                imports.acknowledged(repo.conn, run.name, run.unconfirmed)
            run.unconfirmed.clear()

    def wanted(self, run: Pass, statuses: Statuses, counted: list[int]) -> Iterator[SourceItem]:
        """What to import, page by page as the source lists them: a source that lists in
        pages (Graph) has the first ones downloading while the rest are listed. Known keys
        are counted (skipped, waiting), those over the size limit fail at once; ``counted[0]``
        is how many are to import so far (the progress bar's total)."""
        result, source = run.result, run.source
        # What the source left out as imported is counted by ``statuses``.
        for page in source.list_pages(statuses.imported):
            known = statuses.of([i.key for i in page])
            run.listed.update(item.key for item in page)
            counted_there = statuses.left_out
            for item in page:
                status = known.get(item.key)
                if status in (imports.RECORDED, imports.ACKNOWLEDGED):
                    result.skipped += item.key not in counted_there
                    if status == imports.ACKNOWLEDGED and source.acknowledged_at_commit:
                        run.stale.append(item)
                elif status in (imports.WAITING, imports.PARKED, imports.SKIPPED):
                    result.waiting += item.key not in counted_there
                elif item.size is not None and item.size > run.limit:
                    self._fail(run.name, item, _too_large(item.size, run.limit))
                    result.failed += 1
                else:
                    counted[0] += 1
                    yield item
        run.listed = statuses.listed | run.listed if run.listed else statuses.listed
        result.skipped += statuses.skipped
        result.waiting += statuses.waiting

    def screen(
        self, run: Pass, fetched: list[tuple[SourceItem, Fetched]]
    ) -> tuple[list[Delivery], list[Delivery], list[str]]:
        """The batch's deliveries, those over the size limit (recorded as failed), and the
        keys of the messages the server could not give (charged a try each)."""
        unavailable: list[str] = []
        bodies: list[tuple[SourceItem, Body]] = []
        for item, raw in fetched:
            if isinstance(raw, MessageUnavailable):
                self._charge(run, item, str(raw))
                unavailable.append(item.key)
            else:
                bodies.append((item, raw))
        deliveries = [
            Delivery(
                run.name,
                run.protocol,
                item.key,
                item.source,
                raw,
                item.received or _pop3_date(run.protocol, raw),
            )
            for item, raw in bodies
        ]
        oversized = [d for d in deliveries if d.size > run.limit]
        for delivery in oversized:  # sizes the listing did not give (Graph)
            self._fail(
                run.name,
                SourceItem(delivery.key, delivery.source, delivery.size),
                _too_large(delivery.size, run.limit),
            )
            run.result.failed += 1
        return [d for d in deliveries if d.size <= run.limit], oversized, unavailable

    def finish(self, run: Pass, writing: Writing, total: int) -> None:
        try:
            results = writing.future.result() if writing.future is not None else []
            self._deliver(run, writing, results)
            if run.position is not None:  # recorded and acknowledged: the checkpoint moves
                run.position.handled(writing.batch)
        finally:
            writing.discard()
        if self.progress is not None:
            self.progress(run.name, writing.start + len(writing.batch), total)

    def _deliver(self, run: Pass, writing: Writing, results: list[Receipt | Exception]) -> None:
        """One delivered batch: record → acknowledge → mark acknowledged. Messages the guard
        kept from being sent stay on the server; the pass then stops with its reason."""
        result = run.result
        done: list[tuple[Delivery, Receipt]] = []
        halt: Exception | None = None
        for delivery, outcome in zip(writing.deliveries, results, strict=True):
            if not run.paced:
                run.guard.after(outcome)
            if isinstance(outcome, Receipt):
                done.append((delivery, outcome))
            elif run.guard.halted(outcome):
                halt = outcome  # not sent: it stays for the next pass
            else:
                self._fail(
                    run.name,
                    SourceItem(delivery.key, delivery.source, delivery.size),
                    str(outcome),
                )
                result.failed += 1
        sent = {d.key for d in writing.deliveries} | {d.key for d in writing.oversized}
        sent.update(writing.unavailable)
        result.skipped += sum(1 for i in writing.batch if i.key not in sent)  # gone meanwhile
        if done:
            with self.store.begin() as repo:
                imports.record(repo.conn, run.name, [_entry(d, r) for d, r in done])
                kept = leases.renew(repo.conn, run.name, run.owner, self.limits.lease)
            run.guard.renewed(kept)
            if not kept:
                raise LeaseLost(f"{run.name}: another poll took over this mailbox")
            run.source.acknowledge([d.source for d, _ in done])
            self._acknowledged(run, [d.key for d, _ in done])
            result.imported += len(done)
        if halt is not None:
            raise halt

    def _charge(self, run: Pass, item: SourceItem, reason: str) -> None:
        """A message the server could not give: one more try, the next later, or parked."""
        with self.store.begin() as repo:
            charge(repo.conn, run.name, item, reason, run.retries, run.now)
        run.result.failed += 1

    def _fail(self, name: str, item: SourceItem, reason: str) -> None:
        with self.store.begin() as repo:
            imports.failed(repo.conn, name, item.key, item.source, reason, size=item.size)
        log.warning("message.failed", mailbox=name, key=item.key, reason=reason)


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
        message_id=(receipt.message_id if receipt.sha256 else delivery.parsed.internet_message_id),
    )


def _too_large(size: int, limit: int) -> str:
    return (
        f"message of {size} bytes is over the limit of {limit} bytes (max_message_size); "
        "it stays on the server"
    )
