"""The mailbox side: a MailSource lists what is in the folder, fetches it, and applies the
after-import action; protocol details (UID, UIDL, Graph ids) stay inside each source."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from mailintake.errors import MessageUnavailable
from mailintake.spool import Body
from mailintake.store.checkpoints import Checkpoint, Failure

TokenProvider = Callable[[], str]
# Which of these message keys were imported already (a source may skip work for them).
KnownKeys = Callable[[list[str]], set[str]]
# A fetched message: its bytes, or why the server cannot give this one (it fails alone).
Fetched = Body | MessageUnavailable


@dataclass(frozen=True)
class SourceItem:
    key: str  # the message key (mailintake.keys): stable, unique, safe as a directory name
    source: dict[str, Any]  # what identifies it on the server (metadata.json "source")
    size: int | None = None
    received: datetime | None = None
    # From the listing, where the protocol gives them: shown for a message that failed.
    subject: str | None = None
    sender: str | None = None


class MailSource(Protocol):
    protocol: str
    # Whether ``fetch`` may run in another thread while this one lists or acknowledges: the
    # engine then fetches the next batches while one is delivered.
    prefetch_safe: bool
    # Whether the after-import action takes effect only at ``commit`` (POP3 deletes at QUIT,
    # RFC 1939 §6): the engine then marks messages acknowledged only after ``commit``, and
    # acknowledges again those it marked that the server still lists.
    acknowledged_at_commit: bool

    def open(self) -> None:
        """Connect and sign in (with the token the provider gives)."""
        ...

    def list_items(self, known: KnownKeys | None = None) -> list[SourceItem]:
        """Every message in the folder; ``known`` tells which keys were imported already."""
        ...

    def list_pages(self, known: KnownKeys | None = None) -> Iterator[list[SourceItem]]:
        """The same, a page at a time where the protocol lists in pages: the engine starts
        on the first messages while the rest are listed."""
        ...

    def fetch(self, items: Sequence[SourceItem]) -> Iterator[tuple[SourceItem, Fetched]]:
        """The messages' bytes, in order; a large one may come as a spooled file. A message
        the server cannot give comes as MessageUnavailable (only when the failure is that
        message's: a lost connection, a refused token raise as before); a message gone
        from the server meanwhile does not come at all."""
        ...

    def acknowledge(self, sources: Sequence[dict[str, Any]]) -> None:
        """Apply the mailbox's after-import action to these messages (one command where the
        protocol allows)."""
        ...

    def commit(self) -> None:
        """Make the after-import actions of this session final where the protocol waits for
        that (POP3: QUIT, which ends the session); raises SourceError when it did not."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Resume:
    """Where the import of a folder stood, for a source that lists from there: the folder's
    checkpoint (None: never saved), the mailbox's failed and parked messages (tried again
    from this list, never found by listing the whole folder), and the Message-ID and size of
    every message imported before (asked for only when the folder was recreated)."""

    saved: Checkpoint | None
    failures: Sequence[Failure]
    earlier: Callable[[], set[tuple[str, int]]]


@runtime_checkable
class Resumable(Protocol):
    """A source that lists only what is new since a checkpoint (IMAP: UIDVALIDITY and the
    last UID; Graph: the folder's deltaLink, in ``Checkpoint.cursor``)."""

    folder: str
    # Whether the listing said which of the failures are still on the server (False when
    # the source listed nothing at all: then no failure is forgotten as gone).
    complete: bool
    # A sentence for the mailbox's status when the folder was found recreated, else None.
    recreated: str | None
    # Messages of a recreated folder found imported before and left out of the listing.
    matched: int

    def resume(self, resume: Resume) -> None:
        """Before listing: where to list from."""
        ...

    def checkpoint(self, handled: Sequence[SourceItem] | None) -> Checkpoint | None:
        """The checkpoint to save once ``handled`` (a batch of the listing, in order) and every
        item listed before it are handled: recorded, failed and in the list of failures, or
        gone; with None, once the whole listing is. None: nothing to save."""
        ...
