"""What the emulated store remembers for Graph's delta query (sandbox.graph.delta): every
change to a mailbox's messages in order (``Journal``), and the sync states its state tokens
stand for (``SyncStates``).

Exchange keeps a folder's sync state on the server and gives the client an opaque token for
it ("These tokens are state tokens that are opaque to the client", delta-query-messages.md);
the tokens live in "the internal delta token cache. While new delta tokens are continuously
added in the cache, after the cache capacity is exceeded, the older delta tokens are
deleted" (delta-query-overview.md, "Token duration"). ``SyncStates`` is that cache, with a
capacity, dropping the oldest; a token not in it answers 410 syncStateNotFound.
"""

from __future__ import annotations

import bisect
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

CAPACITY = 10_000  # sync states kept; the oldest go first (the service's figure is not given)


@dataclass(frozen=True)
class Change:
    seq: int
    message_id: str  # immutable id
    before: str | None  # the folder the message was in just before (None: it was not yet)


@dataclass
class Journal:
    """A mailbox's changes to messages, numbered in order; ``seq`` is the latest number.
    Finding the changes after a number costs what they are, not what the mailbox holds."""

    seq: int = 0
    changes: list[Change] = field(default_factory=list)

    def note(self, message_id: str, before: str | None) -> None:
        self.seq += 1
        self.changes.append(Change(self.seq, message_id, before))

    def since(self, seq: int) -> list[Change]:
        start = bisect.bisect_right(self.changes, seq, key=lambda c: c.seq)
        return self.changes[start:]


@dataclass(frozen=True)
class SyncState:
    """What a state token stands for: the folder, the query of the round's first request
    (encoded in the token: "Microsoft Graph automatically encodes any specified parameters
    into the token portion", message-delta.md), the journal number the changes are counted
    from, and for a round being paged (``$skiptoken``) what is left to give."""

    mailbox: str
    folder_id: str
    seq: int
    query: dict[str, Any]
    generation: int  # the emulator's sync-state generation (Faults.forget_sync_states)
    pending: tuple[tuple[str, str], ...] | None = None  # (immutable id, change) to give
    offset: int = 0


class SyncStates:
    """The delta token cache: token → SyncState, at most ``capacity``, oldest dropped."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._states: OrderedDict[str, SyncState] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, state: SyncState) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._states[token] = state
            while len(self._states) > self.capacity:
                self._states.popitem(last=False)
        return token

    def get(self, token: str) -> SyncState | None:
        with self._lock:
            return self._states.get(token)

    def clear(self) -> None:
        with self._lock:
            self._states.clear()


__all__ = ["CAPACITY", "Change", "Journal", "SyncState", "SyncStates"]
