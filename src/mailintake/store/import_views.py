"""What people see of the import records and do with them: counts per mailbox, the recent
imports, and the messages that could not be imported (failed, parked, skipped), which a
person may try again or give up on. The records themselves are written by ``imports``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from mailintake.store.imports import FAILED, PARKED, PROBLEMS, RECORDED, SKIPPED, utcnow
from mailintake.store.tables import imports


def problems(
    conn: Connection,
    mailbox: str,
    *,
    statuses: Sequence[str] = PROBLEMS,
    key: str | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """A mailbox's failed, parked and skipped messages (or those of ``statuses``; the one
    of ``key``), the newest first."""
    query = select(imports).where(
        imports.c.mailbox == mailbox, imports.c.status.in_(list(statuses))
    )
    if key is not None:
        query = query.where(imports.c.key == key)
    rows = conn.execute(
        query.order_by(imports.c.updated_at.desc(), imports.c.id.desc()).limit(limit)
    )
    return [
        {
            "key": r.key,
            "status": r.status,
            "subject": r.subject,
            "from": r.sender,
            "size": r.size,
            "reason": r.error,
            "tries": r.attempts,
            "next_try_at": _iso(r.next_try_at) if r.status == FAILED else None,
            "updated_at": _iso(r.updated_at),
        }
        for r in rows
    ]


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def retry_now(conn: Connection, mailbox: str, key: str) -> bool:
    """A failed, parked or skipped message is tried at the next pass (False: no such one).
    Its tries are kept: failing again parks it again at once."""
    return _settle_problem(conn, mailbox, key, FAILED)


def skip(conn: Connection, mailbox: str, key: str) -> bool:
    """A person gives up on a failed or parked message: never imported, never tried again,
    still listed as skipped (False: no such one)."""
    return _settle_problem(conn, mailbox, key, SKIPPED)


def _settle_problem(conn: Connection, mailbox: str, key: str, status: str) -> bool:
    """Give a message that could not be imported ``status``, with no try scheduled."""
    changed = conn.execute(
        update(imports)
        .where(
            imports.c.mailbox == mailbox,
            imports.c.key == key,
            imports.c.status.in_(PROBLEMS),
        )
        .values(status=status, next_try_at=None, updated_at=utcnow())
    )
    return bool(changed.rowcount)


def counts(conn: Connection) -> dict[str, dict[str, int]]:
    rows = conn.execute(
        select(imports.c.mailbox, imports.c.status, func.count()).group_by(
            imports.c.mailbox, imports.c.status
        )
    )
    result: dict[str, dict[str, int]] = {}
    for mailbox, status, number in rows:
        entry = result.setdefault(
            mailbox, {"imported": 0, "failed": 0, "pending": 0, "parked": 0, "skipped": 0}
        )
        if status in (FAILED, PARKED):  # failed counts every message not imported on its own
            entry["failed"] += number
            if status == PARKED:
                entry["parked"] += number
        elif status == SKIPPED:
            entry["skipped"] += number
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
