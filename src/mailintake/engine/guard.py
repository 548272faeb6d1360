"""What keeps one import pass inside its lease and stops it when its output keeps failing.

While a pass works, a timer renews its lease (not only after each batch: one message to a
webhook that does not answer may take minutes). Before each message an output sends, and
before each batch, the pass asks ``check``, which stops it (raises) when

- the lease is lost (another poll holds it now), or renewals have failed for so long that
  what is left of the lease is under ``PassLimits.margin``: ``LeaseLost``;
- the output failed ``PassLimits.failures_in_a_row`` messages one after another in a way
  that later may work (no answer, 5xx): ``OutputUnavailable``. Messages an output refuses
  (a 4xx) do not count: they fail on their own and the pass goes on with the others.

What was not delivered stays on the server for the next pass; the reason is the poll's error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from mailintake.errors import LeaseLost, MailintakeError, OutputUnavailable
from mailintake.observability.logging import get_logger
from mailintake.sinks.base import Receipt
from mailintake.store import leases
from mailintake.store.repo import Store

log = get_logger(__name__)


@dataclass(frozen=True)
class PassLimits:
    # Short, so that the poll of a worker that died (on any host) is taken over soon: the
    # lease ends at most this long after the last renewal.
    lease: timedelta = timedelta(seconds=24)
    renew_every: float = 4.0  # seconds between renewals of the lease while a pass works
    # A pass stops before the next message when less than this is left of its lease: its
    # renewals failed (the database is away) for lease - margin seconds.
    margin: float = 8.0
    failures_in_a_row: int = 3  # transient delivery failures one after another

    def __post_init__(self) -> None:
        ttl = self.lease.total_seconds()
        if not 0 < self.renew_every < ttl or not 0 <= self.margin < ttl:
            raise ValueError("PassLimits: renew_every and margin must be shorter than the lease")
        if self.renew_every >= ttl - self.margin:
            # A pass whose renewals all succeed would stop between two of them.
            raise ValueError("PassLimits: renew_every must be shorter than lease - margin")
        if self.failures_in_a_row < 1:
            raise ValueError("PassLimits.failures_in_a_row: at least 1")


class PassGuard:
    """One pass's lease, renewed on a timer, and its output's failures in a row. Used from
    the pass's threads (the engine's, the output's writer, the timer)."""

    def __init__(
        self,
        store: Store,
        mailbox: str,
        owner: str,
        limits: PassLimits,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.mailbox, self.owner, self.limits = store, mailbox, owner, limits
        self.clock = clock
        self._lock = threading.Lock()
        self._renewed = clock()  # the lease was taken (or renewed) at this moment
        self._failures = 0
        self._last_failure = ""
        self._halt: MailintakeError | None = None
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None

    def __enter__(self) -> PassGuard:
        self._timer = threading.Thread(target=self._keep, name=f"lease-{self.mailbox}", daemon=True)
        self._timer.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.join()

    def _keep(self) -> None:
        while not self._stop.wait(self.limits.renew_every):
            try:
                with self.store.begin() as repo:
                    kept = leases.renew(repo.conn, self.mailbox, self.owner, self.limits.lease)
            except Exception as exc:  # the database is away: the next tick tries again
                log.warning("lease.renewal_failed", mailbox=self.mailbox, error=str(exc))
                continue
            self.renewed(kept)
            if not kept:
                return

    def renewed(self, kept: bool) -> None:
        """The lease was renewed now (``kept``), or is held by another poll now."""
        with self._lock:
            if kept:
                self._renewed = self.clock()
            elif self._halt is None:
                log.warning("lease.lost", mailbox=self.mailbox)
                self._halt = LeaseLost(f"{self.mailbox}: another poll took over this mailbox")

    def check(self) -> None:
        """Raise what stops the pass, if anything does: before a message or a batch."""
        with self._lock:
            if self._halt is None:
                left = self.limits.lease.total_seconds() - (self.clock() - self._renewed)
                if left < self.limits.margin:
                    self._halt = LeaseLost(
                        f"{self.mailbox}: the lease could not be renewed and ends in "
                        f"{max(left, 0):.0f} s; the pass stopped before it ends"
                    )
            if self._halt is not None:
                raise self._halt

    def before(self) -> None:
        """Before an output sends a message (sinks.base.Pacer)."""
        self.check()

    def after(self, outcome: Receipt | Exception) -> None:
        """What became of a message the output sent (sinks.base.Pacer)."""
        with self._lock:
            if not isinstance(outcome, OutputUnavailable):
                self._failures = 0  # delivered, or refused on its own
                return
            self._failures += 1
            self._last_failure = str(outcome)
            if self._failures >= self.limits.failures_in_a_row and self._halt is None:
                self._halt = OutputUnavailable(
                    f"{self.mailbox}: the output failed {self._failures} messages in a row, "
                    f"so the pass stopped delivering; the rest stays on the server for the "
                    f"next pass (last: {self._last_failure})"
                )

    def halted(self, outcome: object) -> bool:
        """Whether ``outcome`` is this guard's stop (a message it kept from being sent)."""
        return outcome is not None and outcome is self._halt
