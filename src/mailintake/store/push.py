"""Which worker keeps each mailbox's push connection (the server tells it of new mail: IMAP
IDLE), so that with several workers on one database a mailbox has one such connection.

The rules are the scheduler's (store/schedule.py): a worker takes a mailbox nobody holds, or
one held by a worker whose heartbeat stopped (store/workers.py); a claim is one conditional
UPDATE, so two workers that try at once cannot both get it (PostgreSQL re-reads the row the
second one waited for), and made only by a worker that is live itself: one whose first
heartbeat is not yet recorded would look dead to the others, who would take its claims
while it keeps the connection open. A worker lets go of what it no longer keeps, and of
everything when it stops.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, exists, not_, or_, select, update

from mailintake.store.tables import mailboxes, workers


@dataclass(frozen=True)
class Candidate:
    """An enabled mailbox whose push connection this worker has or may take."""

    name: str
    auth_state: str
    definition: dict[str, Any]  # the mailbox as configured, without its secrets
    mine: bool  # this worker holds it now


def _free(worker: str, live_since: datetime) -> ColumnElement[bool]:
    """Held by nobody, by ``worker``, or by a worker whose last heartbeat is older than
    ``live_since`` (or gone)."""
    live = select(workers.c.id).where(workers.c.heartbeat_at >= live_since)
    return or_(
        mailboxes.c.push_by.is_(None),
        mailboxes.c.push_by == worker,
        not_(mailboxes.c.push_by.in_(live)),
    )


def candidates(conn: Connection, worker: str, live_since: datetime) -> list[Candidate]:
    """Every enabled mailbox ``worker`` holds or may take, those it holds first, then by
    name."""
    rows = conn.execute(
        select(
            mailboxes.c.name,
            mailboxes.c.auth_state,
            mailboxes.c.definition,
            mailboxes.c.push_by,
        ).where(mailboxes.c.enabled.is_(True), _free(worker, live_since))
    ).all()
    found = [Candidate(name, state, dict(d or {}), by == worker) for name, state, d, by in rows]
    return sorted(found, key=lambda c: (not c.mine, c.name))


def claim(conn: Connection, name: str, worker: str, live_since: datetime) -> bool:
    """Take the push connection of the enabled mailbox ``name`` for ``worker``, unless a
    live worker holds it or ``worker`` is not live itself (its heartbeat is older than
    ``live_since``, or not recorded yet); whether ``worker`` holds it now."""
    alive = exists().where(workers.c.id == worker, workers.c.heartbeat_at >= live_since)
    taken = conn.execute(
        update(mailboxes)
        .where(
            mailboxes.c.name == name,
            mailboxes.c.enabled.is_(True),
            _free(worker, live_since),
            alive,
        )
        .values(push_by=worker)
    )
    return bool(taken.rowcount)


def held(conn: Connection, worker: str) -> set[str]:
    """The mailboxes whose push connection ``worker`` holds."""
    rows = conn.execute(select(mailboxes.c.name).where(mailboxes.c.push_by == worker))
    return {name for (name,) in rows}


def release(conn: Connection, worker: str, names: Iterable[str] | None = None) -> None:
    """``worker`` lets go of these mailboxes' push connections (None: of all it holds)."""
    query = update(mailboxes).where(mailboxes.c.push_by == worker)
    if names is not None:
        chosen = sorted(names)
        if not chosen:
            return
        query = query.where(mailboxes.c.name.in_(chosen))
    conn.execute(query.values(push_by=None))


def holders(conn: Connection) -> dict[str, str]:
    """Each mailbox whose push connection a worker holds, and that worker."""
    rows = conn.execute(
        select(mailboxes.c.name, mailboxes.c.push_by).where(mailboxes.c.push_by.is_not(None))
    )
    return {name: by for name, by in rows}
