"""A mailbox held in memory and its source: for the tests of code built on mailintake, as
httpx ships ``MockTransport``. No server, no token: hand a ``Poller`` a ``source_factory``
that returns a ``MemorySource`` over a ``MemoryMailbox``, put messages in the mailbox, poll,
and look at what the output and the mailbox hold afterwards::

    from mailintake.engine.poll import Poller
    from mailintake.sources.memory import MemoryMailbox, MemorySource

    mailbox = MemoryMailbox()
    uid = mailbox.add(raw_message)
    poller = Poller(store, home, source_factory=lambda *_a, **_o: MemorySource(mailbox))
    result = poller.poll("invoices")  # a mailbox of the configuration, any protocol
    assert result.imported == 1 and mailbox.seen == {uid}

It keeps the contract of ``mailintake.sources.base.MailSource`` as the servers do: the
listing gives every message of the folder in the order they arrived, each under a key that
stays the same from one pass to the next (``memory-<uid>``, a UID never given twice), with
its size and the date it arrived; ``fetch`` gives the bytes as they were added and leaves
out a message gone meanwhile; the after-import action takes effect at once (as on IMAP and
Graph): ``mark_read`` marks the message seen, ``delete`` removes it, ``move`` moves it to the
folder ``move_to``, ``keep`` leaves it as it was. Several sources may work on one mailbox
from several threads (two polls of one mailbox at once).

To make a source that fails where a test wants it to, subclass ``MemorySource`` and raise
one of ``mailintake.errors``' exceptions (``SourceError`` for a lost connection) from the
method concerned.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mailintake.enums import AfterImport
from mailintake.errors import ConfigError
from mailintake.sources.base import Fetched, KnownKeys, SourceItem


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class MemoryMailbox:
    """The server side: the folder's messages by UID, what was marked seen, and the other
    folders messages were moved to. ``received`` is when the messages given here arrived;
    ``add`` records its own date for each message."""

    messages: dict[int, bytes] = field(default_factory=dict)
    received: datetime = field(default_factory=_now)
    seen: set[int] = field(default_factory=set)
    moved: dict[str, dict[int, bytes]] = field(default_factory=dict)
    arrived: dict[int, datetime] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _next_uid: int = field(default=1, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._next_uid = max(self.messages, default=0) + 1

    def add(self, raw: bytes, received: datetime | None = None) -> int:
        """Deliver ``raw`` into the folder; returns its UID (never one given before)."""
        with self.lock:
            uid = self._next_uid
            self._next_uid += 1
            self.messages[uid] = raw
            self.arrived[uid] = received or _now()
            return uid

    def date_of(self, uid: int) -> datetime:
        return self.arrived.get(uid, self.received)


class MemorySource:
    """A ``MailSource`` over a ``MemoryMailbox`` (see the module's docstring)."""

    protocol = "memory"
    prefetch_safe = True
    acknowledged_at_commit = False

    def __init__(
        self,
        mailbox: MemoryMailbox,
        after_import: AfterImport | str = AfterImport.MARK_READ,
        move_to: str | None = None,
    ) -> None:
        self.mailbox = mailbox
        self.after_import = AfterImport(after_import)
        if self.after_import is AfterImport.MOVE and not move_to:
            raise ConfigError(["after_import: move needs a folder to move to (move_to)"])
        self.move_to = move_to

    @staticmethod
    def key(uid: int) -> str:
        """The message key of the message ``uid``: the same at every pass."""
        return f"memory-{uid}"

    def open(self) -> None:
        return None

    def list_items(self, known: KnownKeys | None = None) -> list[SourceItem]:
        """Every message of the folder, in the order they arrived (``known`` is not needed:
        listing costs nothing here)."""
        with self.mailbox.lock:
            listed = sorted(self.mailbox.messages.items())
            return [
                SourceItem(self.key(uid), {"uid": uid}, len(raw), self.mailbox.date_of(uid))
                for uid, raw in listed
            ]

    def list_pages(self, known: KnownKeys | None = None) -> Iterator[list[SourceItem]]:
        yield self.list_items(known)

    def fetch(self, items: Sequence[SourceItem]) -> Iterator[tuple[SourceItem, Fetched]]:
        for item in items:
            with self.mailbox.lock:
                raw = self.mailbox.messages.get(item.source["uid"])
            if raw is not None:
                yield item, raw

    def acknowledge(self, sources: Sequence[dict[str, Any]]) -> None:
        box = self.mailbox
        with box.lock:
            for uid in (source["uid"] for source in sources):
                if uid not in box.messages:
                    continue  # gone meanwhile: nothing left to act on
                if self.after_import is AfterImport.MARK_READ:
                    box.seen.add(uid)
                elif self.after_import is AfterImport.DELETE:
                    del box.messages[uid]
                    box.seen.discard(uid)
                elif self.after_import is AfterImport.MOVE:
                    box.moved.setdefault(self.move_to or "", {})[uid] = box.messages.pop(uid)
                    box.seen.discard(uid)

    def commit(self) -> None:
        return None

    def close(self) -> None:
        return None


__all__ = ["MemoryMailbox", "MemorySource"]
