"""Sign-in attempts slow down guessing: an address gets ``limit`` password checks within
``window`` seconds; after that it may not try again until the oldest has aged out. A right
password starts its count again.

Each attempt is counted in the database before its password is checked (the count and the
insert under one lock), so parallel attempts cannot all pass the limit, and every ``serve``
process sharing the database counts them together (several processes do not multiply the
tries an address gets). The address is the peer's, or the one a trusted proxy forwards
(web/proxies.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from mailintake.store import admin
from mailintake.store.repo import Store


class SignInThrottle:
    def __init__(
        self,
        store: Callable[[], Store],
        limit: int = 5,
        window: float = 600.0,
        clock: Callable[[], float] = time.time,  # seconds since the epoch
    ) -> None:
        self.store, self.limit, self.window, self.clock = store, limit, window, clock

    def attempt(self, address: str) -> float:
        """Count an attempt from ``address``: 0 when its password may be checked now, else the
        seconds it must wait (this attempt was not counted and must be refused unchecked)."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        since = now - timedelta(seconds=self.window)
        earlier = admin.count_sign_in_attempt(self.store(), address, now, since, self.limit)
        if len(earlier) < self.limit:
            return 0.0
        oldest = earlier[-self.limit]  # when the limit-th most recent ages out, one may try
        return max(0.001, (oldest - now).total_seconds() + self.window)

    def succeeded(self, address: str) -> None:
        admin.sign_in_succeeded(self.store(), address)
