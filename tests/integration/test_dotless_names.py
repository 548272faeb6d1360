"""A store from before names were refused when they start with '.': the upgrade renames
them, and what refers to them follows, so the store reads again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import insert, select

from mailintake.runtime import open_store
from mailintake.settings import Settings
from mailintake.store.db import MIGRATIONS, create_db_engine
from mailintake.store.tables import (
    authorization_servers,
    imports,
    leases,
    mailboxes,
    oauth_grants,
    outputs,
    secrets,
)

pytestmark = pytest.mark.both_databases

NOW = datetime.now(UTC)
SERVER = {
    "name": ".corp",
    "authorization_endpoint": "https://idp.example.com/authorize",
    "token_endpoint": "https://idp.example.com/token",
    "scopes": {"imap": ["mail.read"]},
}


def mailbox_row(name: str, output: str, server: str) -> dict[str, Any]:
    definition = {
        "name": name,
        "protocol": "imap",
        "host": "mail.example.com",
        "username": "a@example.com",
        "output": output,
        "oauth": {
            "authorization_server": server,
            "grant_type": "authorization_code",
            "client_id": "app",
            "redirect_uri": "http://127.0.0.1/",
        },
    }
    return {
        "name": name,
        "protocol": "imap",
        "enabled": True,
        "authorization_server": server,
        "output": output,
        "definition": definition,
        "auth_state": "not_authorized",
        "created_at": NOW,
        "updated_at": NOW,
    }


def store_as_before(settings: Settings) -> None:
    """A database at schema 0007 holding items named as earlier versions allowed."""
    engine = create_db_engine(settings.resolved_database_url)
    try:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0007")
            stamp = {"created_at": NOW, "updated_at": NOW}
            conn.execute(
                insert(authorization_servers).values(name=".corp", definition=SERVER, **stamp)
            )
            for name in ("..", "dotdot"):
                definition = {"name": name, "type": "folder", "path": f"/srv/{name}"}
                conn.execute(
                    insert(outputs).values(name=name, type="folder", definition=definition, **stamp)
                )
            for name in ("..", ".", ".incoming", "dotdot"):
                conn.execute(insert(mailboxes).values(mailbox_row(name, "..", ".corp")))
            conn.execute(
                insert(secrets).values(
                    owner_kind="mailbox", owner_name="..", field="oauth.client_secret",
                    ciphertext="x", template="${env:S}", updated_at=NOW,
                )
            )  # fmt: skip
            conn.execute(
                insert(imports).values(
                    mailbox="..", key="k1", status="acknowledged", source={"uid": 1},
                    attempts=1, updated_at=NOW,
                )
            )  # fmt: skip
            conn.execute(insert(leases).values(mailbox="..", owner="w", expires_at=NOW))
            conn.execute(
                insert(oauth_grants).values(
                    mailbox=".", grant_type="authorization_code", fingerprint="f",
                    authorized_at=NOW, updated_at=NOW,
                )
            )  # fmt: skip
    finally:
        engine.dispose()


def test_names_starting_with_a_dot_are_renamed_on_upgrade(settings: Settings) -> None:
    store_as_before(settings)
    store = open_store(settings)  # the upgrade
    try:
        with store.read() as repo:
            records = {r.spec.name: r for r in repo.list_mailboxes()}
            assert sorted(records) == ["dot", "dot-incoming", "dotdot", "dotdot-2"]
            renamed = records["dotdot-2"]
            assert (renamed.output, renamed.authorization_server) == ("dotdot-2", "dot-corp")
            assert renamed.spec.output == "dotdot-2"
            assert renamed.spec.oauth is not None
            assert renamed.spec.oauth.authorization_server == "dot-corp"
            assert renamed.spec.oauth.client_secret is not None
            assert renamed.spec.oauth.client_secret.get_secret_value() == "${env:S}"
            assert [o.name for o in repo.list_outputs()] == ["dotdot", "dotdot-2"]
            assert "dot-corp" in [s.name for s in repo.list_servers()]
            conn = repo.conn
            assert conn.execute(select(imports.c.mailbox)).scalars().all() == ["dotdot-2"]
            assert conn.execute(select(leases.c.mailbox)).scalars().all() == ["dotdot-2"]
            assert conn.execute(select(oauth_grants.c.mailbox)).scalars().all() == ["dot"]
    finally:
        store.engine.dispose()
    again = open_store(settings)  # nothing left to do
    again.engine.dispose()
