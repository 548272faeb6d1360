"""What a test reads of the store directly: everything the database holds, as text (to look
for a secret that must never be there in clear), where the mailboxes stand in the
schedule, and mailboxes marked signed in."""

from __future__ import annotations

from sqlalchemy import MetaData, select

from mailintake.settings import Settings
from mailintake.store import schedule
from mailintake.store.repo import Store


def database_text(store: Store, settings: Settings | None = None) -> str:
    """Every row of every table, as text; with the ``settings`` of a SQLite store, its files
    as they are on disk instead (the write-ahead log included)."""
    if settings is not None and store.engine.dialect.name == "sqlite":
        files = sorted(settings.home.glob("mailintake.db*"))
        return b"".join(f.read_bytes() for f in files).decode("latin-1")
    meta = MetaData()
    meta.reflect(store.engine)
    with store.engine.connect() as conn:
        return "\n".join(
            repr(tuple(row)) for table in meta.sorted_tables for row in conn.execute(select(table))
        )


def places(store: Store) -> dict[str, schedule.Due]:
    """Where each mailbox stands in the schedule, by name."""
    with store.read() as repo:
        return {due.schedule.name: due for due in schedule.listed(repo.conn)}


def authorized(store: Store, *names: str) -> None:
    """Mark these mailboxes signed in (their authorization state), as a grant would."""
    with store.begin() as repo:
        for name in names:
            repo.set_auth_state(name, "authorized", None)
