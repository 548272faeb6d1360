"""Failed sign-ins slow down guessing: after ``limit`` failures from one address within
``window`` seconds, that address may not try again until the oldest failure has aged out.
The failures are kept in the database, so every ``serve`` process sharing it counts them
together (several processes do not multiply the tries an address gets)."""

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

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def wait(self, address: str) -> float:
        """Seconds ``address`` must wait before its next try (0: it may try now)."""
        now = self._now()
        failures = admin.recent_sign_in_failures(
            self.store(), address, now - timedelta(seconds=self.window)
        )
        if len(failures) < self.limit:
            return 0.0
        oldest = failures[-self.limit]  # when the limit-th most recent ages out, one may try
        return max(0.0, (oldest - now).total_seconds() + self.window)

    def failed(self, address: str) -> None:
        now = self._now()
        admin.sign_in_failed(self.store(), address, now, now - timedelta(seconds=self.window))

    def succeeded(self, address: str) -> None:
        admin.sign_in_succeeded(self.store(), address)
