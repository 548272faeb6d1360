"""A pass whose webhook hangs (a real HTTP receiver that answers later than the sender
waits): it stops delivering after a few failures in a row, keeps its lease while it works
longer than the lease lasts, and stops before the next message once the lease is gone."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import update

from mailintake.engine.guard import PassGuard, PassLimits
from mailintake.engine.poll import Poller, PollResult
from mailintake.errors import LeaseLost
from mailintake.net.http import build_client
from mailintake.sinks.base import MessageSink
from mailintake.sinks.webhook import WebhookSink
from mailintake.sources.memory import MemoryMailbox, MemorySource
from mailintake.store import leases
from mailintake.store.repo import Store
from mailintake.store.tables import leases as lease_table
from tests.support.http_receiver import WebhookReceiver
from tests.support.memory import configure, message

pytestmark = pytest.mark.both_databases


WAIT = 0.3  # how long the sender waits for an answer; a hanging receiver answers after 1 s


def hasty_webhook(output: Any, _home: Path) -> MessageSink:
    """The real webhook output, waiting WAIT s for each answer and trying twice."""
    return WebhookSink(
        output.url, attempts=2, backoff=0, client=build_client(timeout=httpx2.Timeout(WAIT))
    )


def poller(store: Store, home: Path, box: MemoryMailbox, limits: PassLimits) -> Poller:
    return Poller(
        store,
        home,
        source_factory=lambda *_a, **_o: MemorySource(box),
        sink_factory=hasty_webhook,
        limits=limits,
    )


def test_a_hanging_webhook_stops_the_pass_after_failures_in_a_row(
    store: Store, home: Path, receiver: WebhookReceiver
) -> None:
    receiver.fail_first, receiver.hang = 0, 1.0
    configure(store, {"type": "webhook", "url": receiver.url})
    box = MemoryMailbox({i: message(i) for i in range(1, 11)})
    limits = PassLimits(failures_in_a_row=3)

    started = time.monotonic()
    stopped = poller(store, home, box, limits).poll("invoices")
    assert time.monotonic() - started < 3 * 2 * WAIT + 3  # three messages tried, no more
    assert stopped.error is not None
    assert "failed 3 messages in a row" in stopped.error
    assert "the rest stays on the server for the next pass" in stopped.error
    assert (stopped.imported, stopped.failed) == (0, 3)
    assert sorted(receiver.tries.values()) == [2, 2, 2]  # the other seven were not sent
    assert box.seen == set()
    with store.read() as repo:
        (row,) = [r for r in repo.list_mailboxes() if r.spec.name == "invoices"]
    assert "failed 3 messages in a row" in str(row.last_error)

    receiver.hang = 0.0  # the receiver is back
    receiver.tries.clear()
    again = poller(store, home, box, limits).poll("invoices")
    assert (again.imported, again.failed, again.error) == (10, 0, None)
    assert len(receiver.seen) == 10
    assert set(receiver.tries.values()) == {1}
    assert box.seen == set(range(1, 11))


def test_a_refusing_webhook_does_not_stop_the_pass(
    store: Store, home: Path, receiver: WebhookReceiver
) -> None:
    """Messages the receiver refuses (4xx) fail on their own: the pass goes on."""
    receiver.fail_first, receiver.status_when_failing = 1, 422
    configure(store, {"type": "webhook", "url": receiver.url})
    box = MemoryMailbox({i: message(i) for i in range(1, 8)})
    result = poller(store, home, box, PassLimits(failures_in_a_row=2)).poll("invoices")
    assert (result.imported, result.failed, result.error) == (0, 7, None)


def test_a_pass_keeps_its_lease_and_stops_once_it_is_gone(
    store: Store, home: Path, receiver: WebhookReceiver
) -> None:
    """A pass that works far longer than its lease lasts keeps it (renewed on a timer, not
    per batch: this one is a single batch); once another poll holds it, the pass stops
    before it sends another message."""
    receiver.fail_first, receiver.hang = 0, 1.0
    configure(store, {"type": "webhook", "url": receiver.url})
    box = MemoryMailbox({i: message(i) for i in range(1, 41)})
    limits = PassLimits(
        lease=timedelta(seconds=1.5), renew_every=0.2, margin=0.5, failures_in_a_row=1000
    )
    results: list[PollResult] = []
    first = threading.Thread(
        target=lambda: results.append(poller(store, home, box, limits).poll("invoices"))
    )
    first.start()
    time.sleep(3 * limits.lease.total_seconds())  # twice the lease has passed
    second = poller(store, home, box, limits).poll("invoices")
    assert second.error == "another poll of this mailbox is running"
    assert first.is_alive()

    with store.begin() as repo:  # another worker takes the mailbox over
        repo.conn.execute(
            update(lease_table)
            .where(lease_table.c.mailbox == "invoices")
            .values(owner="elsewhere:1:0")
        )
    taken = time.monotonic()
    tried = sum(receiver.tries.values())
    first.join(10)
    assert not first.is_alive()
    assert time.monotonic() - taken < limits.renew_every + 2 * WAIT + 1
    # The request under way, and at most one started before the next renewal noticed.
    assert sum(receiver.tries.values()) <= tried + 2
    (stopped,) = results
    assert stopped.error is not None
    assert "another poll took over" in stopped.error
    assert len(receiver.tries) < len(box.messages)  # the rest was never sent
    with store.read() as repo:
        assert leases.holder(repo.conn, "invoices") == "elsewhere:1:0"  # theirs, untouched


def test_a_lease_that_cannot_be_renewed_stops_the_pass_before_it_ends(store: Store) -> None:
    now = [100.0]
    limits = PassLimits(lease=timedelta(seconds=60), renew_every=10, margin=20)
    guard = PassGuard(store, "invoices", leases.new_owner(), limits, clock=lambda: now[0])
    guard.check()
    now[0] += 39  # 21 s of the lease left: one message may still go
    guard.check()
    guard.renewed(True)
    now[0] += 39
    guard.check()
    now[0] += 2  # renewals failed for 41 s: 19 s left, under the margin
    with pytest.raises(LeaseLost, match="could not be renewed"):
        guard.check()
