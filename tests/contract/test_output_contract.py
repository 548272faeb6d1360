"""What every output promises the engine (mailintake.sinks.base.MessageSink, and the order of
a pass in mailintake.engine.poll): one result per message of a batch, in order, a Receipt
naming the message's key and where it went; a delivery repeated (after a crash between the
delivery and its record) lands on the same place and leaves one copy; the place holds the
message's bytes as the server gave them."""

from __future__ import annotations

from datetime import UTC, datetime

from mailintake.sinks.base import Delivery, Receipt
from tests.support.mail import raw
from tests.support.outputs import OutputCase

RECEIVED = datetime(2026, 11, 24, 9, tzinfo=UTC)


def batch(count: int) -> list[Delivery]:
    return [
        Delivery("box", "imap", f"imap-INBOX-7-{n}", {"uid": n}, raw(n), RECEIVED)
        for n in range(1, count + 1)
    ]


def deliver(output: OutputCase, deliveries: list[Delivery]) -> list[Receipt | Exception]:
    sink = output.sink()
    try:
        return sink.deliver(deliveries)
    finally:
        sink.close()


def test_each_message_gets_its_receipt_in_order(output: OutputCase) -> None:
    deliveries = batch(3)
    receipts = deliver(output, deliveries)
    assert all(isinstance(r, Receipt) for r in receipts), receipts
    assert [r.key for r in receipts if isinstance(r, Receipt)] == [d.key for d in deliveries]
    assert len({r.location for r in receipts if isinstance(r, Receipt)}) == 3
    for delivery in deliveries:
        assert output.copies(delivery) == 1
        assert output.held(delivery) == delivery.raw


def test_a_delivery_repeated_lands_on_the_same_place_once(output: OutputCase) -> None:
    deliveries = batch(2)
    first = deliver(output, deliveries)
    again = deliver(output, deliveries)  # a new output, as after a restart
    assert [r.location for r in again if isinstance(r, Receipt)] == [
        r.location for r in first if isinstance(r, Receipt)
    ]
    assert len(again) == 2
    for delivery in deliveries:
        assert output.copies(delivery) == 1
        assert output.held(delivery) == delivery.raw


def test_a_batch_that_repeats_part_of_an_earlier_one(output: OutputCase) -> None:
    """The engine hands over again what it did not record, with what is new."""
    deliveries = batch(3)
    deliver(output, deliveries[:1])
    receipts = deliver(output, deliveries)
    assert [r.key for r in receipts if isinstance(r, Receipt)] == [d.key for d in deliveries]
    assert [output.copies(d) for d in deliveries] == [1, 1, 1]
