"""The digest of a listing's beginning that is all imported: for a source without a cursor
(POP3, whose UIDL answer is the whole mailbox every time), so that the next pass recognises
what it screened before with one hash instead of loading every key of the mailbox.

Kept in ``checkpoints`` under the folder ``""`` (no mailbox has an empty folder name), so it
goes with the mailbox's other checkpoints (``imports.forget_mailbox``). ``cursor`` holds
``<count>:<sha256 of the first count keys>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from mailintake.store import checkpoints
from mailintake.store.checkpoints import Checkpoint

FOLDER = ""


@dataclass(frozen=True)
class ListingDigest:
    count: int  # the listing's first ``count`` keys …
    digest: str  # … hash to this, and each was recorded or acknowledged when it was saved


def load(conn: Connection, mailbox: str) -> ListingDigest | None:
    saved = checkpoints.load(conn, mailbox, FOLDER)
    if saved is None or not saved.cursor:
        return None
    count, _, digest = saved.cursor.partition(":")
    if not count.isdigit() or not digest:
        return None
    return ListingDigest(int(count), digest)


def save(conn: Connection, mailbox: str, listing: ListingDigest) -> None:
    checkpoints.save(conn, mailbox, Checkpoint(FOLDER, cursor=f"{listing.count}:{listing.digest}"))
