"""When each mailbox is polled next, kept in the database so that several workers share the
mailboxes: a worker claims the due mailboxes, the longest overdue first, and moves their due
time forward in the same transaction, so no other worker picks them (PostgreSQL:
``FOR UPDATE SKIP LOCKED``, other workers skip rows being claimed; SQLite serialises
writers, one host).

A mailbox whose poll belongs to a worker that stopped beating (store/workers.py) is due again
at once, before every other due mailbox: its poll is taken over as soon as its lease expires.

A mailbox can be woken (``wake``: the server announced a new message): it is due at once. A
wake that comes while the mailbox is being polled is kept with the row, and that poll's end
(``finish``) makes it due again at once rather than one interval later: the poll may have
listed the folder before the new message arrived."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Connection, and_, case, func, not_, or_, select, update

from mailintake.store.mailboxes import Schedule, schedule_of
from mailintake.store.tables import leases, mailboxes, workers


@dataclass(frozen=True)
class Claimed:
    """A mailbox this worker polls now, and its failed polls in a row before this one."""

    schedule: Schedule
    failures: int
    was_due: datetime | None  # when it was due (None: never polled)


def _orphaned(live_since: datetime) -> ColumnElement[bool]:
    """Claimed by a worker whose last heartbeat is older than ``live_since`` (or gone)."""
    live = select(workers.c.id).where(workers.c.heartbeat_at >= live_since)
    return and_(mailboxes.c.polled_by.is_not(None), not_(mailboxes.c.polled_by.in_(live)))


def claim(
    conn: Connection,
    worker: str,
    limit: int,
    now: datetime,
    live_since: datetime,
    interval: Callable[[Schedule], float],
    skip: Callable[[Schedule], bool],
) -> list[Claimed]:
    """Claim up to ``limit`` due enabled mailboxes for ``worker``, the longest overdue first.
    Each claimed one is due again one ``interval`` from now (in case the worker dies and
    nobody notices; the poll's end sets the real next time). Those ``skip`` rejects (waiting
    for a person) are not claimed: they are looked at again one interval later, or as soon
    as their authorization state changes (``MailboxQueries.set_auth_state``)."""
    if limit <= 0:
        return []
    orphaned = _orphaned(live_since)
    due = or_(
        and_(
            mailboxes.c.polled_by.is_(None),
            or_(mailboxes.c.next_poll_at.is_(None), mailboxes.c.next_poll_at <= now),
        ),
        orphaned,
    )
    query = (
        select(
            mailboxes.c.name,
            mailboxes.c.enabled,
            mailboxes.c.auth_state,
            mailboxes.c.definition,
            mailboxes.c.poll_failures,
            mailboxes.c.next_poll_at,
        )
        .where(mailboxes.c.enabled.is_(True), due)
        # A dead worker's polls first: their due time was moved one interval on when it
        # claimed them, so by it they would wait behind every mailbox overdue now.
        .order_by(
            case((orphaned, 0), else_=1),
            mailboxes.c.next_poll_at.asc().nulls_first(),
            mailboxes.c.name,
        )
        .limit(limit)  # no more: a row read here stays locked until the claim commits
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    claimed: list[Claimed] = []
    for name, enabled, state, definition, failures, due_at in conn.execute(query).all():
        mailbox = schedule_of(name, enabled, state, definition)
        later = now + timedelta(seconds=interval(mailbox))
        if skip(mailbox):
            conn.execute(
                update(mailboxes)
                .where(mailboxes.c.name == name)
                .values(next_poll_at=later, polled_by=None)
            )
            continue
        conn.execute(
            update(mailboxes)
            .where(mailboxes.c.name == name)
            .values(next_poll_at=later, polled_by=worker, wake_requested_at=None)
        )
        claimed.append(Claimed(mailbox, int(failures or 0), aware(due_at)))
    return claimed


def finish(conn: Connection, name: str, worker: str, next_at: datetime, failures: int) -> None:
    """The poll of ``name`` by ``worker`` ended: when it is due next, failed polls in a row.
    A wake that came during the poll makes it due at once (at the wake's time) instead.
    Nothing changes when another worker has claimed it since (its poll was taken over)."""
    woken = mailboxes.c.wake_requested_at
    conn.execute(
        update(mailboxes)
        .where(mailboxes.c.name == name, mailboxes.c.polled_by == worker)
        .values(
            next_poll_at=case((and_(woken.is_not(None), woken < next_at), woken), else_=next_at),
            poll_failures=failures,
            polled_by=None,
            wake_requested_at=None,
        )
    )


def wake(conn: Connection, name: str, now: datetime) -> bool:
    """Make the enabled mailbox ``name`` due at once (one overdue or never polled keeps its
    place). Being polled now, it is due again as soon as that poll ends (``finish``).
    Whether there is such a mailbox."""
    polled = mailboxes.c.polled_by.is_not(None)
    due = mailboxes.c.next_poll_at
    # One UPDATE, each value decided on the row as it is when the UPDATE gets it: on
    # PostgreSQL a concurrent claim holds the row until it commits, and the values are then
    # computed from the claimed row (read committed re-reads the row it waited for).
    result = conn.execute(
        update(mailboxes)
        .where(mailboxes.c.name == name, mailboxes.c.enabled.is_(True))
        .values(
            next_poll_at=case((polled, due), (or_(due.is_(None), due <= now), due), else_=now),
            wake_requested_at=case(
                (polled, func.coalesce(mailboxes.c.wake_requested_at, now)), else_=None
            ),
        )
    )
    return bool(result.rowcount)


def lease_ends(conn: Connection, name: str) -> datetime | None:
    """When the lease another poll holds on ``name`` expires, if one does."""
    ends: datetime | None = conn.execute(
        select(leases.c.expires_at).where(leases.c.mailbox == name)
    ).scalar_one_or_none()
    return aware(ends)


def next_due(conn: Connection) -> datetime | None:
    """The earliest due time of an enabled mailbox nobody polls now (None: none, or one
    is due now)."""
    earliest: datetime | None = conn.execute(
        select(func.min(mailboxes.c.next_poll_at)).where(
            mailboxes.c.enabled.is_(True), mailboxes.c.polled_by.is_(None)
        )
    ).scalar_one_or_none()
    return aware(earliest)


def due_times(conn: Connection) -> dict[str, datetime | None]:
    """Every enabled mailbox's due time (None: due now, never polled)."""
    rows = conn.execute(
        select(mailboxes.c.name, mailboxes.c.next_poll_at).where(mailboxes.c.enabled.is_(True))
    )
    return {name: aware(due) for name, due in rows}


def aware(moment: datetime | None) -> datetime | None:
    """SQLite gives back naive datetimes: every one stored is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Due:
    """One mailbox's place in the schedule."""

    schedule: Schedule
    next_poll_at: datetime | None  # None: due now
    failures: int  # failed polls in a row
    polled_by: str | None  # the worker whose poll it is now


def listed(conn: Connection) -> list[Due]:
    """Every mailbox's place in the schedule, by name."""
    rows = conn.execute(
        select(
            mailboxes.c.name,
            mailboxes.c.enabled,
            mailboxes.c.auth_state,
            mailboxes.c.definition,
            mailboxes.c.next_poll_at,
            mailboxes.c.poll_failures,
            mailboxes.c.polled_by,
        ).order_by(mailboxes.c.name)
    )
    return [
        Due(schedule_of(name, enabled, state, definition), aware(due), int(failures or 0), by)
        for name, enabled, state, definition, due, failures, by in rows
    ]
