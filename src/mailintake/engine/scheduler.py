"""Polls every enabled mailbox at its interval, sharing the mailboxes with every other worker
on the same database: jitter, back-off after failures, a limit on mailboxes polled at once,
and isolation — one failing mailbox never holds up the others. Mailboxes waiting for a
person (authorization states) are not polled until that is done.

Due times live in the store (store/schedule.py): a worker claims the due mailboxes, the
longest overdue first, as many as it has free slots, and moves their due time forward, so
that no other worker polls them. A slot that frees starts the next due poll at once; between
polls the loop sleeps until the earliest due time, a few seconds at most (new mailboxes,
changed settings). A worker records a heartbeat every few seconds (store/workers.py); the
polls of one whose heartbeat stopped are taken over once their leases expire.

``wake`` makes one mailbox due at once (push: the server announced a new message) and
wakes the loop; a mailbox being polled is polled again as soon as that poll ends."""

from __future__ import annotations

import functools
import random
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from mailintake.config.resolve import DEFAULT_POLL_INTERVAL
from mailintake.engine.poll import BUSY, PollResult
from mailintake.health.rules import mailbox_waits_for_a_person
from mailintake.observability import metrics
from mailintake.observability.logging import get_logger
from mailintake.store import leases, schedule, workers
from mailintake.store.repo import Schedule, Store

log = get_logger(__name__)
MAX_BACKOFF = 3600.0
# Polls are I/O-bound (waiting for mail servers, token servers, outputs): many run at once
# in one process's threads.
DEFAULT_CONCURRENCY = 16
MAX_SLEEP = 2.0  # seconds: how late a new mailbox or a changed setting is seen at most
BUSY_RETRY = timedelta(seconds=1)  # after the lease of another poll ends


class PollsMailboxes(Protocol):
    """What the scheduler needs of a poller (engine.poll.Poller)."""

    store: Store

    def poll(self, name: str, *, owner: str | None = None) -> PollResult: ...


def _interval(mailbox: Schedule) -> float:
    return float(mailbox.poll_interval or DEFAULT_POLL_INTERVAL)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Scheduler:
    poller: PollsMailboxes
    concurrency: int = DEFAULT_CONCURRENCY
    clock: Callable[[], datetime] = _utcnow
    jitter: float = 0.1
    host: str = field(default_factory=leases.host_name)  # in the worker's and polls' ids
    max_sleep: float = MAX_SLEEP
    heartbeat_every: float = workers.HEARTBEAT_EVERY
    id: str = field(init=False)  # this worker: host:pid:nonce
    _running: dict[str, Future[PollResult]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _stopped: threading.Event = field(default_factory=threading.Event)  # polls ended too
    _lagging: set[str] = field(default_factory=set)
    _beating: threading.Lock = field(default_factory=threading.Lock)  # one beat at a time

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency: at least 1 mailbox at a time")
        self.id = leases.new_owner(self.host)
        self.started_at = self.clock()

    @property
    def store(self) -> Store:
        return self.poller.store

    def running(self) -> int:
        with self._lock:
            return len(self._running)

    # --- one step of the loop -----------------------------------------------------------

    def step(self, pool: ThreadPoolExecutor) -> float:
        """Start due polls in the free slots; return how long to wait before the next step
        (unless a poll ends sooner: that wakes the loop)."""
        free = self.concurrency - self.running()
        if free <= 0:
            return self.max_sleep
        now = self.clock()
        with self.store.begin() as repo:
            claimed = schedule.claim(
                repo.conn,
                self.id,
                free,
                now,
                now - workers.DEAD_AFTER,
                _interval,
                mailbox_waits_for_a_person,  # not polled until a person acts
            )
        for entry in claimed:
            name = entry.schedule.name
            owner = leases.new_owner(self.host)
            with self._lock:
                future = pool.submit(self.poller.poll, name, owner=owner)
                self._running[name] = future
            future.add_done_callback(functools.partial(self._done, entry))
        metrics.POLLS_RUNNING.set(self.running())
        if len(claimed) == free:
            return 0.0 if self.running() < self.concurrency else self.max_sleep
        with self.store.read() as repo:
            earliest = schedule.next_due(repo.conn)
        if earliest is None:
            return self.max_sleep
        wait = (earliest - self.clock()).total_seconds()
        return min(self.max_sleep, max(wait, 0.0))

    def _done(self, entry: schedule.Claimed, future: Future[PollResult]) -> None:
        name, interval = entry.schedule.name, _interval(entry.schedule)
        deferred: datetime | None = None
        try:
            result = future.result()
            busy, failed = result.error == BUSY, result.error is not None
            deferred = result.deferred_until if result.deferred is not None else None
        except Exception as exc:  # isolation: one mailbox's bug never stops the others
            log.error("poll.crashed", mailbox=name, error=str(exc))
            busy, failed = False, True
        now = self.clock()
        try:
            with self.store.begin() as repo:
                if busy:  # not a failure: another poll holds it; try when its lease ends
                    ends = schedule.lease_ends(repo.conn, name)
                    failures = entry.failures
                    next_at = max(ends or now, now) + BUSY_RETRY
                elif deferred is not None:  # Graph asked every worker to wait: not a failure
                    failures = entry.failures
                    next_at = max(deferred, now) + BUSY_RETRY
                else:
                    failures = entry.failures + 1 if failed else 0
                    delay = interval * (2 ** min(failures, 6) if failed else 1)
                    delay = min(delay, max(MAX_BACKOFF, interval))
                    delay *= 1 + random.uniform(-self.jitter, self.jitter)  # noqa: S311
                    next_at = now + timedelta(seconds=delay)
                schedule.finish(repo.conn, name, self.id, next_at, failures)
        except Exception as exc:  # the database is away: the claim's due time stands
            log.error("scheduler.finish_failed", mailbox=name, error=str(exc))
        finally:
            with self._lock:
                self._running.pop(name, None)
            metrics.POLLS_RUNNING.set(self.running())
            self._wake.set()

    def wake(self, name: str) -> bool:
        """Make ``name`` due at once and start its poll as soon as a slot is free (at once
        if being polled now: once that poll ends). Whether it is an enabled mailbox."""
        with self.store.begin() as repo:
            found = schedule.wake(repo.conn, name, self.clock())
        self._wake.set()
        return found

    # --- heartbeat ----------------------------------------------------------------------

    def beat(self) -> None:
        """Record this worker's heartbeat, and the lag of every mailbox in the metrics. Beats
        from several threads (the loop's, push's first) take turns: the first one creates the
        worker's row, which two at once would both try to."""
        with self._beating:
            self._beat()

    def _beat(self) -> None:
        now = self.clock()
        with self.store.begin() as repo:
            workers.beat(
                repo.conn,
                self.id,
                self.host,
                self.started_at,
                now,
                self.concurrency,
                self.running(),
            )
            due = schedule.due_times(repo.conn)
        metrics.POLL_CONCURRENCY.set(self.concurrency)
        metrics.POLLS_RUNNING.set(self.running())
        for name, at in due.items():
            lag = 0.0 if at is None else max((now - at).total_seconds(), 0.0)
            metrics.MAILBOX_LAG.labels(name).set(lag)
        for gone in self._lagging - due.keys():
            metrics.MAILBOX_LAG.remove(gone)
        self._lagging = set(due)

    def _keep_beating(self) -> None:
        while not self._stopped.wait(self.heartbeat_every):  # beats while polls finish
            try:
                self.beat()
            except Exception as exc:  # the database is away: the next beat tries again
                log.warning("worker.heartbeat_failed", error=str(exc))

    # --- the loop -----------------------------------------------------------------------

    def run_forever(self) -> None:
        self._stop.clear()
        self._stopped.clear()
        self.beat()  # before the first claim: other workers see this one alive
        heart = threading.Thread(target=self._keep_beating, name="heartbeat", daemon=True)
        heart.start()
        log.info("worker.started", worker=self.id, concurrency=self.concurrency)
        try:
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="poll") as pool:
                self._loop(pool)
        finally:
            self._stop.set()
            self._stopped.set()
            heart.join()
            try:
                with self.store.begin() as repo:
                    workers.stopped(repo.conn, self.id)
            except Exception as exc:
                log.warning("worker.stop_unrecorded", error=str(exc))
            log.info("worker.stopped", worker=self.id)

    def _loop(self, pool: ThreadPoolExecutor) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                wait = self.step(pool)
            except Exception as exc:  # the database went away: try again soon
                log.error("scheduler.step_failed", error=str(exc))
                wait = self.max_sleep
            if wait > 0:
                self._wake.wait(wait)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, name="scheduler", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
