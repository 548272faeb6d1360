"""Microsoft Graph's "not before" per application and mailbox, shared by every worker.

Graph limits each application per mailbox (oauth-facts §3.6: 10,000 requests per 10 minutes
and four at once, per app ID and mailbox; one mailbox over its limit does not affect the
others) and answers 429 with ``Retry-After`` when a limit is passed. The worker told so
stores the time here; any worker about to call Graph for that application and mailbox reads
it first and waits or skips its poll (sources.graph_limits). The documentation speaks of no
application-wide limit that a 429 would announce, so there is no row per application alone.

The four concurrent requests need no row: a mailbox is polled by one worker at a time (its
lease, store.leases), and within that worker one pass holds the slots of the mailbox."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from mailintake.store.repo import Store
from mailintake.store.tables import graph_throttle, mailboxes


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite drops the zone


def not_before(conn: Connection, client_id: str, mailbox: str) -> datetime | None:
    row = conn.execute(
        select(graph_throttle.c.not_before).where(
            graph_throttle.c.client_id == client_id, graph_throttle.c.mailbox == mailbox.lower()
        )
    ).first()
    return None if row is None else _utc(row.not_before)


def hold_off(conn: Connection, client_id: str, mailbox: str, until: datetime) -> None:
    """Keep ``until`` unless a later time is kept already."""
    now = datetime.now(UTC)
    key = (graph_throttle.c.client_id == client_id, graph_throttle.c.mailbox == mailbox.lower())
    if not_before(conn, client_id, mailbox) is None:
        conn.execute(
            graph_throttle.insert().values(
                client_id=client_id, mailbox=mailbox.lower(), not_before=until, updated_at=now
            )
        )
        return
    conn.execute(
        update(graph_throttle)
        .where(*key, graph_throttle.c.not_before < until)
        .values(not_before=until, updated_at=now)
    )


def note_deferred(conn: Connection, name: str, reason: str) -> None:
    """A poll skipped while Graph's wait lasts: said where ``status`` shows the last poll's
    warnings, without counting as a poll (its time and error stay as they were)."""
    conn.execute(update(mailboxes).where(mailboxes.c.name == name).values(last_warning=reason))


class GraphThrottle:
    """The store's throttle rows, as Graph sources use them (sources.graph_limits.Book)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def not_before(self, client_id: str, mailbox: str) -> datetime | None:
        with self.store.read() as repo:
            return not_before(repo.conn, client_id, mailbox)

    def hold_off(self, client_id: str, mailbox: str, until: datetime) -> None:
        for _attempt in range(2):  # two workers inserting at once: the second updates
            try:
                with self.store.begin() as repo:
                    hold_off(repo.conn, client_id, mailbox, until)
                return
            except IntegrityError:
                continue
