"""Storage on SQLite and PostgreSQL: apply, export, edits, in-use protection, secrets at rest."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailintake.config.models import ServerSpec
from mailintake.config.servers import BUILTIN_SERVERS
from mailintake.crypto import generate_key
from mailintake.errors import ConfigError, Conflict, NotFound, SecretKeyError
from mailintake.runtime import open_store
from mailintake.services.apply import apply_document
from mailintake.services.edit import edit_item, put_item
from mailintake.services.export import export_document
from mailintake.settings import Settings
from mailintake.store.repo import Store
from mailintake.store.tables import metadata, secrets
from tests.support.documents import (
    claims_mailbox,
    corp_idp_server,
    folder_output,
    invoices_mailbox,
    orders_mailbox,
    webhook_output,
)
from tests.support.store import database_text

pytestmark = pytest.mark.both_databases

CLIENT_SECRET = "cs-Zq8~Vb1Lr3NtKm7Pw2Xy"
PASSWORD = "pw-Hk4Jd9Tg6Ws1Qe5Rv8"
PROXY_PASSWORD = "pp-Bn3Mc7Fx2Lz6Ya9Ut4"
HOOK_TOKEN = "ht-Gq5Wp1Ke8Rd3Tn6Jm2"
ENV = {"HOOK_TOKEN": HOOK_TOKEN, "ROPC_PASSWORD": PASSWORD}


def document(tmp_path: Path) -> dict[str, Any]:
    return {
        "authorization_servers": [corp_idp_server()],
        "outputs": [
            folder_output(str(tmp_path / "capture")),
            webhook_output("https://capture.example.com/in", "Bearer ${env:HOOK_TOKEN}"),
        ],
        "mailboxes": [
            invoices_mailbox(CLIENT_SECRET, PROXY_PASSWORD),
            claims_mailbox("${env:ROPC_PASSWORD}", output="hook"),
            orders_mailbox(),
        ],
    }


def actions(changes: list[Any]) -> dict[str, str]:
    return {f"{c.kind}:{c.name}": c.action for c in changes}


def test_apply_twice_changes_nothing_the_second_time(store: Store, tmp_path: Path) -> None:
    first = apply_document(store, document(tmp_path), ENV)
    assert set(actions(first).values()) == {"created"}
    assert len(first) == 6
    second = apply_document(store, document(tmp_path), ENV)
    assert set(actions(second).values()) == {"unchanged"}


def test_apply_updates_a_server_and_forgets_a_secret_no_longer_given(
    store: Store, tmp_path: Path
) -> None:
    apply_document(store, document(tmp_path), ENV)
    doc = document(tmp_path)
    doc["authorization_servers"][0]["token_endpoint"] = "https://idp.example.com/v2/token"
    doc["mailboxes"][0]["proxy"] = {"address": "http://proxy.example.com:3128"}  # no sign-in
    changes = actions(apply_document(store, doc, ENV))
    assert changes["authorization_server:corp-idp"] == "updated"
    assert changes["mailbox:invoices"] == "updated"
    assert changes["mailbox:claims"] == "unchanged"
    with store.read() as repo:
        server = {s.name: s for s in repo.list_servers()}["corp-idp"]
        assert server.token_endpoint == "https://idp.example.com/v2/token"
        fields = repo.conn.execute(
            select(secrets.c.field).where(secrets.c.owner_name == "invoices")
        ).scalars()
        assert sorted(fields) == ["oauth.client_secret"]
    assert apply_document(store, doc, ENV)[0].action == "unchanged"


def test_apply_is_all_or_nothing(store: Store, tmp_path: Path) -> None:
    doc = document(tmp_path)
    doc["mailboxes"][2]["oauth"].pop("redirect_uri")
    with pytest.raises(ConfigError) as caught:
        apply_document(store, doc, ENV)
    assert caught.value.problems == [
        "mailboxes[orders].oauth.redirect_uri: required for grant_type authorization_code"
    ]
    with store.read() as repo:
        assert repo.list_mailboxes() == []
        assert repo.list_outputs() == []
        assert [s.name for s in repo.list_servers()] == [
            "MICROSOFT",
            "GOOGLE",
            "MICROSOFT_US_GCC_HIGH",
            "MICROSOFT_US_DOD",
            "MICROSOFT_CHINA",
        ]


def test_dry_run_changes_nothing(store: Store, tmp_path: Path) -> None:
    changes = apply_document(store, document(tmp_path), ENV, dry_run=True)
    assert len(changes) == 6
    with store.read() as repo:
        assert repo.list_mailboxes() == []


def test_changing_a_secret_is_an_update(store: Store, tmp_path: Path) -> None:
    apply_document(store, document(tmp_path), ENV)
    changed = apply_document(store, document(tmp_path), {**ENV, "HOOK_TOKEN": "other"})
    assert actions(changed)["output:hook"] == "updated"
    with store.read() as repo:
        hook = repo.get_output("hook", reveal=True)
    assert hook.headers is not None
    assert hook.headers["Authorization"].get_secret_value() == "Bearer other"


def test_export_applies_back_unchanged(store: Store, tmp_path: Path) -> None:
    apply_document(store, document(tmp_path), ENV)
    with store.read() as repo:
        exported = export_document(repo)
    boxes = {m["name"]: m for m in exported["mailboxes"]}
    assert boxes["invoices"]["oauth"]["client_secret"] == "<redacted>"
    assert boxes["invoices"]["proxy"]["password"] == "<redacted>"
    assert boxes["claims"]["oauth"]["password"] == "${env:ROPC_PASSWORD}"
    outputs = {o["name"]: o for o in exported["outputs"]}
    assert outputs["hook"]["headers"] == {"Authorization": "Bearer ${env:HOOK_TOKEN}"}
    again = apply_document(store, exported, ENV)
    assert set(actions(again).values()) == {"unchanged"}
    with store.read() as repo:
        invoices = repo.get_mailbox("invoices", reveal=True).spec
    assert invoices.oauth is not None
    assert invoices.oauth.client_secret is not None
    assert invoices.oauth.client_secret.get_secret_value() == CLIENT_SECRET


def test_prune_removes_what_the_file_does_not_list(store: Store, tmp_path: Path) -> None:
    apply_document(store, document(tmp_path), ENV)
    with store.begin() as repo:
        repo.put_server(
            ServerSpec.model_validate(
                {
                    "name": "MICROSOFT",
                    "scopes": {"graph": ["https://graph.microsoft.com/Mail.Read"]},
                }
            )
        )
    doc = document(tmp_path)
    doc["mailboxes"] = doc["mailboxes"][:1]
    doc["outputs"] = doc["outputs"][:1]
    doc["authorization_servers"] = []
    changes = actions(apply_document(store, doc, ENV, prune=True))
    assert changes["mailbox:claims"] == "deleted"
    assert changes["mailbox:orders"] == "deleted"
    assert changes["output:hook"] == "deleted"
    assert changes["authorization_server:corp-idp"] == "deleted"
    assert changes["authorization_server:MICROSOFT"] == "reset"
    with store.read() as repo:
        assert [r.spec.name for r in repo.list_mailboxes()] == ["invoices"]
        assert secretsof(repo.conn, "claims") == 0


def secretsof(conn: Any, name: str) -> int:
    return len(conn.execute(select(secrets).where(secrets.c.owner_name == name)).all())


def test_servers_in_use_and_built_in_servers(store: Store, tmp_path: Path) -> None:
    apply_document(store, document(tmp_path), ENV)
    with pytest.raises(Conflict, match="used by mailbox\\(es\\) orders"), store.begin() as repo:
        repo.delete_server("corp-idp")
    with pytest.raises(Conflict, match="built in"), store.begin() as repo:
        repo.delete_server("MICROSOFT")
    with (
        pytest.raises(Conflict, match="used by mailbox\\(es\\) invoices, orders"),
        store.begin() as repo,
    ):
        repo.delete_output("capture")
    with pytest.raises(NotFound), store.begin() as repo:
        repo.delete_server("nope")
    # Built-ins can be edited (mailboxes follow) and reset.
    change = edit_item(
        store,
        "server",
        "MICROSOFT",
        {"token_endpoint": "https://login.microsoftonline.us/{tenant}/oauth2/v2.0/token"},
        [],
        ENV,
    )
    assert change.action == "updated"
    with store.read() as repo:
        assert repo.server_is_edited("MICROSOFT")
        server = repo.get_server("MICROSOFT")
        assert server.token_endpoint is not None
        assert "microsoftonline.us" in server.token_endpoint
    with store.begin() as repo:
        assert repo.reset_server("MICROSOFT").action == "reset"
        assert not repo.server_is_edited("MICROSOFT")
    # Once no mailbox uses it, a custom server can go.
    with store.begin() as repo:
        repo.delete_mailbox("orders")
        assert repo.delete_server("corp-idp").action == "deleted"


def test_single_item_edits_use_the_same_rules(store: Store, tmp_path: Path) -> None:
    apply_document(store, document(tmp_path), ENV)
    with pytest.raises(ConfigError) as caught:
        edit_item(store, "mailbox", "orders", {"oauth.grant_type": "password"}, [], ENV)
    assert caught.value.problems == [
        "mailboxes[orders].oauth.grant_type: password is not supported for protocol imap: the "
        "Resource Owner Password Credentials grant is only available for Microsoft Graph; for "
        "imap use authorization_code, device_code or client_credentials"
    ]
    # An edit that leaves secrets alone keeps them.
    edit_item(store, "mailbox", "invoices", {"poll_interval": 300}, [], ENV)
    with store.read() as repo:
        spec = repo.get_mailbox("invoices", reveal=True).spec
    assert spec.poll_interval == 300
    assert spec.proxy is not None
    assert spec.proxy.password is not None
    assert spec.proxy.password.get_secret_value() == PROXY_PASSWORD
    with pytest.raises(Conflict, match="exists already"):
        put_item(store, "mailbox", {"name": "orders"}, ENV, must_exist=False)


def test_secrets_are_never_in_clear_in_the_database(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    apply_document(store, document(tmp_path), ENV)
    with store.read() as repo:
        exported = repr(export_document(repo))
        listed = repr(repo.list_mailboxes()) + repr(repo.list_outputs())
    dumped = database_text(store, settings)
    assert "invoices@contoso.com" in dumped  # the dump is readable
    for secret in (CLIENT_SECRET, PASSWORD, PROXY_PASSWORD, HOOK_TOKEN):
        assert secret not in dumped
        assert secret not in exported
        assert secret not in listed


def with_key(settings: Settings, key: str) -> Settings:
    return Settings(home=settings.home, database_url=settings.database_url, secret_key=key)


def test_wrong_missing_and_rotated_keys(store: Store, settings: Settings, tmp_path: Path) -> None:
    apply_document(store, document(tmp_path), ENV)
    key_file = settings.home / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    store.engine.dispose()

    wrong = with_key(settings, generate_key())
    with pytest.raises(SecretKeyError, match="not the key this database's secrets"):
        open_store(wrong)
    malformed = with_key(settings, "not-a-key")
    with pytest.raises(SecretKeyError, match="does not hold a valid secret key"):
        open_store(malformed)

    old_key = key_file.read_text().strip()
    key_file.rename(key_file.with_suffix(".moved"))
    with pytest.raises(SecretKeyError, match="restore that key file"):
        open_store(settings)
    key_file.with_suffix(".moved").rename(key_file)

    key_file.chmod(0o644)
    with pytest.raises(SecretKeyError, match="chmod 600"):
        open_store(settings)
    key_file.chmod(0o600)

    # The same key given in the environment opens it too.
    reopened = open_store(with_key(settings, old_key))
    with reopened.read() as repo:
        spec = repo.get_mailbox("invoices", reveal=True).spec
    assert spec.oauth is not None
    assert spec.oauth.client_secret is not None
    assert spec.oauth.client_secret.get_secret_value() == CLIENT_SECRET
    reopened.engine.dispose()


def test_migrations_match_the_tables(store: Store) -> None:
    """The Alembic revisions create exactly the schema tables.py describes."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    # Indexes created by the migration for lookups are the only accepted difference.
    assert [d for d in diff if d[0] != "remove_index"] == []


def test_several_processes_can_open_a_new_database_at_once(settings: Settings) -> None:
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(_open_and_count, [settings] * 4))
    assert results == [len(BUILTIN_SERVERS)] * 4  # the built-in servers, each readable


def _open_and_count(settings: Settings) -> int:
    store = open_store(settings)
    try:
        with store.read() as repo:
            return len(repo.list_servers())
    finally:
        store.engine.dispose()


def test_import_records_of_a_batch(store: Store) -> None:
    """Recording a batch inserts new keys and turns an earlier failure of the same key into a
    recorded message (one row, its attempts kept); marking acknowledged touches only the keys
    given."""
    from datetime import timedelta

    from mailintake.store import import_views, imports, leases
    from mailintake.store.imports import ImportEntry

    source = {"folder": "INBOX", "uidvalidity": 7, "uid": 1}
    with store.begin() as repo:
        imports.failed(repo.conn, "box", "k1", source, "over the limit", size=10)
        imports.failed(repo.conn, "box", "k1", source, "over the limit", size=10)
        imports.failed(repo.conn, "other", "k2", source, "refused")
    entries = [
        ImportEntry(f"k{n}", {**source, "uid": n}, f"/out/k{n}", f"Subject {n}", "a@b.example")
        for n in (1, 2, 3)
    ]
    with store.begin() as repo:
        imports.record(repo.conn, "box", entries)
        assert leases.acquire(repo.conn, "box", "me", timedelta(minutes=1))
    with store.read() as repo:
        assert imports.statuses(repo.conn, "box", ["k1", "k2", "k3", "k4"]) == {
            "k1": imports.RECORDED,
            "k2": imports.RECORDED,
            "k3": imports.RECORDED,
        }
        assert imports.statuses(repo.conn, "other", ["k2"]) == {"k2": imports.FAILED}
        assert [p.key for p in imports.pending_acknowledgements(repo.conn, "box")] == [
            "k1",
            "k2",
            "k3",
        ]
        rows = {r["key"]: r for r in import_views.recent(repo.conn, "box")}
    assert rows["k1"]["error"] is None
    assert rows["k1"]["location"] == "/out/k1"
    assert rows["k1"]["subject"] == "Subject 1"
    assert rows["k1"]["imported_at"] is not None
    with store.read() as repo:
        attempts = dict(
            repo.conn.execute(
                select(imports.imports.c.key, imports.imports.c.attempts).where(
                    imports.imports.c.mailbox == "box"
                )
            ).all()
        )
    assert attempts == {"k1": 2, "k2": 1, "k3": 1}
    with store.begin() as repo:
        imports.acknowledged(repo.conn, "box", ["k1", "k3"])
    with store.read() as repo:
        assert [p.key for p in imports.pending_acknowledgements(repo.conn, "box")] == ["k2"]
        assert imports.statuses(repo.conn, "box", ["k1", "k3"]) == {
            "k1": imports.ACKNOWLEDGED,
            "k3": imports.ACKNOWLEDGED,
        }


def test_recording_writes_what_sqlalchemy_would(store: Store) -> None:
    """The record statement goes to the driver compiled once, with its values converted as
    SQLAlchemy converts them: every column of every row reads back as it does when SQLAlchemy
    runs the same statement, for new keys and for the row of an earlier failure."""
    from mailintake.store import imports
    from mailintake.store.imports import ImportEntry

    entries = [
        ImportEntry("k1", {"folder": "INBOX", "uidvalidity": 7, "uid": 1}),
        ImportEntry(
            "k2",
            {"folder": "Eingang/Rechnungen ä", "uidvalidity": 2**40, "uid": 2, "x": [1, None]},
            "/out/box/2026-12-03/k2",
            "Rechnung Nr. 7 – «Ärger» 😀 " * 80,  # over the 1,000 characters kept
            "Zoë <zoe@example.com>",
            52_000,
            "ab" * 32,
            "<id-7@example.com>",
        ),
        ImportEntry("k3", {"uidl": "000001a"}, subject="", sender=None, message_id=""),
    ]
    table = imports.imports
    with store.begin() as repo:
        for mailbox in ("fast", "reference"):  # an earlier failure: its row is updated
            imports.failed(repo.conn, mailbox, "k1", entries[0].source, "refused", size=9)
        imports.record(repo.conn, "fast", entries)
        now = imports.utcnow()
        repo.conn.execute(
            imports._record_statement(repo.conn.dialect.name),
            [
                {
                    "mailbox": "reference",
                    "key": e.key,
                    "attempts": 1,
                    "status": imports.RECORDED,
                    "source": e.source,
                    "location": e.location,
                    "subject": (e.subject or "")[:1000] or None,
                    "sender": (e.sender or "")[:1000] or None,
                    "size": e.size,
                    "sha256": e.sha256,
                    "message_id": (e.message_id or "")[:1000] or None,
                    "error": None,
                    "imported_at": now,
                    "updated_at": now,
                }
                for e in entries
            ],
        )
    with store.read() as repo:
        rows = {
            (row.mailbox, row.key): row._asdict()
            for row in repo.conn.execute(
                select(table).where(table.c.mailbox.in_(["fast", "reference"]))
            )
        }
    assert len(rows) == 6
    for entry in entries:
        fast, reference = rows[("fast", entry.key)], rows[("reference", entry.key)]
        for name in ("imported_at", "updated_at"):
            assert type(fast[name]) is type(reference[name])
            assert fast[name].tzinfo == reference[name].tzinfo
            assert abs(fast[name] - reference[name]).total_seconds() < 60
        ignored = {"id", "mailbox", "imported_at", "updated_at"}
        assert {k: v for k, v in fast.items() if k not in ignored} == {
            k: v for k, v in reference.items() if k not in ignored
        }
    assert rows[("fast", "k1")]["attempts"] == 1  # kept from the failure, not counted again
    assert rows[("fast", "k1")]["error"] is None
    assert len(rows[("fast", "k2")]["subject"]) == 1000


def test_a_lease_belongs_to_one_poll(store: Store) -> None:
    """Each poll has an owner id of its own: a second poll in the same process is refused
    while the first holds the lease, renews only what it holds, and takes over at once only
    the lease of a process that has ended."""
    import os
    import subprocess
    import sys
    from datetime import timedelta

    from mailintake.store import leases

    minute = timedelta(minutes=1)
    first, second = leases.new_owner(), leases.new_owner()
    assert first != second
    assert first.split(":")[1] == second.split(":")[1] == str(os.getpid())
    with store.begin() as repo:
        assert leases.claim(repo.conn, "box", first, minute)
        assert not leases.claim(repo.conn, "box", second, minute)  # the same process
        assert leases.renew(repo.conn, "box", first, minute)
        assert not leases.renew(repo.conn, "box", second, minute)
        assert leases.holder(repo.conn, "box") == first
        leases.release(repo.conn, "box", first)
        assert leases.claim(repo.conn, "box", second, minute)
    ended = subprocess.run(
        [sys.executable, "-c", "from mailintake.store import leases; print(leases.new_owner())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with store.begin() as repo:
        leases.release(repo.conn, "box", second)
        assert leases.acquire(repo.conn, "box", ended, minute)
        assert leases.claim(repo.conn, "box", first, minute)  # its process has ended
        assert leases.holder(repo.conn, "box") == first


def test_schedules_say_what_the_records_say(store: Store, tmp_path: Path) -> None:
    """The scheduler's light read of every mailbox agrees with the full records."""
    doc = document(tmp_path)
    doc["mailboxes"][0]["poll_interval"] = 300
    doc["mailboxes"][2]["enabled"] = False
    apply_document(store, doc, ENV)
    with store.begin() as repo:
        repo.set_auth_state("claims", "password_update_required", "update the password")
    with store.read() as repo:
        schedules = repo.schedules()
        records = repo.list_mailboxes()
    assert [
        (s.name, s.enabled, s.auth_state, s.oauth, s.grant_type, s.poll_interval) for s in schedules
    ] == [
        (
            r.spec.name,
            r.spec.enabled is not False,
            r.auth_state,
            r.spec.oauth is not None,
            r.spec.oauth.grant_type.value if r.spec.oauth and r.spec.oauth.grant_type else None,
            r.spec.poll_interval,
        )
        for r in records
    ]
    assert [(s.name, s.enabled, s.poll_interval) for s in schedules] == [
        ("claims", True, None),
        ("invoices", True, 300),
        ("orders", False, None),
    ]
    assert schedules[0].auth_state == "password_update_required"
    assert schedules[0].grant_type == "password"
