"""Client-credentials access tokens, one per application and shared by every mailbox that
signs in with it (oauth.app_key says what makes an application), encrypted like every token.

A token is found by its application key only: a mailbox whose settings change (another
client secret, tenant, scope) has another key and no longer sees the old token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, delete, select, update

from mailintake.crypto import SecretBox
from mailintake.store.tables import app_tokens
from mailintake.store.tokens import AccessToken

# Tokens expired this long ago are removed when another is stored: an application whose
# settings changed leaves its last token behind.
KEEP_EXPIRED = timedelta(days=1)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite drops the zone


def read(conn: Connection, box: SecretBox, app_key: str) -> AccessToken | None:
    row = conn.execute(select(app_tokens).where(app_tokens.c.app_key == app_key)).first()
    if row is None:
        return None
    return AccessToken(
        resource=row.resource,
        token=box.decrypt(row.token),
        scopes=tuple(row.scopes.split()),
        expires_at=_utc(row.expires_at),
        obtained_at=_utc(row.obtained_at),
    )


def write(
    conn: Connection, box: SecretBox, app_key: str, client_id: str, token: AccessToken
) -> None:
    values = {
        "client_id": client_id,
        "resource": token.resource,
        "token": box.encrypt(token.token),
        "scopes": " ".join(token.scopes),
        "expires_at": token.expires_at,
        "obtained_at": token.obtained_at,
    }
    done = conn.execute(
        update(app_tokens).where(app_tokens.c.app_key == app_key).values(**values)
    ).rowcount
    if not done:
        conn.execute(app_tokens.insert().values(app_key=app_key, **values))
    conn.execute(
        delete(app_tokens).where(app_tokens.c.expires_at < datetime.now(UTC) - KEEP_EXPIRED)
    )


def forget_all(conn: Connection) -> int:
    """Remove every application token (a new secret key gives every application another key,
    so each is requested once more). Returns how many there were."""
    return int(conn.execute(delete(app_tokens)).rowcount or 0)
