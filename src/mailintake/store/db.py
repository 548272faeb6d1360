"""Engines and migrations: SQLite (WAL) by default, PostgreSQL for several workers."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from mailintake.errors import ConfigError, Conflict, NetworkError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision of migrations/versions (tests/integration/test_store_head.py checks it
# against the scripts). A store at it is only read; Alembic (~0.2 s of CPU to import, in every
# cron-started command) is loaded only to migrate.
HEAD = "0022"
# Any constant: the key of the PostgreSQL advisory lock held while migrating.
_MIGRATION_LOCK = 0x6D61696C


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError([f"database_url: '{url}' is not a database URL"]) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # Pooled connections: opening one per transaction (and closing it, which checkpoints
        # the write-ahead log) costs milliseconds per batch of messages.
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True, **kwargs)
    raise ConfigError(
        [f"database_url: '{parsed.get_backend_name()}' is not supported (use sqlite or postgresql)"]
    )


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations of one SQLite file across processes (serve + worker at once)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _current(connection: Connection) -> str | None:
    """The store's revision, read from Alembic's version table as its MigrationContext
    would (without loading Alembic); None before the first migration, or when it is not one
    revision."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    found = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return str(found[0]) if len(found) == 1 else None


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (safe with several processes at once: on
    PostgreSQL the others wait on an advisory lock until the first is done). A schema newer
    than this code (another host runs a newer mailintake) is refused: Conflict. A store
    already at the newest revision is only read: the migration scripts are not run."""
    # SQLite: the first connection of a process switches the file to WAL, which fails at once
    # ("database is locked") while another process migrates it: the look at the revision
    # waits for the file's lock too.
    try:
        with _sqlite_file_lock(engine), engine.connect() as connection:
            if _current(connection) == HEAD:
                return
        from alembic import command

        config = _config()
        with _sqlite_file_lock(engine), engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            _refuse_newer(config, connection)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise NetworkError(
            f"cannot reach the database {engine.url.render_as_string(hide_password=True)}: "
            f"{exc.orig}"
        ) from exc


def _refuse_newer(config: Config, connection: Connection) -> None:
    """Raise Conflict when the database is at a revision this code does not know."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(config)
    known = {revision.revision for revision in script.walk_revisions()}
    current = MigrationContext.configure(connection).get_current_heads()
    unknown = sorted(set(current) - known)
    if unknown:
        raise Conflict(
            f"the database schema is at revision {', '.join(unknown)}, newer than this "
            f"mailintake (it knows revisions up to {script.get_current_head()}): a newer "
            "mailintake has upgraded it; upgrade mailintake on this host too "
            '(docs/deployment.md, "Upgrades")'
        )
