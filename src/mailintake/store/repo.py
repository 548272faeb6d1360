"""The store's entry points: ``Store`` opens transactions, ``Repo`` holds every query on
servers, outputs and mailboxes (in store/servers.py, store/outputs.py, store/mailboxes.py).
No SQL lives outside store/.

``Store.begin()`` yields a ``Repo`` bound to one transaction, so a whole ``apply`` commits or
changes nothing. Secrets are split off every definition and kept encrypted in ``secrets``;
read back, they are the real values only when asked for with ``reveal=True``, otherwise
their ``${env:NAME}`` template or ``<redacted>``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, select, update

from mailintake.config.validate import Context
from mailintake.crypto import SecretBox
from mailintake.store import app_tokens, locks, secrets, tokens
from mailintake.store.base import Action, Change
from mailintake.store.mailboxes import (
    SETTINGS_FIXABLE_STATES,
    MailboxQueries,
    MailboxRecord,
    Schedule,
)
from mailintake.store.outputs import OutputQueries
from mailintake.store.servers import ServerQueries
from mailintake.store.tables import meta

__all__ = [
    "SETTINGS_FIXABLE_STATES",
    "Action",
    "Change",
    "MailboxRecord",
    "Repo",
    "Schedule",
    "Store",
    "read_key_check",
]


class Repo(ServerQueries, OutputQueries, MailboxQueries):
    """Every query on the store's definitions, bound to one connection (one transaction)."""

    # --- validation context -------------------------------------------------------------

    def context(self, environ: Mapping[str, str], base_dir: Any = None) -> Context:
        return Context(
            servers={s.name: s for s in self.list_servers()},
            outputs={o.name: o.type for o in self.list_outputs()},
            stored_secrets=secrets.keys(self.conn),
            environ=dict(environ),
            base_dir=base_dir,
        )

    # --- tokens -------------------------------------------------------------------------

    def grant(self, mailbox: str) -> tokens.GrantRecord | None:
        return tokens.read_grant(self.conn, self.box, mailbox)

    def access_token(self, mailbox: str, resource: str) -> tokens.AccessToken | None:
        return tokens.read_access(self.conn, self.box, mailbox, resource)

    # --- key management -----------------------------------------------------------------

    def write_key_check(self) -> None:
        value = self.box.encrypt("mailintake key check")
        row = self.conn.execute(select(meta.c.value).where(meta.c.key == "key_check")).first()
        if row is None:
            self.conn.execute(meta.insert().values(key="key_check", value=value))
        else:
            self.conn.execute(update(meta).where(meta.c.key == "key_check").values(value=value))

    def rotate_secrets(self) -> int:
        count = secrets.rotate_all(self.conn, self.box)
        count += tokens.rotate_all(self.conn, self.box)
        # Application tokens are found by a hash keyed with the secret key: with the new key
        # nothing finds them, so they go (each application asks for one token again).
        app_tokens.forget_all(self.conn)
        self.write_key_check()
        return count


def read_key_check(engine: Engine) -> str | None:
    with engine.connect() as conn:
        row = conn.execute(select(meta.c.value).where(meta.c.key == "key_check")).first()
    return None if row is None else str(row.value)


class Store:
    def __init__(self, engine: Engine, box: SecretBox) -> None:
        self.engine = engine
        self.box = box

    @contextmanager
    def begin(self) -> Iterator[Repo]:
        with self.engine.begin() as conn:
            yield Repo(conn, self.box)

    @contextmanager
    def read(self) -> Iterator[Repo]:
        with self.engine.connect() as conn:
            yield Repo(conn, self.box)

    @contextmanager
    def exclusive(self, key: str, *, wait: float | None = None) -> Iterator[Repo]:
        """A transaction holding the lock ``key`` against every other thread and process
        using this database (store.locks); ``wait``: at most that many seconds for it."""
        with locks.held(self.engine, key, wait) as conn:
            yield Repo(conn, self.box)
