"""A poll skipped while Graph asks every worker to wait is no failure: the scheduler keeps
the mailbox's failures in a row and polls it next when the wait is over."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mailintake.engine.poll import PollResult
from mailintake.engine.scheduler import Scheduler
from mailintake.sources.memory import MemoryMailbox
from mailintake.store.repo import Store
from tests.support.memory import setup
from tests.support.store import authorized, places

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Scripted:
    """A poller whose results are given in advance."""

    def __init__(self, store: Store, results: list[PollResult]) -> None:
        self.store = store
        self.results = results

    def poll(self, name: str, *, owner: str | None = None) -> PollResult:
        return self.results.pop(0)


def test_a_poll_deferred_by_graph_keeps_the_back_off_and_waits_for_the_time(
    store: Store, home: Path, tmp_path: Path, box: MemoryMailbox
) -> None:
    setup(store, tmp_path / "capture")
    authorized(store, "invoices")
    until = T0 + timedelta(minutes=7)
    poller = Scripted(
        store,
        [
            PollResult("invoices", error="invoices: the server did not answer"),
            PollResult(
                "invoices",
                deferred="invoices: throttled by Microsoft Graph until 09:07:00 UTC",
                deferred_until=until,
            ),
        ],
    )
    clock = [T0]
    scheduler = Scheduler(poller, concurrency=1, clock=lambda: clock[0], jitter=0.0)
    with ThreadPoolExecutor(max_workers=1) as pool:
        scheduler.step(pool)  # a failure: back-off
    failed = places(store)["invoices"]
    assert failed.failures == 1
    assert failed.next_poll_at is not None
    clock[0] = failed.next_poll_at
    with ThreadPoolExecutor(max_workers=1) as pool:
        scheduler.step(pool)  # deferred by Graph
    deferred = places(store)["invoices"]
    assert deferred.failures == 1  # neither one more failure nor a success
    assert deferred.next_poll_at == until + timedelta(seconds=1)
    assert poller.results == []
