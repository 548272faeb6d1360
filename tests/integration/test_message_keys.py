"""One message, one key: POP3 UIDLs that differ only in '+', '/', '=', '_' and '.' (as
Exchange's base64-like UIDLs do) are each imported once from a real Dovecot, and a store made
before keys were one to one (schema 0006, keys as that version made them, its folders on
disk) keeps matching after the upgrade: nothing is imported twice, nothing is left out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import insert, select

from mailintake.engine.poll import Poller
from mailintake.runtime import open_store
from mailintake.settings import Settings
from mailintake.sinks.base import Delivery, Receipt
from mailintake.sinks.folder import FolderSink
from mailintake.store.db import MIGRATIONS, create_db_engine
from mailintake.store.repo import Store
from mailintake.store.tables import imports
from tests.support.dovecot import MailServer
from tests.support.mail import configure, imported, raw, sign_in

pytestmark = pytest.mark.both_databases

SIX = ["AAMk+x1", "AAMk/x1", "AAMk=x1", "AAMk_x1", "AAMk+/x1", ".AAMk_x1."]
DAY = datetime(2026, 11, 24, 9, tzinfo=UTC)  # the Date of raw(n): the day folder of POP3


def pop3_box(server: MailServer, name: str, user: str) -> dict[str, Any]:
    return {
        "name": name,
        "protocol": "pop3",
        "port": server.dovecot.pop3_port,
        "username": user,
        "after_import": "keep",
        "oauth": server.user_grant(),
    }


def uidls_in(out: Path, name: str) -> list[str]:
    return sorted(
        json.loads(path.read_text())["source"]["uidl"]
        for path in out.glob(f"{name}/*/*/metadata.json")
    )


def test_uidls_that_differ_in_punctuation_are_each_imported_once(
    store: Store, tmp_path: Path, mail_server: MailServer
) -> None:
    server = mail_server
    user = server.fresh_user("uidl")
    messages = [(uidl, raw(n)) for n, uidl in enumerate(SIX)]
    server.dovecot.deliver_with_uidls(user, messages)
    name, out = "pop3-uidls", tmp_path / "out"
    configure(store, server, out, pop3_box(server, name, user))
    sign_in(store, name, user, server)
    first = Poller(store, tmp_path / "home").poll(name)
    assert (first.imported, first.skipped, first.failed, first.error) == (6, 0, 0, None)
    assert imported(out, name) == {message for _uidl, message in messages}
    assert uidls_in(out, name) == sorted(SIX)
    again = Poller(store, tmp_path / "home").poll(name)
    assert (again.imported, again.skipped, again.failed, again.error) == (0, 6, 0, None)
    assert len(list(out.glob(f"{name}/*/*"))) == 6


def _store_as_before(settings: Settings, rows: list[dict[str, Any]]) -> None:
    """A database at schema 0006 holding these import records."""
    engine = create_db_engine(settings.resolved_database_url)
    try:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0006")
            now = datetime.now(UTC)
            conn.execute(
                insert(imports),
                [{"attempts": 1, "updated_at": now, "imported_at": now, **row} for row in rows],
            )
    finally:
        engine.dispose()


def test_a_store_from_before_keeps_matching_after_the_upgrade(
    settings: Settings, tmp_path: Path, mail_server: MailServer
) -> None:
    from mailintake.keys import imap_key_prefix, pop3_key

    server, name, out = mail_server, "pop3-upgrade", tmp_path / "out"
    user = server.fresh_user("upgrade")
    uidls = ["AAMk+x1", "AAMk/x1", "00000001591e6c4a", "BBx+1", "CCx=1"]
    messages = {uidl: raw(n) for n, uidl in enumerate(uidls)}
    server.dovecot.deliver_with_uidls(user, list(messages.items()))
    # What the earlier version did with them: AAMk+x1 and the plain one imported; AAMk/x1
    # shared AAMk+x1's key and was skipped; BBx+1 placed in the output, then a crash before
    # it was recorded; CCx=1 failed. It also had an IMAP folder with a space in its name.
    folder = "INBOX/Rechnungen 2026"
    _store_as_before(
        settings,
        [
            {"mailbox": name, "key": "pop3-AAMk_x1", "status": "acknowledged"}
            | {"source": {"uidl": "AAMk+x1"}},
            {"mailbox": name, "key": "pop3-00000001591e6c4a", "status": "acknowledged"}
            | {"source": {"uidl": "00000001591e6c4a"}},
            {"mailbox": name, "key": "pop3-CCx_1", "status": "failed", "error": "disk full"}
            | {"source": {"uidl": "CCx=1"}},
            {"mailbox": "imap-box", "key": "imap-INBOX_Rechnungen_2026-8dee41-7-3"}
            | {"status": "acknowledged", "source": {"folder": folder, "uidvalidity": 7, "uid": 3}},
            {"mailbox": "graph-box", "key": "graph-" + "ab" * 20, "status": "acknowledged"}
            | {"source": {"id": "AAMkAGI2+/="}},
        ],
    )
    sink = FolderSink(out)
    try:
        for key, uidl in [
            ("pop3-AAMk_x1", "AAMk+x1"),
            ("pop3-00000001591e6c4a", "00000001591e6c4a"),
            ("pop3-BBx_1", "BBx+1"),
        ]:
            delivery = Delivery(name, "pop3", key, {"uidl": uidl}, messages[uidl], DAY)
            (receipt,) = sink.deliver([delivery])
            assert isinstance(receipt, Receipt)
    finally:
        sink.close()

    store = open_store(settings)  # the upgrade
    try:
        with store.read() as repo:
            keys = {
                (row.mailbox, row.key): row.status
                for row in repo.conn.execute(
                    select(imports.c.mailbox, imports.c.key, imports.c.status)
                )
            }
        assert keys == {
            (name, pop3_key("AAMk+x1")): "acknowledged",  # the one its source names
            (name, "pop3-00000001591e6c4a"): "acknowledged",  # plain: unchanged
            (name, pop3_key("CCx=1")): "failed",
            ("imap-box", f"{imap_key_prefix(folder, 7)}-3"): "acknowledged",
            ("graph-box", "graph-" + "ab" * 20): "acknowledged",
        }
        configure(store, server, out, pop3_box(server, name, user))
        sign_in(store, name, user, server)
        result = Poller(store, tmp_path / "home").poll(name)
        # Imported before: skipped. AAMk/x1 (never imported) and CCx=1 (failed): imported.
        # BBx+1: found in place under its earlier key, recorded, no second copy.
        assert (result.imported, result.skipped, result.failed, result.error) == (3, 2, 0, None)
        assert len(list(out.glob(f"{name}/*/*"))) == len(uidls)
        assert uidls_in(out, name) == sorted(uidls)
        assert imported(out, name) == set(messages.values())
        again = Poller(store, tmp_path / "home").poll(name)
        assert (again.imported, again.skipped, again.error) == (0, 5, None)
    finally:
        store.engine.dispose()


def test_the_migration_runs_twice_the_same_and_goes_back(settings: Settings) -> None:
    from mailintake.keys import pop3_key

    rows = [
        {"mailbox": "m", "key": "pop3-AAMk_x1", "status": "acknowledged"}
        | {"source": {"uidl": "AAMk+x1"}},
        {"mailbox": "m", "key": "pop3-plain-1", "status": "acknowledged"}
        | {"source": {"uidl": "plain-1"}},
        # not what the earlier rules gave its source: left as it is
        {"mailbox": "m", "key": "pop3-other", "status": "failed"} | {"source": {"uidl": "a+b"}},
    ]
    _store_as_before(settings, rows)
    engine = create_db_engine(settings.resolved_database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))

    def keys_after(revision: str, step: Any) -> list[str]:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            step(config, revision)
            return sorted(conn.execute(select(imports.c.key)).scalars())

    try:
        upgraded = sorted([pop3_key("AAMk+x1"), "pop3-plain-1", "pop3-other"])
        assert keys_after("0007", command.upgrade) == upgraded
        assert keys_after("0006", command.downgrade) == sorted(r["key"] for r in rows)
        assert keys_after("0007", command.upgrade) == upgraded
        with engine.begin() as conn:  # its upgrade again, on keys already moved
            config.attributes["connection"] = conn
            command.stamp(config, "0006")
            command.upgrade(config, "0007")
            assert sorted(conn.execute(select(imports.c.key)).scalars()) == upgraded
    finally:
        engine.dispose()
