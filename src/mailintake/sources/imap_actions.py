"""The after-import action on IMAP, one command per batch of UIDs: mark read (``\\Seen``),
delete (``\\Deleted``, then UID EXPUNGE of just those where the server offers UIDPLUS, RFC
4315, else EXPUNGE), move (MOVE, RFC 6851, or COPY and delete where the server has no
MOVE)."""

from __future__ import annotations

from typing import Any

from mailintake.enums import AfterImport

SEEN = b"\\Seen"
DELETED = b"\\Deleted"


def after_import(client: Any, action: str, uids: list[int], move_to: str) -> None:
    """Take ``action`` on the messages ``uids`` of the folder selected on ``client``."""
    if action == AfterImport.MARK_READ:
        client.add_flags(uids, [SEEN], silent=True)
    elif action == AfterImport.DELETE:
        client.add_flags(uids, [DELETED], silent=True)
        _expunge(client, uids)
    elif action == AfterImport.MOVE:
        if client.has_capability("MOVE"):
            client.move(uids, move_to)
        else:
            client.copy(uids, move_to)
            client.add_flags(uids, [DELETED], silent=True)
            _expunge(client, uids)


def _expunge(client: Any, uids: list[int]) -> None:
    if client.has_capability("UIDPLUS"):
        client.uid_expunge(uids)
    else:
        client.expunge()
