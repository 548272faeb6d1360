"""Import records: what was delivered and recorded, what was acknowledged on the server, what
failed and why. Which poll imports which mailbox now is in ``leases``.

A message the server could not give (engine.retries) is ``failed`` with the time of its next
try, ``parked`` once tried too often (until a person says ``retry`` or ``skip``), ``skipped``
when a person said so: never imported, never tried again, still listed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from mailintake.store import leases
from mailintake.store.tables import checkpoints, imports

RECORDED = "recorded"
ACKNOWLEDGED = "acknowledged"
FAILED = "failed"
PARKED = "parked"
SKIPPED = "skipped"
WAITING = "waiting"  # not a stored status: a failed message whose next try is not due yet
# Messages a person may act on (list, retry, skip).
PROBLEMS = (FAILED, PARKED, SKIPPED)


@dataclass(frozen=True)
class ImportEntry:
    key: str
    source: dict[str, Any]
    location: str | None = None
    subject: str | None = None
    sender: str | None = None
    size: int | None = None
    sha256: str | None = None
    message_id: str | None = None


@dataclass(frozen=True)
class Pending:
    key: str
    source: dict[str, Any]


def utcnow() -> datetime:
    return datetime.now(UTC)


# Statements run for every batch of messages, built once: building one costs more than
# running it (SQLAlchemy constructs and compiles the expression, then makes its cache key).
_STATUSES = select(imports.c.key, imports.c.status, imports.c.next_try_at).where(
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
    "message_id",
    "error",
    "imported_at",
    "updated_at",
)
# The columns a recorded message's row is inserted with, in this order.
_INSERTED = ("mailbox", "key", "attempts", *_RECORDED)


@dataclass(frozen=True)
class _Compiled:
    """The record statement as the database driver takes it, and the columns' conversions
    (JSON, and SQLite's text dates): what SQLAlchemy would do for every row of every batch,
    worked out once."""

    sql: str
    positional: bool  # the driver takes tuples in ``order`` (SQLite), or dicts
    order: tuple[str, ...]
    convert: dict[str, Any]  # column -> its bind processor


_RECORD_COMPILED: dict[str, _Compiled] = {}  # by dialect name


def _record_statement(dialect: str) -> Any:
    """INSERT, or on a (mailbox, key) already there (a message that failed before), the
    columns of a recorded message: one statement, no look-up first."""
    insert_of = postgresql.insert if dialect == "postgresql" else sqlite.insert
    fresh = insert_of(imports)
    return fresh.on_conflict_do_update(
        index_elements=[imports.c.mailbox, imports.c.key],
        set_={name: fresh.excluded[name] for name in _RECORDED},
    )


def _compiled(conn: Connection) -> _Compiled:
    dialect = conn.dialect
    found = _RECORD_COMPILED.get(dialect.name)
    if found is None:
        compiled = _record_statement(dialect.name).compile(
            dialect=dialect, column_keys=list(_INSERTED)
        )
        order = tuple(compiled.positiontup or ()) if compiled.positional else _INSERTED
        convert = {}
        for name in _INSERTED:
            process = imports.c[name].type._cached_bind_processor(dialect)
            if process is not None:
                convert[name] = process
        found = _RECORD_COMPILED[dialect.name] = _Compiled(
            compiled.string, bool(compiled.positional), order, convert
        )
    return found


def statuses(
    conn: Connection, mailbox: str, keys: Sequence[str], now: datetime | None = None
) -> dict[str, str]:
    """The status of each of these keys that is known (chunked: IN lists stay small). With
    ``now``, a failed message whose next try is later is ``WAITING``."""
    found: dict[str, str] = {}
    for start in range(0, len(keys), 500):
        chunk = list(keys[start : start + 500])
        rows = conn.execute(_STATUSES, {"mailbox": mailbox, "keys": chunk})
        found.update({r.key: status_at(r.status, r.next_try_at, now) for r in rows})
    return found


def status_at(status: str, next_try: datetime | None, now: datetime | None) -> str:
    if status != FAILED or now is None or next_try is None:
        return status
    if next_try.tzinfo is None:  # SQLite gives naive datetimes back
        next_try = next_try.replace(tzinfo=UTC)
    return WAITING if next_try > now else FAILED


@dataclass(frozen=True)
class AllStatuses:
    """Every key of a mailbox by status: recorded, acknowledged, and the others (failed,
    waiting, parked, skipped: few) with their status."""

    recorded: set[str]
    acknowledged: set[str]
    others: dict[str, str]

    def status(self, key: str) -> str | None:
        if key in self.acknowledged:
            return ACKNOWLEDGED
        return RECORDED if key in self.recorded else self.others.get(key)


def all_statuses(conn: Connection, mailbox: str, now: datetime | None = None) -> AllStatuses:
    """The status of every key of the mailbox, in one query read as plain rows (a listing of
    tens of thousands of keys is screened with set operations, not a query per chunk)."""
    acknowledged = set(_first_column(conn, _ACKNOWLEDGED_KEYS, {"mailbox": mailbox}))
    recorded: set[str] = set()
    others: dict[str, str] = {}
    for key, status, next_try in conn.execute(_NOT_ACKNOWLEDGED, {"mailbox": mailbox}):
        if status == RECORDED:
            recorded.add(key)
        else:
            others[key] = status_at(status, next_try, now)
    return AllStatuses(recorded, acknowledged, others)


# Nearly every key of a mailbox is acknowledged: those are read as plain values, straight
# from the database driver (a fifth of what reading them as SQLAlchemy rows costs); the
# others (recorded but not acknowledged yet, failed, parked, skipped) are few.
_ACKNOWLEDGED_KEYS = select(imports.c.key).where(
    imports.c.mailbox == bindparam("mailbox"), imports.c.status == ACKNOWLEDGED
)
_NOT_ACKNOWLEDGED = select(imports.c.key, imports.c.status, imports.c.next_try_at).where(
    imports.c.mailbox == bindparam("mailbox"), imports.c.status != ACKNOWLEDGED
)
_COMPILED: dict[tuple[int, str], Any] = {}


def _first_column(conn: Connection, statement: Any, params: dict[str, Any]) -> list[Any]:
    """The first column of every row of ``statement``, fetched at once by the driver, in
    the connection's transaction."""
    cached = (id(statement), conn.dialect.name)
    compiled = _COMPILED.get(cached)
    if compiled is None:
        compiled = _COMPILED[cached] = statement.compile(
            dialect=conn.dialect, compile_kwargs={"render_postcompile": True}
        )
    values = compiled.construct_params(params)
    arguments: Any = (
        tuple(values[name] for name in compiled.positiontup) if compiled.positional else values
    )
    cursor = conn.connection.cursor()
    try:
        cursor.execute(str(compiled), arguments)
        return list(map(itemgetter(0), cursor.fetchall()))
    finally:
        cursor.close()


def record(conn: Connection, mailbox: str, entries: Sequence[ImportEntry]) -> None:
    """Record delivered messages: one statement for the batch, in one transaction. Runs for
    every batch of an import: the statement goes to the driver as compiled once
    (``_compiled``), with each value converted as SQLAlchemy would
    (tests/unit/store/test_imports_record.py compares both)."""
    if not entries:
        return
    compiled = _compiled(conn)
    convert = compiled.convert
    now = utcnow()
    shared: dict[str, Any] = {
        "mailbox": mailbox,
        "attempts": 1,
        "status": RECORDED,
        "error": None,
        "imported_at": now,
        "updated_at": now,
    }
    for name, value in shared.items():  # the same for every row: converted once
        if name in convert and value is not None:
            shared[name] = convert[name](value)
    process_source = convert.get("source")
    rows = []
    for entry in entries:
        row = dict(shared)
        row["key"] = entry.key
        row["source"] = process_source(entry.source) if process_source else entry.source
        row["location"] = entry.location
        row["subject"] = (entry.subject or "")[:1000] or None
        row["sender"] = (entry.sender or "")[:1000] or None
        row["size"] = entry.size
        row["sha256"] = entry.sha256
        row["message_id"] = (entry.message_id or "")[:1000] or None
        rows.append(row)
    if compiled.positional:
        order = compiled.order
        conn.exec_driver_sql(compiled.sql, [tuple(row[name] for name in order) for row in rows])
    else:
        conn.exec_driver_sql(compiled.sql, rows)


def acknowledged(conn: Connection, mailbox: str, keys: Sequence[str]) -> None:
    now = utcnow()
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
    sender: str | None = None,
    size: int | None = None,
    next_try: datetime | None = None,
    parked: bool = False,
) -> None:
    """A message that stays on the server: recorded with the reason, shown in status; tried
    again at ``next_try`` (None: at the next pass), or ``parked`` until a person acts."""
    now = utcnow()
    status = PARKED if parked else FAILED
    values: dict[str, Any] = {
        "error": error[:2000],
        "attempts": imports.c.attempts + 1,
        "status": status,
        "next_try_at": next_try,
        "updated_at": now,
    }
    if subject is not None:
        values["subject"] = subject[:1000]
    if sender is not None:
        values["sender"] = sender[:1000]
    if size is not None:
        values["size"] = size
    done = conn.execute(
        update(imports)
        .where(imports.c.mailbox == mailbox, imports.c.key == key, imports.c.status == FAILED)
        .values(**values)
    ).rowcount
    if not done:
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(imports).values(
                        mailbox=mailbox,
                        key=key,
                        status=status,
                        source=source,
                        error=error[:2000],
                        subject=(subject or "")[:1000] or None,
                        sender=(sender or "")[:1000] or None,
                        size=size,
                        attempts=1,
                        next_try_at=next_try,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            pass  # recorded meanwhile (not a failure any more), or parked or skipped


def forget_gone(conn: Connection, mailbox: str, listed: set[str]) -> int:
    """After a whole listing: failed and parked messages the server no longer lists (deleted
    or moved by someone, or gone before their download) are not listed as failed any more.
    Skipped ones stay: a person's word holds if the message comes back."""
    rows = conn.execute(
        select(imports.c.id, imports.c.key).where(
            imports.c.mailbox == mailbox, imports.c.status.in_([FAILED, PARKED])
        )
    )
    gone = [r.id for r in rows if r.key not in listed]
    for start in range(0, len(gone), 500):
        conn.execute(delete(imports).where(imports.c.id.in_(gone[start : start + 500])))
    return len(gone)


def tries(conn: Connection, mailbox: str, key: str) -> int:
    """How often a message failed so far (0: never, or it is not failed now)."""
    value = conn.execute(
        select(imports.c.attempts).where(
            imports.c.mailbox == mailbox, imports.c.key == key, imports.c.status == FAILED
        )
    ).scalar()
    return int(value or 0)


def pending_acknowledgements(conn: Connection, mailbox: str) -> list[Pending]:
    rows = conn.execute(
        select(imports.c.key, imports.c.source)
        .where(imports.c.mailbox == mailbox, imports.c.status == RECORDED)
        .order_by(imports.c.id)
    )
    return [Pending(r.key, dict(r.source)) for r in rows]


def forget_mailbox(conn: Connection, mailbox: str) -> None:
    conn.execute(delete(imports).where(imports.c.mailbox == mailbox))
    conn.execute(delete(checkpoints).where(checkpoints.c.mailbox == mailbox))
    leases.forget(conn, mailbox)
