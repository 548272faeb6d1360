"""The output side: a MessageSink takes a batch of messages and says where each one went."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from mailintake.mime.parse import Parsed, parse
from mailintake.spool import Body, sha256_of


@dataclass(frozen=True)
class Delivery:
    """One message on its way to the output."""

    mailbox: str
    protocol: str
    key: str
    source: dict[str, Any]
    raw: Body = field(repr=False)  # bytes, or for a large message its spooled file
    received: datetime | None  # the server's date for it: stable across retries

    @functools.cached_property
    def parsed(self) -> Parsed:
        """Read on first use (the folder output reads it in its worker processes)."""
        return parse(self.raw)

    @functools.cached_property
    def sha256(self) -> str:
        return sha256_of(self.raw)

    @property
    def size(self) -> int:
        return len(self.raw)


def metadata(
    delivery: Delivery, imported_at: str, attachments: list[dict[str, Any]]
) -> dict[str, Any]:
    """What every output says of a message (CONTRACT §5's metadata.json), with the
    ``attachments`` as the output wrote them, and ``defects`` when the message could not be
    read in full."""
    parsed = delivery.parsed
    document: dict[str, Any] = {
        "mailbox": delivery.mailbox,
        "protocol": delivery.protocol,
        "source": delivery.source,
        "internet_message_id": parsed.internet_message_id,
        "subject": parsed.subject,
        "from": parsed.sender,
        "to": parsed.to,
        "cc": parsed.cc,
        "date": parsed.date,
        "size": delivery.size,
        "sha256": delivery.sha256,
        "imported_at": imported_at,
        "attachments": attachments,
    }
    if parsed.defects:
        document["defects"] = parsed.defects
    return document


@dataclass(frozen=True)
class Receipt:
    key: str
    location: str
    already: bool = False  # it was there from an earlier attempt: not written twice
    subject: str | None = None  # when the output read the message itself
    sender: str | None = None
    sha256: str | None = None
    message_id: str | None = None  # with sha256: the output read the message itself


class MessageSink(Protocol):
    # How many batches the engine may hand over at once (each from its own thread): more
    # than one when the output can write one while it makes another durable.
    overlapping_batches: int

    def deliver(self, batch: Sequence[Delivery]) -> list[Receipt | Exception]:
        """Deliver every message; one result per message, in order: a Receipt, or the
        error that kept that message out (the others are not affected)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class PreparingSink(Protocol):
    """An output told the size of each batch as soon as the pass has listed it, before its
    messages are fetched: the folder output starts its writer processes then, for a batch
    large enough to be handed to them, so that they are ready when it arrives (a pass with
    nothing, or little, to import starts none)."""

    def expect(self, count: int) -> None: ...


class Pacer(Protocol):
    """What an output that sends one message at a time asks before each message (``before``
    raises to stop the batch there) and tells after it (``after``): how a pass stops
    delivering when its lease ends or its output keeps failing (engine.guard)."""

    def before(self) -> None: ...

    def after(self, outcome: Receipt | Exception) -> None: ...


@runtime_checkable
class PacedSink(Protocol):
    """An output whose batches take long (one request per message): it lets the pass stop
    it between messages. The messages it did not send get the exception ``before`` raised
    as their result."""

    def pace(self, pacer: Pacer | None) -> None: ...
