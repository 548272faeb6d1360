"""Microsoft Graph change-notification subscriptions, one per mailbox (for its folder): Graph's
id, the URL notified, the expiry, and the ``clientState`` Graph sends back in every
notification, kept encrypted among the secrets (owner kind ``subscription``): whoever reads
the database cannot forge notifications.

A row whose ``subscription_id`` is NULL is a subscription Graph removed: it is created again.
``renew_now`` is Graph asking for a renewal (a ``reauthorizationRequired`` notification)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update

from mailintake.crypto import SecretBox
from mailintake.store import secrets
from mailintake.store.base import now
from mailintake.store.tables import graph_subscriptions as table

KIND = "subscription"  # secrets.owner_kind of a subscription's clientState
FIELD = "client_state"


@dataclass(frozen=True)
class Subscription:
    mailbox: str
    folder: str
    subscription_id: str | None  # None: removed by Graph, to be created again
    notification_url: str
    expires_at: datetime | None
    renew_now: bool


@dataclass(frozen=True)
class Verified:
    """Whose a notification's subscription is, and the clientState it must carry."""

    mailbox: str
    client_state: str


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite gives back naive datetimes: every one stored is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _of(row: Any) -> Subscription:
    return Subscription(
        row.mailbox,
        row.folder,
        row.subscription_id,
        row.notification_url,
        _aware(row.expires_at),
        bool(row.renew_now),
    )


def load(conn: Connection, mailbox: str) -> Subscription | None:
    row = conn.execute(select(table).where(table.c.mailbox == mailbox)).first()
    return None if row is None else _of(row)


def listed(conn: Connection) -> dict[str, Subscription]:
    """Every stored subscription, by mailbox."""
    return {row.mailbox: _of(row) for row in conn.execute(select(table))}


def save(
    conn: Connection,
    box: SecretBox,
    subscription: Subscription,
    client_state: str,
) -> None:
    """Record a subscription Graph has just created (replacing the mailbox's earlier one)."""
    conn.execute(delete(table).where(table.c.mailbox == subscription.mailbox))
    conn.execute(
        table.insert().values(
            mailbox=subscription.mailbox,
            folder=subscription.folder,
            subscription_id=subscription.subscription_id,
            notification_url=subscription.notification_url,
            expires_at=subscription.expires_at,
            renew_now=False,
            updated_at=now(),
        )
    )
    stored = secrets.read_all(conn, KIND, subscription.mailbox).get(FIELD)
    secrets.write(conn, box, KIND, subscription.mailbox, FIELD, client_state, None, stored)


def renewed(conn: Connection, mailbox: str, expires_at: datetime) -> None:
    conn.execute(
        update(table)
        .where(table.c.mailbox == mailbox)
        .values(expires_at=expires_at, renew_now=False, updated_at=now())
    )


def forget(conn: Connection, mailbox: str) -> None:
    """The mailbox has no subscription any more (deleted, push turned off, mailbox gone)."""
    conn.execute(delete(table).where(table.c.mailbox == mailbox))
    secrets.remove(conn, KIND, mailbox)


def verified(conn: Connection, box: SecretBox, subscription_id: str) -> Verified | None:
    """The mailbox and clientState of the subscription ``subscription_id`` (None: not ours)."""
    mailbox = conn.execute(
        select(table.c.mailbox).where(table.c.subscription_id == subscription_id)
    ).scalar_one_or_none()
    if mailbox is None:
        return None
    stored = secrets.read_all(conn, KIND, mailbox).get(FIELD)
    if stored is None:
        return None
    return Verified(mailbox, box.decrypt(stored.ciphertext))


def renew_asked(conn: Connection, subscription_id: str) -> None:
    """Graph asked for the subscription to be reauthorized (renewing does it)."""
    conn.execute(
        update(table)
        .where(table.c.subscription_id == subscription_id)
        .values(renew_now=True, updated_at=now())
    )


def removed(conn: Connection, subscription_id: str) -> None:
    """Graph removed the subscription: it is to be created again."""
    conn.execute(
        update(table)
        .where(table.c.subscription_id == subscription_id)
        .values(subscription_id=None, renew_now=False, updated_at=now())
    )


__all__ = [
    "Subscription",
    "Verified",
    "forget",
    "listed",
    "load",
    "removed",
    "renew_asked",
    "renewed",
    "save",
    "verified",
]
