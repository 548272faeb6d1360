"""Where a mailbox's import stands in a folder (``checkpoints``), and what a pass that resumes
from there needs from the import records: the messages that failed (tried again from this
list, never by listing the folder again), and the Message-IDs and sizes imported before (to
screen a folder recreated on the server). How a pass uses them: engine.checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from mailintake.store import imports as records
from mailintake.store.tables import checkpoints, imports


@dataclass(frozen=True)
class Checkpoint:
    """``last_uid``: every message of the folder (at ``uidvalidity``) whose UID is at or
    below it is recorded, or in the list of failures, or gone from the server."""

    folder: str
    uidvalidity: int | None = None
    last_uid: int = 0
    cursor: str | None = None


@dataclass(frozen=True)
class Failure:
    """A message that failed (``records.FAILED``; ``due``: its next try has come) or was
    parked: where the server has it."""

    key: str
    source: dict[str, Any]
    due: bool


def load(conn: Connection, mailbox: str, folder: str) -> Checkpoint | None:
    row = conn.execute(
        select(checkpoints).where(checkpoints.c.mailbox == mailbox, checkpoints.c.folder == folder)
    ).first()
    if row is None:
        return None
    return Checkpoint(
        folder,
        None if row.uidvalidity is None else int(row.uidvalidity),
        int(row.last_uid or 0),
        row.cursor,
    )


_SAVED = ("uidvalidity", "last_uid", "cursor", "updated_at")
_SAVE: dict[str, Any] = {}  # by dialect name: built once (it runs after every batch)


def _save_statement(dialect: str) -> Any:
    statement = _SAVE.get(dialect)
    if statement is None:
        insert_of = postgresql.insert if dialect == "postgresql" else sqlite.insert
        fresh = insert_of(checkpoints)
        statement = _SAVE[dialect] = fresh.on_conflict_do_update(
            index_elements=[checkpoints.c.mailbox, checkpoints.c.folder],
            set_={name: fresh.excluded[name] for name in _SAVED},
        )
    return statement


def save(conn: Connection, mailbox: str, checkpoint: Checkpoint) -> None:
    """Insert or replace the mailbox's checkpoint for the checkpoint's folder."""
    conn.execute(
        _save_statement(conn.dialect.name),
        {
            "mailbox": mailbox,
            "folder": checkpoint.folder,
            "uidvalidity": checkpoint.uidvalidity,
            "last_uid": checkpoint.last_uid,
            "cursor": checkpoint.cursor,
            "updated_at": datetime.now(UTC),
        },
    )


def failures(conn: Connection, mailbox: str, now: datetime) -> list[Failure]:
    """The mailbox's failed and parked messages (skipped ones are never tried again)."""
    rows = conn.execute(
        select(imports.c.key, imports.c.source, imports.c.status, imports.c.next_try_at).where(
            imports.c.mailbox == mailbox,
            imports.c.status.in_([records.FAILED, records.PARKED]),
        )
    )
    found = []
    for row in rows:
        due = records.status_at(row.status, row.next_try_at, now) == records.FAILED
        found.append(Failure(row.key, dict(row.source), due))
    return found


def earlier_messages(conn: Connection, mailbox: str) -> set[tuple[str, int]]:
    """The Message-ID and size of every message of the mailbox imported so far."""
    rows = conn.execute(
        select(imports.c.message_id, imports.c.size).where(
            imports.c.mailbox == mailbox,
            imports.c.status.in_([records.RECORDED, records.ACKNOWLEDGED]),
            imports.c.message_id.is_not(None),
            imports.c.size.is_not(None),
        )
    )
    return {(str(message_id), int(size)) for message_id, size in rows}


__all__ = ["Checkpoint", "Failure", "earlier_messages", "failures", "load", "save"]
