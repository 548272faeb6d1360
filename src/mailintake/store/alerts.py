"""What was sent about each alert condition to each channel, and the claims that make one
send happen once across workers.

A send is claimed before it is made: a row is inserted (a condition new to the channel) or
updated on the ``version`` read, and only while no other claim holds it. Exactly one of
several workers gets the claim (the primary key refuses a second insert; the version check a
second update); it sends, then records the delivery (``delivered``), the failure
(``failed``: the next evaluation tries again) or the recovery (``cleared``: the row goes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Connection, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from mailintake.store.tables import alert_state


@dataclass(frozen=True)
class SentRecord:
    key: str
    channel: str
    mailbox: str | None
    kind: str
    state: str | None  # the state last delivered; None: nothing delivered yet
    summary: str | None
    since: datetime | None
    ends_at: datetime | None
    first_sent_at: datetime | None
    last_sent_at: datetime | None
    version: int
    claimed_until: datetime | None
    failures: int
    last_error: str | None


@dataclass(frozen=True)
class Subject:
    """What a send is about (a condition's fields), recorded with the claim."""

    key: str
    mailbox: str | None
    kind: str
    summary: str
    since: datetime
    ends_at: datetime | None = None


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)  # SQLite gives naive datetimes back


def records(conn: Connection) -> list[SentRecord]:
    rows = conn.execute(
        select(alert_state).order_by(alert_state.c.key, alert_state.c.channel)
    ).all()
    return [
        SentRecord(
            key=r.key,
            channel=r.channel,
            mailbox=r.mailbox,
            kind=r.kind,
            state=r.state,
            summary=r.summary,
            since=_aware(r.since),
            ends_at=_aware(r.ends_at),
            first_sent_at=_aware(r.first_sent_at),
            last_sent_at=_aware(r.last_sent_at),
            version=r.version,
            claimed_until=_aware(r.claimed_until),
            failures=r.failures,
            last_error=r.last_error,
        )
        for r in rows
    ]


def claim_new(
    conn: Connection, subject: Subject, channel: str, owner: str, now: datetime, until: datetime
) -> bool:
    """Claim the first send about ``subject`` to ``channel``; False if another has it."""
    try:
        with conn.begin_nested():
            conn.execute(
                insert(alert_state).values(
                    key=subject.key,
                    channel=channel,
                    mailbox=subject.mailbox,
                    kind=subject.kind,
                    summary=subject.summary,
                    since=subject.since,
                    ends_at=subject.ends_at,
                    version=0,
                    claimed_by=owner,
                    claimed_until=until,
                    failures=0,
                )
            )
    except IntegrityError:
        return False
    return True


def claim(
    conn: Connection,
    key: str,
    channel: str,
    version: int,
    owner: str,
    now: datetime,
    until: datetime,
) -> bool:
    """Claim the next send about ``key`` to ``channel``, as of the ``version`` read; False if
    the row changed since, or another claim holds it."""
    taken = conn.execute(
        update(alert_state)
        .where(
            alert_state.c.key == key,
            alert_state.c.channel == channel,
            alert_state.c.version == version,
            or_(alert_state.c.claimed_until.is_(None), alert_state.c.claimed_until < now),
        )
        .values(claimed_by=owner, claimed_until=until, version=version + 1)
    ).rowcount
    return bool(taken)


def _mine(key: str, channel: str, owner: str) -> ColumnElement[bool]:
    return and_(
        alert_state.c.key == key,
        alert_state.c.channel == channel,
        alert_state.c.claimed_by == owner,
    )


def delivered(
    conn: Connection, subject: Subject, channel: str, state: str, owner: str, now: datetime
) -> None:
    """Record that ``state`` of ``subject`` reached ``channel`` at ``now``."""
    row = conn.execute(
        select(alert_state.c.first_sent_at).where(_mine(subject.key, channel, owner))
    ).first()
    if row is None:
        return  # the claim ran out and another took over: it records its own send
    conn.execute(
        update(alert_state)
        .where(_mine(subject.key, channel, owner))
        .values(
            mailbox=subject.mailbox,
            kind=subject.kind,
            state=state,
            summary=subject.summary,
            since=subject.since,
            ends_at=subject.ends_at,
            first_sent_at=row.first_sent_at or now,
            last_sent_at=now,
            version=alert_state.c.version + 1,
            claimed_by=None,
            claimed_until=None,
            failures=0,
            last_error=None,
            last_tried_at=now,
        )
    )


def failed(
    conn: Connection, key: str, channel: str, owner: str, reason: str, now: datetime
) -> None:
    """Release the claim after a failed send: the next evaluation tries again."""
    conn.execute(
        update(alert_state)
        .where(_mine(key, channel, owner))
        .values(
            version=alert_state.c.version + 1,
            claimed_by=None,
            claimed_until=None,
            failures=alert_state.c.failures + 1,
            last_error=reason,
            last_tried_at=now,
        )
    )


def cleared(conn: Connection, key: str, channel: str, owner: str) -> None:
    """The recovery was sent: nothing more is owed about ``key`` on ``channel``."""
    conn.execute(delete(alert_state).where(_mine(key, channel, owner)))


def forget(conn: Connection, key: str, channel: str, version: int, now: datetime) -> bool:
    """Drop a row nothing more is owed for (never delivered, or its channel is gone), unless
    it changed since ``version`` was read or a claim holds it."""
    gone = conn.execute(
        delete(alert_state).where(
            alert_state.c.key == key,
            alert_state.c.channel == channel,
            alert_state.c.version == version,
            or_(alert_state.c.claimed_until.is_(None), alert_state.c.claimed_until < now),
        )
    ).rowcount
    return bool(gone)
