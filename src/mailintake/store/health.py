"""What a mailbox's health and its known ends are decided from: poll outcomes in a row, the
health recorded with when it began, the age of each refresh token, and imports per hour."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, case, select, update

from mailintake.store import imports as imports_store
from mailintake.store.tables import imports, mailboxes, oauth_grants


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite drops the zone


@dataclass(frozen=True)
class MailboxFacts:
    """One mailbox's row as health reads it (no secrets)."""

    name: str
    enabled: bool
    auth_state: str
    auth_detail: str | None
    authorization_server: str
    definition: dict[str, Any]
    last_poll_at: datetime | None
    last_error: str | None
    last_success_at: datetime | None
    failures_in_a_row: int
    first_failure_at: datetime | None
    health: str | None
    health_since: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def oauth(self) -> dict[str, Any] | None:
        value = self.definition.get("oauth")
        return value if isinstance(value, dict) else None

    @property
    def grant_type(self) -> str | None:
        oauth = self.oauth
        return str(oauth["grant_type"]) if oauth and oauth.get("grant_type") else None

    @property
    def poll_interval(self) -> int | None:
        value = self.definition.get("poll_interval")
        return int(value) if value is not None else None


@dataclass(frozen=True)
class GrantAge:
    """When a mailbox's refresh token was obtained and last used (a token answer)."""

    mailbox: str
    grant_type: str
    has_refresh_token: bool
    refresh_obtained_at: datetime | None
    used_at: datetime  # the last token answer: the refresh token was used or obtained
    authorized_at: datetime


def facts(conn: Connection, name: str | None = None) -> list[MailboxFacts]:
    query = select(mailboxes).order_by(mailboxes.c.name)
    if name is not None:
        query = query.where(mailboxes.c.name == name)
    found = []
    for row in conn.execute(query):
        created, changed = _utc(row.created_at), _utc(row.updated_at)
        assert created is not None
        assert changed is not None
        found.append(
            MailboxFacts(
                name=row.name,
                enabled=bool(row.enabled),
                auth_state=row.auth_state,
                auth_detail=row.auth_detail,
                authorization_server=row.authorization_server,
                definition=dict(row.definition),
                last_poll_at=_utc(row.last_poll_at),
                last_error=row.last_error,
                last_success_at=_utc(row.last_success_at),
                failures_in_a_row=row.failures_in_a_row or 0,
                first_failure_at=_utc(row.first_failure_at),
                health=row.health,
                health_since=_utc(row.health_since),
                created_at=created,
                updated_at=changed,
            )
        )
    return found


def record_poll(conn: Connection, name: str, error: str | None, at: datetime) -> None:
    """Count the poll's outcome: a success ends a run of failures, a failure lengthens it."""
    if error is None:
        values: dict[str, Any] = {
            "last_success_at": at,
            "failures_in_a_row": 0,
            "first_failure_at": None,
        }
    else:
        values = {
            "failures_in_a_row": mailboxes.c.failures_in_a_row + 1,
            "first_failure_at": case(
                (mailboxes.c.first_failure_at.is_(None), at), else_=mailboxes.c.first_failure_at
            ),
        }
    conn.execute(update(mailboxes).where(mailboxes.c.name == name).values(**values))


def set_health(conn: Connection, name: str, health: str, since: datetime) -> None:
    conn.execute(
        update(mailboxes).where(mailboxes.c.name == name).values(health=health, health_since=since)
    )


def grant_ages(conn: Connection, mailbox: str | None = None) -> list[GrantAge]:
    columns = (
        oauth_grants.c.mailbox,
        oauth_grants.c.grant_type,
        oauth_grants.c.refresh_token.is_not(None).label("has_refresh"),
        oauth_grants.c.refresh_obtained_at,
        oauth_grants.c.updated_at,
        oauth_grants.c.authorized_at,
    )
    query = select(*columns).order_by(oauth_grants.c.mailbox)
    if mailbox is not None:
        query = query.where(oauth_grants.c.mailbox == mailbox)
    found = []
    for row in conn.execute(query):
        used, authorized = _utc(row.updated_at), _utc(row.authorized_at)
        assert used is not None
        assert authorized is not None
        found.append(
            GrantAge(
                mailbox=row.mailbox,
                grant_type=row.grant_type,
                has_refresh_token=bool(row.has_refresh),
                refresh_obtained_at=_utc(row.refresh_obtained_at),
                used_at=used,
                authorized_at=authorized,
            )
        )
    return found


@dataclass(frozen=True)
class Activity:
    """When messages were imported and when messages failed, since a time."""

    imported: Sequence[datetime]
    failed: Sequence[datetime]


def activity(conn: Connection, since: datetime) -> Activity:
    """Import times (each imported message) and failure times (each message whose last try
    failed, by that try) since ``since``; only the timestamps are read."""
    imported = conn.execute(
        select(imports.c.imported_at).where(
            imports.c.imported_at >= since,
            imports.c.status.in_([imports_store.RECORDED, imports_store.ACKNOWLEDGED]),
        )
    ).scalars()
    failed = conn.execute(
        select(imports.c.updated_at).where(
            imports.c.updated_at >= since,
            imports.c.status.in_([imports_store.FAILED, imports_store.PARKED]),
        )
    ).scalars()
    return Activity(
        imported=[t for t in (_utc(v) for v in imported) if t is not None],
        failed=[t for t in (_utc(v) for v in failed) if t is not None],
    )
