"""Two polls of one mailbox at once in one process ("Poll now" twice in the web admin, or
while the scheduler polls it): the lease belongs to one poll, so the second is refused and
every message reaches the output exactly once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from mailintake.engine.poll import Poller, PollResult
from mailintake.sources.base import SourceItem
from mailintake.sources.memory import MemoryMailbox, MemorySource
from mailintake.store import leases
from mailintake.store.repo import Store
from tests.support.http_receiver import WebhookReceiver
from tests.support.memory import configure, message

pytestmark = pytest.mark.both_databases


MESSAGES = 30


class Gate:
    """Holds each pass at its first fetch until ``go``: a pass that got past the lease is
    then known to be inside the import."""

    def __init__(self) -> None:
        self.inside: list[str] = []
        self.go = threading.Event()

    def wait_for(self, count: int, also: threading.Thread | None = None) -> None:
        deadline = time.monotonic() + 10
        while len(self.inside) < count and time.monotonic() < deadline:
            if also is not None and not also.is_alive():
                return
            time.sleep(0.01)


def gated_poller(store: Store, home: Path, box: MemoryMailbox, gate: Gate) -> Poller:
    class Gated(MemorySource):
        prefetch_safe = False  # fetched in the pass's own thread, which the gate names

        def fetch(self, items: Sequence[SourceItem]) -> Iterator[tuple[SourceItem, bytes]]:
            gate.inside.append(threading.current_thread().name)
            gate.go.wait(5)
            return super().fetch(items)

    return Poller(store, home, source_factory=lambda *_a, **_o: Gated(box))


def two_at_once(store: Store, home: Path, box: MemoryMailbox) -> list[PollResult]:
    """The first poll is inside its import when the second starts; each with its own Poller,
    as each "Poll now" makes one."""
    gate = Gate()
    results: list[PollResult] = []

    def run() -> None:
        results.append(gated_poller(store, home, box, gate).poll("invoices"))

    first = threading.Thread(target=run, name="first")
    first.start()
    gate.wait_for(1)
    assert gate.inside == ["first"]
    second = threading.Thread(target=run, name="second")
    second.start()
    gate.wait_for(2, also=second)  # the second ends at once, or gets inside as well
    gate.go.set()
    first.join(30)
    second.join(30)
    assert len(results) == 2
    return results


@pytest.mark.parametrize("output", ["folder", "webhook"])
def test_two_polls_of_one_mailbox_in_one_process(
    store: Store, home: Path, tmp_path: Path, receiver: WebhookReceiver, output: str
) -> None:
    receiver.fail_first = 0
    out = tmp_path / "capture"
    if output == "folder":
        configure(store, {"type": "folder", "path": str(out)})
    else:
        configure(store, {"type": "webhook", "url": receiver.url})
    box = MemoryMailbox({i: message(i) for i in range(1, MESSAGES + 1)})

    results = two_at_once(store, home, box)

    refused = [r for r in results if r.error is not None]
    assert [r.error for r in refused] == ["another poll of this mailbox is running"]
    (done,) = [r for r in results if r.error is None]
    assert (done.imported, done.failed) == (MESSAGES, 0)
    assert box.seen == set(range(1, MESSAGES + 1))
    if output == "folder":
        written = sorted(out.glob("invoices/*/*/message.eml"))
        assert sorted(p.read_bytes() for p in written) == sorted(box.messages.values())
        assert list((out / ".incoming" / "invoices").iterdir()) == []
    else:
        assert len(receiver.seen) == MESSAGES
        assert set(receiver.tries.values()) == {1}  # every message POSTed once
    with store.read() as repo:
        assert leases.holder(repo.conn, "invoices") is None  # each poll let go of its own
