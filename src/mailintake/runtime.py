"""Builds the store from the settings: engine, migrations, and the secret key that opens it."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from mailintake.crypto import SecretBox, load_box
from mailintake.errors import SecretKeyError
from mailintake.settings import Settings
from mailintake.store.db import create_db_engine, migrate
from mailintake.store.repo import Store, read_key_check


def open_store(settings: Settings, connections: int | None = None) -> Store:
    """Open (and migrate) the database, and check the secret key is the one it was used with.

    ``connections``: how many the process keeps open at most between transactions (a worker:
    one per poll it runs at once, and its own loops); more are opened in a burst and closed
    after. Left to SQLAlchemy's default (5) otherwise."""
    settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    pool = {} if connections is None else {"pool_size": connections, "max_overflow": connections}
    engine = create_db_engine(settings.resolved_database_url, **pool)
    try:
        migrate(engine)
        store = Store(engine, _box(settings, engine))
    except BaseException:
        engine.dispose()
        raise
    return store


def _box(settings: Settings, engine: Engine) -> SecretBox:
    env_key = settings.secret_key.get_secret_value() if settings.secret_key else None
    check = read_key_check(engine)
    key_file = settings.home / "secret.key"
    box = load_box(env_key, settings.home, create=check is None)
    if box is None:
        raise SecretKeyError(
            f"no secret key: MAILINTAKE_SECRET_KEY is not set and {key_file} does not exist, "
            "but the database holds secrets encrypted with a key; restore that key file or "
            "set MAILINTAKE_SECRET_KEY"
        )
    if check is None:
        try:
            with Store(engine, box).begin() as repo:
                repo.write_key_check()
            return box
        except IntegrityError:  # another process wrote it first: check against theirs
            check = read_key_check(engine)
            assert check is not None
    try:
        box.decrypt(check)
    except SecretKeyError:
        raise SecretKeyError(
            f"the secret key from {box.source} is not the key this database's secrets were "
            f"encrypted with; use the original key (MAILINTAKE_SECRET_KEY or {key_file})"
        ) from None
    return box
