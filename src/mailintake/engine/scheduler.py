"""Polls every enabled mailbox at its interval: jitter, back-off after failures, a limit on
mailboxes polled at once, and isolation — one failing mailbox never holds up the others.
Mailboxes waiting for a person (authorization states) are not polled until that is done."""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from mailintake.config.matrix import USER_GRANTS
from mailintake.config.resolve import DEFAULT_POLL_INTERVAL
from mailintake.engine.poll import Poller, PollResult
from mailintake.enums import AuthState
from mailintake.observability.logging import get_logger
from mailintake.store.repo import Schedule

log = get_logger(__name__)
WAITING_FOR_A_PERSON = frozenset(
    {
        AuthState.NOT_AUTHORIZED,
        AuthState.REAUTHORIZATION_REQUIRED,
        AuthState.PASSWORD_UPDATE_REQUIRED,
        AuthState.ERROR,
    }
)
MAX_BACKOFF = 3600.0


def _waits_for_a_person(mailbox: Schedule) -> bool:
    """Whether polling must wait until a person acts: signs in (a grant a person signs in
    with, never authorized yet), authorizes again, updates a password, fixes an error."""
    if mailbox.auth_state not in WAITING_FOR_A_PERSON or not mailbox.oauth:
        return False
    return mailbox.auth_state != AuthState.NOT_AUTHORIZED or mailbox.grant_type in USER_GRANTS


@dataclass
class _Due:
    at: float = 0.0
    failures: int = 0


@dataclass
class Scheduler:
    poller: Poller
    concurrency: int = 4
    clock: Callable[[], float] = time.monotonic
    jitter: float = 0.1
    _due: dict[str, _Due] = field(default_factory=dict)
    _running: dict[str, Future[PollResult]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def due_mailboxes(self) -> list[tuple[str, int]]:
        """Enabled mailboxes whose time has come, with their intervals, the longest overdue
        first (when more are due than may be polled at once, none waits for ever)."""
        with self.poller.store.read() as repo:
            schedules = repo.schedules()
        now = self.clock()
        due = []
        for mailbox in schedules:
            if not mailbox.enabled or mailbox.name in self._running:
                continue
            if _waits_for_a_person(mailbox):
                continue  # status says what to do
            if self._due.setdefault(mailbox.name, _Due()).at <= now:
                due.append((mailbox.name, mailbox.poll_interval or DEFAULT_POLL_INTERVAL))
        due.sort(key=lambda entry: self._due[entry[0]].at)  # stable: by name within a time
        return due

    def _done(self, name: str, interval: int, future: Future[PollResult]) -> None:
        self._running.pop(name, None)
        entry = self._due.setdefault(name, _Due())
        try:
            result = future.result()
            failed = result.error is not None
        except Exception as exc:  # isolation: one mailbox's bug never stops the others
            log.error("poll.crashed", mailbox=name, error=str(exc))
            failed = True
        entry.failures = entry.failures + 1 if failed else 0
        delay = float(interval) * (2 ** min(entry.failures, 6) if failed else 1)
        delay = min(delay, max(MAX_BACKOFF, float(interval)))
        entry.at = self.clock() + delay * (1 + random.uniform(-self.jitter, self.jitter))  # noqa: S311

    def tick(self, pool: ThreadPoolExecutor) -> None:
        for name, interval in self.due_mailboxes():
            if len(self._running) >= self.concurrency:
                break
            future = pool.submit(self.poller.poll, name)
            self._running[name] = future
            future.add_done_callback(functools.partial(self._done, name, interval))

    def run_forever(self, period: float = 1.0) -> None:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            while not self._stop.is_set():
                try:
                    self.tick(pool)
                except Exception as exc:  # the database went away: try again next period
                    log.error("scheduler.tick_failed", error=str(exc))
                self._stop.wait(period)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, name="scheduler", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
