"""A mailbox's messages that could not be imported, for ``mailintake messages``, the REST API
and the web admin: listed (failed, parked, skipped), retried at the next pass, or skipped.
What fails and when it is tried again: engine.retries."""

from __future__ import annotations

from typing import Any

from mailintake.errors import NotFound
from mailintake.store import import_views
from mailintake.store.repo import Store

ACTIONS = {"retry": import_views.retry_now, "skip": import_views.skip}


def listing(store: Store, mailbox: str) -> list[dict[str, Any]]:
    """The mailbox's failed, parked and skipped messages, the newest first (NotFound for a
    mailbox of no such name)."""
    with store.read() as repo:
        repo.get_mailbox(mailbox)
        return import_views.problems(repo.conn, mailbox)


def act(store: Store, mailbox: str, key: str, action: str) -> dict[str, Any]:
    """``retry``: tried again at the next pass; ``skip``: never imported, never tried again.
    The message as listed now; NotFound when the mailbox lists no such message."""
    with store.begin() as repo:
        repo.get_mailbox(mailbox)
        if not ACTIONS[action](repo.conn, mailbox, key):
            raise NotFound(
                f"{mailbox}: no message {key} among those that could not be imported "
                f"(see mailintake messages {mailbox})"
            )
        return import_views.problems(repo.conn, mailbox, key=key)[0]


__all__ = ["ACTIONS", "act", "listing"]
