"""Deleting a mailbox deletes everything kept under its name, whichever way it is deleted: a
mailbox created later with the same name imports its messages again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mailintake.engine.poll import Poller
from mailintake.services.apply import apply_document
from mailintake.store.repo import Store
from mailintake.store.tables import access_tokens, imports, leases, oauth_grants, secrets
from tests.support.documents import claims_mailbox, folder_output
from tests.support.dovecot import DAEMON_APP, DOMAIN, MailServer
from tests.support.mail import app_mailbox, configure, imported, raw

pytestmark = pytest.mark.both_databases


NOW = datetime.now(UTC)


def leave_traces(store: Store, name: str) -> None:
    """What polling and authorizing leave under a mailbox's name."""
    with store.begin() as repo:
        conn = repo.conn
        conn.execute(
            imports.insert().values(
                mailbox=name, key="k1", status="acknowledged", source={"uid": 1},
                attempts=1, updated_at=NOW,
            )
        )  # fmt: skip
        conn.execute(leases.insert().values(mailbox=name, owner="w1", expires_at=NOW))
        conn.execute(
            oauth_grants.insert().values(
                mailbox=name, grant_type="password", fingerprint="f", refresh_token="r",
                authorized_at=NOW, updated_at=NOW,
            )
        )  # fmt: skip
        conn.execute(
            access_tokens.insert().values(
                mailbox=name, resource="https://graph.microsoft.com", token="t", scopes="s",
                expires_at=NOW + timedelta(hours=1), obtained_at=NOW,
            )
        )  # fmt: skip


def traces(store: Store, name: str) -> dict[str, int]:
    found = {}
    with store.read() as repo:
        for table, column in (
            (imports, imports.c.mailbox),
            (leases, leases.c.mailbox),
            (oauth_grants, oauth_grants.c.mailbox),
            (access_tokens, access_tokens.c.mailbox),
            (secrets, secrets.c.owner_name),
        ):
            query = select(func.count()).select_from(table).where(column == name)
            found[table.name] = repo.conn.execute(query).scalar_one()
    return found


@pytest.mark.parametrize("way", ["api", "prune", "repo"])
def test_deleting_a_mailbox_deletes_what_is_kept_under_its_name(
    store: Store, api: TestClient, tmp_path: Path, way: str
) -> None:
    output = folder_output(str(tmp_path))
    doc = {"outputs": [output], "mailboxes": [claims_mailbox("pw-x")]}
    apply_document(store, doc, {})
    other = {**claims_mailbox("pw-y"), "name": "other"}
    apply_document(store, {"mailboxes": [other]}, {})
    for name in ("claims", "other"):
        leave_traces(store, name)
    kept = traces(store, "other")
    assert traces(store, "claims") == {
        "imports": 1, "leases": 1, "oauth_grants": 1, "access_tokens": 1, "secrets": 1,
    }  # fmt: skip

    if way == "api":
        assert api.delete("/api/v1/mailboxes/claims").status_code == 200
    elif way == "prune":
        apply_document(store, {"outputs": [output], "mailboxes": [other]}, {}, prune=True)
    else:
        with store.begin() as repo:
            repo.delete_mailbox("claims")

    assert set(traces(store, "claims").values()) == {0}
    assert traces(store, "other") == kept


def test_a_mailbox_created_again_imports_its_messages_again(
    store: Store, home: Path, tmp_path: Path, mail_server: MailServer
) -> None:
    server, dovecot = mail_server, mail_server.dovecot
    user = server.add_user(f"again-{tmp_path.name[-8:]}@{DOMAIN}")
    dovecot.add_delegate(DAEMON_APP, user)
    messages = [raw(1), raw(2)]
    dovecot.deliver_many(user, messages)
    box = app_mailbox(server, "app", user, after_import="keep")
    first = tmp_path / "first"
    configure(store, server, first, box)
    result = Poller(store, home).poll("app")
    assert (result.imported, result.error) == (2, None)
    assert imported(first, "app") == set(messages)

    with store.begin() as repo:
        repo.delete_mailbox("app")
    second = tmp_path / "second"
    configure(store, server, second, box)  # the same name, the same server
    again = Poller(store, home).poll("app")
    assert (again.imported, again.skipped, again.error) == (2, 0, None)
    assert imported(second, "app") == set(messages)
