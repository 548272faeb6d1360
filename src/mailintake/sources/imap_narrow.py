"""Fetching a set of UIDs when the server fails on one message of it.

Dovecot answers a FETCH that reaches a message file it cannot read with ``* BYE FETCH
failed: Internal error occurred`` and closes the session; other servers answer the command
``NO``. Either way the whole command fails, whatever else it asked for. What arrived before
the failure is kept; the rest is asked for again once (a session can also end for reasons of
its own: Exchange's ``BYE Session invalidated - AccessTokenExpired``), then in halves, and
halves of those, signing in again after each lost session, until the one UID that fails alone
is found: that message fails on its own and the others are fetched.

A session that cannot be had again (the server is away, the token is refused) raises from
``reconnect``: nothing is charged to a message then.
"""

from __future__ import annotations

import imaplib
from collections import deque
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
Fetch = Callable[[list[int], dict[int, T]], None]  # puts what arrives into the dict


def narrowed(
    uids: Sequence[int], fetch: Fetch[T], reconnect: Callable[[Exception], None]
) -> tuple[dict[int, T], dict[int, str]]:
    """What ``fetch`` got for ``uids``, and the UIDs that failed alone with the reason."""
    got: dict[int, T] = {}
    failed: dict[int, str] = {}
    parts: deque[list[int]] = deque([list(uids)])
    again = True  # the first failure of the whole set is tried once more as it is
    while parts:
        part = [uid for uid in parts.popleft() if uid not in got]
        if not part:
            continue
        try:
            fetch(part, got)
            continue
        except (OSError, imaplib.IMAP4.abort) as exc:  # the session ended: sign in again
            reconnect(exc)
            error: Exception = exc
        except imaplib.IMAP4.error as exc:  # NO or BAD: the session goes on
            error = exc
        rest = [uid for uid in part if uid not in got]
        if not rest:
            continue
        if again:
            again = False
            parts.appendleft(rest)
        elif len(rest) == 1:
            failed[rest[0]] = str(error) or error.__class__.__name__
        else:
            half = len(rest) // 2
            parts.extendleft([rest[half:], rest[:half]])
    return got, failed


__all__ = ["narrowed"]
