"""Secret rows: encrypted values keyed by (owner kind, owner name, field)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, delete, select, update

from mailintake.crypto import SecretBox
from mailintake.store.tables import secrets


@dataclass(frozen=True)
class StoredSecret:
    field: str
    ciphertext: str
    template: str | None


def read_all(conn: Connection, kind: str, name: str) -> dict[str, StoredSecret]:
    rows = conn.execute(
        select(secrets.c.field, secrets.c.ciphertext, secrets.c.template).where(
            secrets.c.owner_kind == kind, secrets.c.owner_name == name
        )
    )
    return {r.field: StoredSecret(r.field, r.ciphertext, r.template) for r in rows}


def keys(conn: Connection) -> frozenset[tuple[str, str, str]]:
    rows = conn.execute(select(secrets.c.owner_kind, secrets.c.owner_name, secrets.c.field))
    return frozenset((_section(r.owner_kind), r.owner_name, r.field) for r in rows)


def _section(kind: str) -> str:
    return {"mailbox": "mailboxes", "output": "outputs", "alert_channel": "alerts.channels"}.get(
        kind, kind
    )


def write(
    conn: Connection,
    box: SecretBox,
    kind: str,
    name: str,
    field: str,
    value: str,
    template: str | None,
    existing: StoredSecret | None,
) -> bool:
    """Store ``value``; returns False (and writes nothing) when it is already stored."""
    if existing is not None:
        if existing.template == template and box.decrypt(existing.ciphertext) == value:
            return False
        conn.execute(
            update(secrets)
            .where(
                secrets.c.owner_kind == kind,
                secrets.c.owner_name == name,
                secrets.c.field == field,
            )
            .values(ciphertext=box.encrypt(value), template=template, updated_at=_now())
        )
        return True
    conn.execute(
        secrets.insert().values(
            owner_kind=kind,
            owner_name=name,
            field=field,
            ciphertext=box.encrypt(value),
            template=template,
            updated_at=_now(),
        )
    )
    return True


def remove(conn: Connection, kind: str, name: str, field: str | None = None) -> int:
    stmt = delete(secrets).where(secrets.c.owner_kind == kind, secrets.c.owner_name == name)
    if field is not None:
        stmt = stmt.where(secrets.c.field == field)
    return conn.execute(stmt).rowcount


def rotate_all(conn: Connection, box: SecretBox) -> int:
    rows = conn.execute(select(secrets.c.id, secrets.c.ciphertext)).all()
    for row in rows:
        conn.execute(
            update(secrets)
            .where(secrets.c.id == row.id)
            .values(ciphertext=box.rotate(row.ciphertext), updated_at=_now())
        )
    return len(rows)


def _now() -> datetime:
    return datetime.now(UTC)
