"""Import records: what was delivered and recorded, what was acknowledged on the server, what
failed and why. Which poll imports which mailbox now is in ``leases``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from mailintake.store import leases
from mailintake.store.tables import imports

RECORDED = "recorded"
ACKNOWLEDGED = "acknowledged"
FAILED = "failed"


@dataclass(frozen=True)
class ImportEntry:
    key: str
    source: dict[str, Any]
    location: str | None = None
    subject: str | None = None
    sender: str | None = None
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Pending:
    key: str
    source: dict[str, Any]


def _now() -> datetime:
    return datetime.now(UTC)


# Statements run for every batch of messages, built once: building one costs more than
# running it (SQLAlchemy constructs and compiles the expression, then makes its cache key).
_STATUSES = select(imports.c.key, imports.c.status).where(
    imports.c.mailbox == bindparam("mailbox"), imports.c.key.in_(bindparam("keys", expanding=True))
)
_ACKNOWLEDGED = (
    update(imports)
    .where(
        imports.c.mailbox == bindparam("in_mailbox"),
        imports.c.key.in_(bindparam("keys", expanding=True)),
    )
    .values(status=ACKNOWLEDGED, acknowledged_at=bindparam("now"), updated_at=bindparam("now"))
)
# What recording a message sets: on a new row, and on the row of an earlier failure.
_RECORDED = (
    "status",
    "source",
    "location",
    "subject",
    "sender",
    "size",
    "sha256",
    "error",
    "imported_at",
    "updated_at",
)
_RECORD: dict[str, Any] = {}  # by dialect name


def _record_statement(dialect: str) -> Any:
    """INSERT, or on a (mailbox, key) already there (a message that failed before), the
    columns of a recorded message: one statement, no look-up first."""
    statement = _RECORD.get(dialect)
    if statement is None:
        insert_of = postgresql.insert if dialect == "postgresql" else sqlite.insert
        fresh = insert_of(imports)
        statement = fresh.on_conflict_do_update(
            index_elements=[imports.c.mailbox, imports.c.key],
            set_={name: fresh.excluded[name] for name in _RECORDED},
        )
        _RECORD[dialect] = statement
    return statement


def statuses(conn: Connection, mailbox: str, keys: Sequence[str]) -> dict[str, str]:
    """The status of each of these keys that is known (chunked: IN lists stay small)."""
    found: dict[str, str] = {}
    for start in range(0, len(keys), 500):
        chunk = list(keys[start : start + 500])
        rows = conn.execute(_STATUSES, {"mailbox": mailbox, "keys": chunk})
        found.update({r.key: r.status for r in rows})
    return found


def record(conn: Connection, mailbox: str, entries: Sequence[ImportEntry]) -> None:
    """Record delivered messages: one statement for the batch, in one transaction."""
    if not entries:
        return
    now = _now()
    conn.execute(
        _record_statement(conn.dialect.name),
        [
            {
                "mailbox": mailbox,
                "key": entry.key,
                "attempts": 1,
                "status": RECORDED,
                "source": entry.source,
                "location": entry.location,
                "subject": (entry.subject or "")[:1000] or None,
                "sender": (entry.sender or "")[:1000] or None,
                "size": entry.size,
                "sha256": entry.sha256,
                "error": None,
                "imported_at": now,
                "updated_at": now,
            }
            for entry in entries
        ],
    )


def acknowledged(conn: Connection, mailbox: str, keys: Sequence[str]) -> None:
    now = _now()
    for start in range(0, len(keys), 500):
        chunk = list(keys[start : start + 500])
        conn.execute(_ACKNOWLEDGED, {"in_mailbox": mailbox, "keys": chunk, "now": now})


def failed(
    conn: Connection,
    mailbox: str,
    key: str,
    source: dict[str, Any],
    error: str,
    *,
    subject: str | None = None,
    size: int | None = None,
) -> None:
    """A message that stays on the server: recorded with the reason, shown in status."""
    now = _now()
    done = conn.execute(
        update(imports)
        .where(imports.c.mailbox == mailbox, imports.c.key == key, imports.c.status == FAILED)
        .values(error=error[:2000], attempts=imports.c.attempts + 1, updated_at=now)
    ).rowcount
    if not done:
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(imports).values(
                        mailbox=mailbox,
                        key=key,
                        status=FAILED,
                        source=source,
                        error=error[:2000],
                        subject=subject,
                        size=size,
                        attempts=1,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            pass  # recorded meanwhile: it is not a failure any more


def pending_acknowledgements(conn: Connection, mailbox: str) -> list[Pending]:
    rows = conn.execute(
        select(imports.c.key, imports.c.source)
        .where(imports.c.mailbox == mailbox, imports.c.status == RECORDED)
        .order_by(imports.c.id)
    )
    return [Pending(r.key, dict(r.source)) for r in rows]


def counts(conn: Connection) -> dict[str, dict[str, int]]:
    rows = conn.execute(
        select(imports.c.mailbox, imports.c.status, func.count()).group_by(
            imports.c.mailbox, imports.c.status
        )
    )
    result: dict[str, dict[str, int]] = {}
    for mailbox, status, number in rows:
        entry = result.setdefault(mailbox, {"imported": 0, "failed": 0, "pending": 0})
        if status == FAILED:
            entry["failed"] += number
        else:
            entry["imported"] += number
            if status == RECORDED:
                entry["pending"] += number
    return result


def recent(conn: Connection, mailbox: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    query = select(imports).order_by(imports.c.updated_at.desc()).limit(limit)
    if mailbox is not None:
        query = query.where(imports.c.mailbox == mailbox)
    return [
        {
            "mailbox": r.mailbox,
            "key": r.key,
            "status": r.status,
            "subject": r.subject,
            "from": r.sender,
            "size": r.size,
            "location": r.location,
            "error": r.error,
            "imported_at": r.imported_at.isoformat() if r.imported_at else None,
        }
        for r in conn.execute(query)
    ]


def forget_mailbox(conn: Connection, mailbox: str) -> None:
    conn.execute(delete(imports).where(imports.c.mailbox == mailbox))
    leases.forget(conn, mailbox)
