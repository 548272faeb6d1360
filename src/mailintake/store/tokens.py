"""Token rows: the grant (newest refresh token, account) per mailbox and access tokens per
resource, every token encrypted with the secret key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, delete, select, update

from mailintake.crypto import SecretBox
from mailintake.store.tables import access_tokens, oauth_grants


@dataclass(frozen=True)
class GrantRecord:
    mailbox: str
    grant_type: str
    fingerprint: str
    account: str | None
    refresh_token: str | None
    refresh_obtained_at: datetime | None
    authorized_at: datetime
    refusals: int = 0  # refusals not documented as final since the last token obtained
    first_refused_at: datetime | None = None


@dataclass(frozen=True)
class AccessToken:
    resource: str
    token: str
    scopes: tuple[str, ...]
    expires_at: datetime
    obtained_at: datetime


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite drops the zone


def read_grant(conn: Connection, box: SecretBox, mailbox: str) -> GrantRecord | None:
    row = conn.execute(select(oauth_grants).where(oauth_grants.c.mailbox == mailbox)).first()
    if row is None:
        return None
    authorized_at = _utc(row.authorized_at)
    assert authorized_at is not None
    return GrantRecord(
        mailbox=row.mailbox,
        grant_type=row.grant_type,
        fingerprint=row.fingerprint,
        account=row.account,
        refresh_token=box.decrypt(row.refresh_token) if row.refresh_token else None,
        refresh_obtained_at=_utc(row.refresh_obtained_at),
        authorized_at=authorized_at,
        refusals=row.refusals or 0,
        first_refused_at=_utc(row.first_refused_at),
    )


def write_grant(
    conn: Connection,
    box: SecretBox,
    *,
    mailbox: str,
    grant_type: str,
    fingerprint: str,
    account: str | None,
    refresh_token: str | None,
    new_authorization: bool,
) -> None:
    """Store what a token response gave. ``refresh_token`` None keeps the stored one (a
    refresh answer without a new one); a new authorization replaces everything."""
    now = datetime.now(UTC)
    existing = read_grant(conn, box, mailbox)
    values: dict[str, object] = {
        "grant_type": grant_type,
        "fingerprint": fingerprint,
        "updated_at": now,
        "refusals": 0,  # a token was obtained: earlier refusals were momentary
        "first_refused_at": None,
    }
    if account is not None or new_authorization:
        values["account"] = account
    if refresh_token is not None:
        values["refresh_token"] = box.encrypt(refresh_token)
        values["refresh_obtained_at"] = now
    elif new_authorization:
        values["refresh_token"] = None
        values["refresh_obtained_at"] = None
    if new_authorization:
        values["authorized_at"] = now
    if existing is None:
        values.setdefault("authorized_at", now)
        conn.execute(oauth_grants.insert().values(mailbox=mailbox, **values))
    else:
        conn.execute(update(oauth_grants).where(oauth_grants.c.mailbox == mailbox).values(**values))


def record_refusal(conn: Connection, mailbox: str, at: datetime) -> tuple[int, datetime]:
    """Count one refusal of the stored refresh token that is not documented as final; the
    token itself stays. Returns the refusals since the last token obtained and when the
    first of them was."""
    row = conn.execute(
        select(oauth_grants.c.refusals, oauth_grants.c.first_refused_at).where(
            oauth_grants.c.mailbox == mailbox
        )
    ).first()
    if row is None:
        return 1, at
    count = (row.refusals or 0) + 1
    first = _utc(row.first_refused_at) or at
    conn.execute(
        update(oauth_grants)
        .where(oauth_grants.c.mailbox == mailbox)
        .values(refusals=count, first_refused_at=first)
    )
    return count, first


def read_access(
    conn: Connection, box: SecretBox, mailbox: str, resource: str
) -> AccessToken | None:
    row = conn.execute(
        select(access_tokens).where(
            access_tokens.c.mailbox == mailbox, access_tokens.c.resource == resource
        )
    ).first()
    if row is None:
        return None
    expires_at, obtained_at = _utc(row.expires_at), _utc(row.obtained_at)
    assert expires_at is not None
    assert obtained_at is not None
    return AccessToken(
        resource=row.resource,
        token=box.decrypt(row.token),
        scopes=tuple(row.scopes.split()),
        expires_at=expires_at,
        obtained_at=obtained_at,
    )


def write_access(conn: Connection, box: SecretBox, mailbox: str, token: AccessToken) -> None:
    values = {
        "token": box.encrypt(token.token),
        "scopes": " ".join(token.scopes),
        "expires_at": token.expires_at,
        "obtained_at": token.obtained_at,
    }
    done = conn.execute(
        update(access_tokens)
        .where(access_tokens.c.mailbox == mailbox, access_tokens.c.resource == token.resource)
        .values(**values)
    ).rowcount
    if not done:
        conn.execute(
            access_tokens.insert().values(mailbox=mailbox, resource=token.resource, **values)
        )


def forget(conn: Connection, mailbox: str) -> None:
    conn.execute(delete(access_tokens).where(access_tokens.c.mailbox == mailbox))
    conn.execute(delete(oauth_grants).where(oauth_grants.c.mailbox == mailbox))


def forget_access(conn: Connection, mailbox: str) -> None:
    conn.execute(delete(access_tokens).where(access_tokens.c.mailbox == mailbox))


def rotate_all(conn: Connection, box: SecretBox) -> int:
    count = 0
    for row in conn.execute(select(access_tokens.c.id, access_tokens.c.token)).all():
        conn.execute(
            update(access_tokens)
            .where(access_tokens.c.id == row.id)
            .values(token=box.rotate(row.token))
        )
        count += 1
    rows = conn.execute(
        select(oauth_grants.c.mailbox, oauth_grants.c.refresh_token).where(
            oauth_grants.c.refresh_token.is_not(None)
        )
    ).all()
    for row in rows:
        conn.execute(
            update(oauth_grants)
            .where(oauth_grants.c.mailbox == row.mailbox)
            .values(refresh_token=box.rotate(row.refresh_token))
        )
        count += 1
    return count
