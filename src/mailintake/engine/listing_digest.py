"""What a source without a cursor listed before, recognised with one hash.

POP3 has no cursor: every pass gets the whole UIDL answer, and a mailbox that keeps its
messages (``after_import: keep``) lists every one it ever had. Screening that listing key by
key against the store costs per kept message: the mailbox's keys are read from the database
each pass. Instead, each pass leaves the digest of the listing's longest beginning whose
messages are all recorded or acknowledged (store.listing_digests); the next pass hashes the
same beginning of its listing and, when it matches, knows those messages are imported
without reading them from the store, and screens only the rest (new mail is listed last).

This is a cache of what the store said, never a promise of its own: a digest is saved only
over keys the store had as recorded or acknowledged, and such a record never goes back (it
is only deleted with the mailbox, and its checkpoints with it). A crash at any point leaves
either the earlier digest or the new one, both true; the order deliver → record →
acknowledge is untouched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from mailintake.store import listing_digests
from mailintake.store.listing_digests import ListingDigest
from mailintake.store.repo import Store


def digest(keys: Sequence[str]) -> str:
    """One hash of the keys in their order (a newline never occurs in a message key)."""
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()


@dataclass
class ListedBefore:
    store: Store
    mailbox: str
    saved: ListingDigest | None = None

    def head(self, keys: Sequence[str]) -> int:
        """How many of the listing's first keys the saved digest covers (0: none, when the
        listing does not begin with what was saved)."""
        with self.store.read() as repo:
            self.saved = listing_digests.load(repo.conn, self.mailbox)
        saved = self.saved
        if saved is None or not 0 < saved.count <= len(keys):
            return 0
        return saved.count if digest(keys[: saved.count]) == saved.digest else 0

    def remember(self, keys: Sequence[str], done: set[str], head: int) -> None:
        """Save the digest of the longest beginning of ``keys`` that is all imported: the
        first ``head`` (covered before) and those after them found in ``done``."""
        count = head
        for key in keys[head:]:
            if key not in done:
                break
            count += 1
        if self.saved is not None and count == self.saved.count == head:
            return  # what is saved covers it already
        if count == 0 and self.saved is None:
            return
        with self.store.begin() as repo:
            listing_digests.save(
                repo.conn, self.mailbox, ListingDigest(count, digest(keys[:count]))
            )
