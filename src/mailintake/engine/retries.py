"""When a message that failed on its own is tried again: a back-off per message (1 min, 5 min,
30 min, 2 h, then 6 h between tries), and parked after ``max_tries`` tries until a person
says ``retry`` or ``skip`` (``mailintake messages``, the API, the web admin).

Only failures that belong to the message are charged to it (``MessageUnavailable``: Graph
cannot convert it or it vanished, a FETCH or RETR of it alone fails). A lost connection, a
refused token, a failing output or a lost lease stop the pass and charge no message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from mailintake.config.resolve import DEFAULT_MAX_TRIES
from mailintake.observability.logging import get_logger
from mailintake.sources.base import SourceItem
from mailintake.store import imports

log = get_logger(__name__)

DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
)
MAX_TRIES = DEFAULT_MAX_TRIES  # the mailbox's max_tries, when it sets none


@dataclass(frozen=True)
class Retries:
    delays: tuple[timedelta, ...] = DELAYS
    max_tries: int = MAX_TRIES

    def __post_init__(self) -> None:
        if not self.delays:
            raise ValueError("Retries.delays: at least one")
        if self.max_tries < 1:
            raise ValueError("Retries.max_tries: at least 1")

    def after(self, tries: int, now: datetime) -> datetime | None:
        """When a message that has failed ``tries`` times is tried next; None: parked."""
        if tries >= self.max_tries:
            return None
        return now + self.delays[min(tries, len(self.delays)) - 1]


def charge(
    conn: Connection,
    mailbox: str,
    item: SourceItem,
    reason: str,
    retries: Retries,
    now: datetime,
) -> datetime | None:
    """Record one more failed try of a message the server could not give; when it is tried
    next (None: parked)."""
    tries = imports.tries(conn, mailbox, item.key) + 1
    next_try = retries.after(tries, now)
    imports.failed(
        conn,
        mailbox,
        item.key,
        item.source,
        reason,
        subject=item.subject,
        sender=item.sender,
        size=item.size,
        next_try=next_try,
        parked=next_try is None,
    )
    log.warning(
        "message.unavailable",
        mailbox=mailbox,
        key=item.key,
        reason=reason,
        tries=tries,
        next_try=next_try.isoformat() if next_try else "parked",
    )
    return next_try
