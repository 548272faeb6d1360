"""Rolling upgrades: processes that start at once migrate one after another (PostgreSQL: the
others wait on an advisory lock), and a process whose code is older than the database's
schema refuses to start with a message that says what to do."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from mailintake.errors import Conflict
from mailintake.runtime import open_store
from mailintake.settings import Settings
from mailintake.store.db import _MIGRATION_LOCK, MIGRATIONS, create_db_engine, migrate

pytestmark = pytest.mark.both_databases


def head(url: str) -> str:
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one())
    finally:
        engine.dispose()


def test_a_migration_waits_for_the_one_under_way(postgres_url: str) -> None:
    holder = create_engine(postgres_url)  # another process, migrating now
    engine = create_db_engine(postgres_url)
    failed: list[BaseException] = []

    def run() -> None:
        try:
            migrate(engine)
        except BaseException as exc:
            failed.append(exc)

    try:
        with holder.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
            second = threading.Thread(target=run)
            second.start()
            second.join(1.5)
            assert second.is_alive()  # it waits: it has not migrated beside the first
            with engine.connect() as look:
                assert "alembic_version" not in {
                    r[0]
                    for r in look.execute(
                        text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
                    )
                }
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
            conn.commit()
        second.join(60)
        assert not second.is_alive()
        assert failed == []
        migrate(engine)  # again: nothing to do
    finally:
        engine.dispose()
        holder.dispose()
    assert head(postgres_url) == ScriptDirectory(str(MIGRATIONS)).get_current_head()


def test_a_schema_newer_than_the_code_is_refused_with_what_to_do(
    settings: Settings, home: Path
) -> None:
    url = settings.database_url or ""
    open_store(settings).engine.dispose()
    engine = create_db_engine(url)
    try:
        with engine.begin() as conn:  # a newer mailintake migrated it further
            conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    finally:
        engine.dispose()
    with pytest.raises(Conflict) as refused:
        open_store(settings)
    assert "schema is at revision 0099, newer than this mailintake" in str(refused.value)
    assert "upgrade mailintake on this host too" in str(refused.value)
