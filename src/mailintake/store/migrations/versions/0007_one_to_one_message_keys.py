"""Message keys one to one: import records of POP3 and IMAP messages take the key this
version gives them, found from the identifier each record keeps in ``source``.

Earlier versions replaced every run of characters other than letters, digits, '.', '_' and
'-' with '_' and stripped dots at the ends, so that POP3 UIDLs such as ``AAMk+x1`` and
``AAMk/x1`` (or IMAP folders such as ``a b`` and ``a/b``, less a 24-bit hash) could share a
key. Keys of identifiers that are already plain names stay as they were; the others become
``<readable part>~<16 hex digits of SHA-256 of the identifier>`` (mailintake.keys). A
record whose old key several messages shared belongs to the one its ``source`` names (the
message that was imported): it moves to that message's key, and the others, never imported,
are imported by the next pass. A record whose key is not the one the earlier rules gave
its ``source`` is left as it is. Running it again changes nothing.

The rules are copied here, not imported: this migration must keep doing what it did.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_PLAIN = re.compile(r"[A-Za-z0-9-](?:[A-Za-z0-9._-]*[A-Za-z0-9-])?")
_CHUNK = 2000

_imports = sa.table(
    "imports",
    sa.column("id", sa.Integer),
    sa.column("mailbox", sa.String),
    sa.column("key", sa.String),
    sa.column("source", sa.JSON),
)


def _former_part(text: str, limit: int) -> str:
    return _UNSAFE.sub("_", text)[:limit].strip("._") or "x"


def _part(text: str, limit: int) -> str:
    if len(text) <= limit and _PLAIN.fullmatch(text):
        return text
    readable = _UNSAFE.sub("_", text)[: limit - 17].strip("._") or "x"
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{readable}~{digest}"


def keys_of(source: Any) -> tuple[str, str] | None:
    """(the key earlier versions gave the message with this source, the key it has now)."""
    if not isinstance(source, dict):
        return None
    if isinstance(source.get("uidl"), str):
        uidl = source["uidl"]
        return f"pop3-{_former_part(uidl, 100)}", f"pop3-{_part(uidl, 100)}"
    if {"folder", "uidvalidity", "uid"} <= source.keys():
        folder = str(source["folder"])
        tail = f"{hashlib.sha256(folder.encode()).hexdigest()[:6]}-{source['uidvalidity']}"
        return (
            f"imap-{_former_part(folder, 30)}-{tail}-{source['uid']}",
            f"imap-{_part(folder, 30)}-{tail}-{source['uid']}",
        )
    return None


def _rows(conn: sa.Connection) -> Iterator[list[Any]]:
    """The records of POP3 and IMAP messages, a chunk at a time in id order."""
    last = 0
    while True:
        chunk = list(
            conn.execute(
                sa.select(_imports.c.id, _imports.c.mailbox, _imports.c.key, _imports.c.source)
                .where(
                    _imports.c.id > last,
                    sa.or_(_imports.c.key.like("pop3-%"), _imports.c.key.like("imap-%")),
                )
                .order_by(_imports.c.id)
                .limit(_CHUNK)
            )
        )
        if not chunk:
            return
        yield chunk
        last = chunk[-1].id


def upgrade() -> None:
    conn = op.get_bind()
    renamed = sa.update(_imports).where(_imports.c.id == sa.bindparam("row_id"))
    renamed = renamed.values(key=sa.bindparam("new_key"))
    for chunk in _rows(conn):
        changes = []
        for row in chunk:
            keys = keys_of(row.source)
            if keys is not None and keys[0] == row.key and keys[1] != row.key:
                changes.append({"row_id": row.id, "new_key": keys[1]})
        if changes:
            conn.execute(renamed, changes)


def downgrade() -> None:
    """Back to the earlier keys, where no other record of the mailbox holds one already
    (of records that shared a key, the first keeps it)."""
    conn = op.get_bind()
    for chunk in _rows(conn):
        for row in chunk:
            keys = keys_of(row.source)
            if keys is None or keys[1] != row.key or keys[0] == row.key:
                continue
            taken = conn.execute(
                sa.select(_imports.c.id).where(
                    _imports.c.mailbox == row.mailbox, _imports.c.key == keys[0]
                )
            ).first()
            if taken is None:
                conn.execute(sa.update(_imports).where(_imports.c.id == row.id).values(key=keys[0]))
