"""Names may no longer start with '.': authorization servers, outputs and mailboxes given such
a name by earlier versions (``.``, ``..``, ``.incoming``) are renamed, with everything that
refers to them.

A name is also a folder name in the folder output, so ``..`` wrote beside (and over) other
mailboxes' mail; this version refuses such names, and a stored one would no longer read.
Each leading dot becomes ``dot`` (``..`` → ``dotdot``, ``.incoming`` → ``dot-incoming``),
with ``-2``, ``-3``… added if that name is taken. References follow: a mailbox's output and
authorization server (in its columns and its definition), and what is kept under a
mailbox's or output's name (secrets, tokens, import records, leases). Running it again
changes nothing.

Revision ID: 0009
Revises: 0007
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None

_LIMIT = 64


def _table(name: str, *columns: str, json: tuple[str, ...] = ()) -> Any:
    return sa.table(
        name,
        *(sa.column(c, sa.String) for c in columns),
        *(sa.column(c, sa.JSON) for c in json),
    )


_servers = _table("authorization_servers", "name", json=("definition",))
_outputs = _table("outputs", "name", json=("definition",))
_mailboxes = _table("mailboxes", "name", "output", "authorization_server", json=("definition",))
_secrets = _table("secrets", "owner_kind", "owner_name")
_BY_MAILBOX = [_table(t, "mailbox") for t in ("oauth_grants", "access_tokens", "imports", "leases")]


def new_name(old: str, taken: set[str]) -> str:
    rest = old.lstrip(".")
    base = "dot" * (len(old) - len(rest)) + (f"-{rest}" if rest else "")
    candidate = base[:_LIMIT]
    number = 2
    while candidate in taken:
        suffix = f"-{number}"
        candidate = base[: _LIMIT - len(suffix)] + suffix
        number += 1
    return candidate


def _renames(conn: sa.Connection, table: Any) -> dict[str, str]:
    names = {row.name for row in conn.execute(sa.select(table.c.name))}
    taken = set(names)
    renames = {}
    for old in sorted(n for n in names if n.startswith(".")):
        renames[old] = new_name(old, taken)
        taken.add(renames[old])
    return renames


def _rename_rows(conn: sa.Connection, table: Any, renames: dict[str, str]) -> None:
    for old, new in renames.items():
        for row in conn.execute(sa.select(table.c.definition).where(table.c.name == old)):
            definition = dict(row.definition)
            if "name" in definition:
                definition["name"] = new
            conn.execute(
                sa.update(table).where(table.c.name == old).values(name=new, definition=definition)
            )


def _point_mailboxes(conn: sa.Connection, column: str, renames: dict[str, str]) -> None:
    """Mailboxes that refer to a renamed output or server, in the column and definition."""
    for old, new in renames.items():
        query = sa.select(_mailboxes.c.name, _mailboxes.c.definition).where(
            _mailboxes.c[column] == old
        )
        for row in conn.execute(query).all():
            definition = dict(row.definition)
            if column == "output":
                definition["output"] = new
            elif isinstance(definition.get("oauth"), dict):
                definition["oauth"] = {**definition["oauth"], "authorization_server": new}
            conn.execute(
                sa.update(_mailboxes)
                .where(_mailboxes.c.name == row.name)
                .values({column: new, "definition": definition})
            )


def upgrade() -> None:
    conn = op.get_bind()
    servers = _renames(conn, _servers)
    _rename_rows(conn, _servers, servers)
    _point_mailboxes(conn, "authorization_server", servers)

    outputs = _renames(conn, _outputs)
    _rename_rows(conn, _outputs, outputs)
    _point_mailboxes(conn, "output", outputs)

    mailboxes = _renames(conn, _mailboxes)
    _rename_rows(conn, _mailboxes, mailboxes)
    for kind, renames in (("output", outputs), ("mailbox", mailboxes)):
        for old, new in renames.items():
            conn.execute(
                sa.update(_secrets)
                .where(_secrets.c.owner_kind == kind, _secrets.c.owner_name == old)
                .values(owner_name=new)
            )
    for table in _BY_MAILBOX:
        for old, new in mailboxes.items():
            conn.execute(sa.update(table).where(table.c.mailbox == old).values(mailbox=new))


def downgrade() -> None:
    """The earlier names are not restored: they are the ones that did harm."""
