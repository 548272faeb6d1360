"""mailintake importing from a real Dovecot (IMAP and POP3) with tokens from the sandbox
identity provider: every after-import action, own and shared mailboxes, app-only access."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mailintake.engine.poll import Poller
from mailintake.oauth.tokens import TokenManager
from mailintake.status import mailbox_status
from mailintake.store.repo import Store
from tests.support.cli import Completed, run_cli
from tests.support.dovecot import DAEMON_SECRET, DOMAIN, MailServer
from tests.support.mail import (
    app_mailbox,
    app_user,
    configure,
    dovecot_mailbox,
    imported,
    raw,
    sign_in,
)

pytestmark = pytest.mark.both_databases


CASES = [
    ("imap", "mark_read"),
    ("imap", "move"),
    ("imap", "delete"),
    ("imap", "keep"),
    ("pop3", "delete"),
    ("pop3", "keep"),
]


def test_a_token_ended_before_its_expiry_is_renewed_when_refused(
    store: Store, home: Path, tmp_path: Path, mail_server: MailServer
) -> None:
    """The identity provider ends the access token the mailbox holds before its expiry (as
    Entra revokes one early): IMAP refuses it, the source signs in again with a renewed
    one, and the pass imports."""
    user = mail_server.fresh_user("revoked")
    messages = [raw(n) for n in range(3)]
    mail_server.dovecot.deliver_many(user, messages)
    out = tmp_path / "out"
    dovecot_mailbox(store, mail_server, out, "box", user)
    held = TokenManager(store).access_token("box")
    mail_server.idp.expire_access_tokens(user)

    result = Poller(store, home).poll("box")
    assert (result.imported, result.failed, result.error) == (3, 0, None)
    assert imported(out, "box") == set(messages)
    assert TokenManager(store).access_token("box") != held  # renewed


@pytest.mark.parametrize("shared", [False, True], ids=["own", "shared"])
@pytest.mark.parametrize(("protocol", "action"), CASES)
def test_import_with_each_after_import_action(
    store: Store,
    home: Path,
    tmp_path: Path,
    mail_server: MailServer,
    protocol: str,
    action: str,
    shared: bool,
) -> None:
    server, dovecot = mail_server, mail_server.dovecot
    user = server.add_user(f"u-{uuid.uuid4().hex[:8]}@{DOMAIN}")
    mailbox = user
    if shared:
        mailbox = server.add_user(f"team-{uuid.uuid4().hex[:8]}@{DOMAIN}")
        dovecot.add_delegate(user, mailbox)
    messages = [raw(n) for n in range(5)]
    dovecot.deliver_many(mailbox, messages)
    if action == "move":
        dovecot.create_folder(mailbox, "Processed")
    port = dovecot.imap_port if protocol == "imap" else dovecot.pop3_port
    box: dict[str, Any] = {
        "name": "box",
        "protocol": protocol,
        "port": port,
        "username": user,
        "after_import": action,
        "oauth": server.user_grant(),
    }
    if shared:
        box["shared_mailbox"] = mailbox
    if action == "move":
        box["move_to"] = "Processed"
    out = tmp_path / "out"
    configure(store, server, out, box)
    sign_in(store, "box", user, server)

    result = Poller(store, home).poll("box")
    assert (result.imported, result.failed, result.error) == (5, 0, None)
    assert imported(out, "box") == set(messages)
    left = dovecot.messages(mailbox)
    if action in ("mark_read", "keep"):
        assert sorted(left) == sorted(messages)
        seen = [("\\Seen" in f) for f in dovecot.flags(mailbox)] if protocol == "imap" else []
        assert all(seen) if action == "mark_read" else not any(seen)
    else:
        assert left == []
    if action == "move":
        assert sorted(dovecot.messages(mailbox, "Processed")) == sorted(messages)

    again = Poller(store, home).poll("box")
    assert (again.imported, again.error) == (0, None)
    # IMAP goes on from its checkpoint: it looks at nothing it handled before. POP3 screens
    # every UIDL the server still lists.
    kept = protocol == "pop3" and action == "keep"
    assert again.skipped == (5 if kept else 0)
    assert len(list(out.glob("box/*/*/message.eml"))) == 5


def test_app_only_access_with_client_credentials(
    store: Store, home: Path, tmp_path: Path, mail_server: MailServer
) -> None:
    server = mail_server
    mailbox = app_user(server, "ap", [raw(1), raw(2)])
    out = tmp_path / "out"
    configure(store, server, out, app_mailbox(server, "app", mailbox))
    result = Poller(store, home).poll("app")  # no Authorize step needed: tokens on demand
    assert (result.imported, result.error) == (2, None)


def test_a_mailbox_the_token_may_not_open_says_why(
    store: Store, home: Path, tmp_path: Path, mail_server: MailServer
) -> None:
    server = mail_server
    user = server.add_user(f"u-{uuid.uuid4().hex[:8]}@{DOMAIN}")
    other = server.add_user(f"team-{uuid.uuid4().hex[:8]}@{DOMAIN}")  # not delegated
    dovecot_mailbox(store, server, tmp_path / "out", "box", user, shared_mailbox=other)
    result = Poller(store, home).poll("box")
    assert result.imported == 0
    assert result.error is not None
    assert f"as shared mailbox {other}" in result.error
    assert "Full Access" in result.error


def test_poll_and_status_commands(
    store: Store, home: Path, database_url: str, tmp_path: Path, mail_server: MailServer
) -> None:
    import json
    import os

    server = mail_server
    mailbox = app_user(server, "cli", [raw(1), raw(2), raw(3)])
    configure(store, server, tmp_path / "out", app_mailbox(server, "app", mailbox))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILINTAKE_")}
    env.update(MAILINTAKE_HOME=str(home), MAILINTAKE_DATABASE_URL=database_url)

    def run(*args: str) -> Completed:
        return run_cli(args, env=env)

    polled = run("poll", "app", "--json")
    assert polled.returncode == 0, polled.stderr
    (summary,) = json.loads(polled.stdout)["mailboxes"]
    assert (summary["imported"], summary["skipped"], summary["failed"]) == (3, 0, 0)
    again = run("poll", "--all")
    assert again.returncode == 0, again.stderr
    assert "app: imported 0, skipped 0, failed 0" in again.stdout  # nothing new: not listed
    status = json.loads(run("status", "--json").stdout)["mailboxes"][0]
    assert (status["imported"], status["failed"], status["authorization_state"]) == (
        3,
        0,
        "authorized",
    )
    assert status["last_poll_at"] is not None
    assert DAEMON_SECRET not in polled.stdout + polled.stderr + again.stdout + again.stderr


def test_a_session_that_ends_under_it_signs_in_again(mail_server: MailServer) -> None:
    import socket

    from mailintake.sources.imap import ImapSettings, ImapSource

    server, dovecot = mail_server, mail_server.dovecot
    user = server.add_user(f"re-{uuid.uuid4().hex[:8]}@{DOMAIN}")
    messages = [raw(1), raw(2)]
    dovecot.deliver_many(user, messages)
    tokens: list[str] = []

    def token() -> str:
        tokens.append(server.token(user))
        return tokens[-1]

    source = ImapSource(
        ImapSettings(
            host=dovecot.host,
            port=dovecot.imap_port,
            security="none",
            username=user,
            login_as=user,
            folder="INBOX",
            after_import="mark_read",
            move_to=None,
        ),
        token,
        "box",
    )
    source.open()
    try:
        items = source.list_items()
        # The server drops the session (as Exchange does when the token it logged in with
        # expires: "BYE Session invalidated - AccessTokenExpired").
        source.client._imap.sock.shutdown(socket.SHUT_RDWR)
        fetched = [body for _item, body in source.fetch(items)]
        assert sorted(fetched) == sorted(messages)
        assert len(tokens) == 2  # signed in again with a fresh token
        source.client._imap.sock.shutdown(socket.SHUT_RDWR)
        source.acknowledge([i.source for i in items])
    finally:
        source.close()
    assert all("\\Seen" in f for f in dovecot.flags(user))


def test_check_says_what_it_found_or_which_step_failed(
    store: Store, home: Path, tmp_path: Path, mail_server: MailServer
) -> None:
    from mailintake.engine.check import check_mailbox

    server, dovecot = mail_server, mail_server.dovecot
    mailbox = app_user(server, "chk", [raw(1), raw(2)])
    box = app_mailbox(server, "app", mailbox)
    configure(store, server, tmp_path / "out", box)
    found = check_mailbox(store, "app")
    assert found.ok, found.steps
    assert [s["step"] for s in found.steps] == ["token", "sign-in", "folder"]
    assert found.steps[2]["detail"] == "INBOX: 2 message(s), 2 not imported yet"
    assert dovecot.flags(mailbox) == [set(), set()]  # nothing changed on the server
    # A mailbox the application has no permission for: the step and the reason.
    other = server.add_user(f"chk-{uuid.uuid4().hex[:8]}@{DOMAIN}")
    configure(store, server, tmp_path / "out", {**box, "username": other})
    refused = check_mailbox(store, "app")
    assert not refused.ok
    assert refused.steps[-1]["step"] == "sign-in"
    assert "refused the token" in str(refused.steps[-1]["detail"])
    assert refused.exit_code == 3
    # A wrong client secret fails at the token step, with the fix.
    configure(
        store,
        server,
        tmp_path / "out",
        {**box, "oauth": {**box["oauth"], "client_secret": "wrong"}},
    )
    wrong = check_mailbox(store, "app")
    assert [s["step"] for s in wrong.steps] == ["token"]
    assert "AADSTS7000215" in str(wrong.steps[0]["detail"])
    # A folder that is not there fails at the folder step, with those that are.
    configure(store, server, tmp_path / "out", {**box, "folder": "Invoices"})
    missing = check_mailbox(store, "app")
    assert [s["step"] for s in missing.steps] == ["token", "folder"]
    assert str(missing.steps[1]["detail"]).endswith("; the folders there: INBOX")
    assert missing.exit_code == 4


def test_serve_polls_by_itself(
    store: Store, settings: Any, tmp_path: Path, mail_server: MailServer, bearer: dict[str, str]
) -> None:
    import time

    from fastapi.testclient import TestClient

    from mailintake.web.app import create_app

    server = mail_server
    mailbox = app_user(server, "srv", [raw(1), raw(2), raw(3)])
    configure(
        store, server, tmp_path / "out", app_mailbox(server, "app", mailbox, poll_interval=10)
    )
    served = settings.model_copy(update={"allowed_hosts": ("testserver",)})  # TestClient's name
    with TestClient(create_app(served, store=store, scheduler=True), headers=bearer) as api:
        deadline = time.monotonic() + 30
        while True:
            (row,) = api.get("/api/v1/status").json()["mailboxes"]
            if row["imported"] == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert row["imported"] == 3
        assert row["authorization_state"] == "authorized"
        recent = api.get("/api/v1/imports", params={"mailbox": "app"}).json()["imports"]
        assert sorted(r["subject"] for r in recent) == ["Order 1", "Order 2", "Order 3"]


def test_a_move_to_folder_that_is_not_there_stops_the_poll_before_importing(
    store: Store, home: Path, tmp_path: Path, mail_server: MailServer
) -> None:
    server, dovecot = mail_server, mail_server.dovecot
    user = server.add_user(f"u-{uuid.uuid4().hex[:8]}@{DOMAIN}")
    messages = [raw(n) for n in range(3)]
    dovecot.deliver_many(user, messages)
    dovecot.create_folder(user, "Processed")
    box: dict[str, Any] = {
        "name": "box",
        "protocol": "imap",
        "port": dovecot.imap_port,
        "username": user,
        "after_import": "move",
        "move_to": "Procesed",
        "oauth": server.user_grant(),
    }
    out = tmp_path / "out"
    configure(store, server, out, box)
    sign_in(store, "box", user, server)
    result = Poller(store, home).poll("box")
    assert result.imported == 0
    assert result.error == (
        f"box: IMAP {dovecot.host}:{dovecot.imap_port}: move_to 'Procesed' is not a folder of "
        "this mailbox; the folders there: INBOX, Processed"
    )
    assert imported(out, "box") == set()
    assert sorted(dovecot.messages(user)) == sorted(messages)
    box["move_to"] = "Processed"
    configure(store, server, out, box)
    fixed = Poller(store, home).poll("box")
    assert (fixed.imported, fixed.error) == (3, None)
    assert sorted(dovecot.messages(user, "Processed")) == sorted(messages)


def test_a_momentary_refresh_refusal_keeps_the_mailbox_and_the_next_poll_imports(
    store: Store, home: Path, tmp_path: Path, mail_server: MailServer
) -> None:
    """Entra refuses a good refresh token once (AADSTS70000): that poll fails, the mailbox
    stays authorized with the refusal in its status, and the next poll refreshes with the
    same refresh token and imports."""
    server, dovecot = mail_server, mail_server.dovecot
    user = server.add_user(f"gl-{uuid.uuid4().hex[:8]}@{DOMAIN}")
    messages = [raw(n) for n in range(3)]
    dovecot.deliver_many(user, messages)
    out = tmp_path / "out"
    box = {
        "name": "box",
        "protocol": "imap",
        "port": dovecot.imap_port,
        "username": user,
        "oauth": server.user_grant(),
    }
    configure(store, server, out, box)
    sign_in(store, "box", user, server)
    with store.read() as repo:
        kept = repo.grant("box").refresh_token  # type: ignore[union-attr]
    clock = [datetime.now(UTC) + timedelta(hours=2)]  # the access token has expired
    tokens = TokenManager(store, now=lambda: clock[0])
    server.idp.refuse_next_refresh("invalid_grant", 70000, username=user)

    failed = Poller(store, home, tokens=tokens).poll("box")
    assert failed.error is not None
    assert "AADSTS70000" in failed.error
    assert failed.imported == 0
    with store.read() as repo:
        status = next(r for r in mailbox_status(repo) if r["name"] == "box")
        assert repo.grant("box").refresh_token == kept  # type: ignore[union-attr]
    assert status["authorization_state"] == "authorized"
    assert "AADSTS70000" in status["authorization_detail"]

    clock[0] += timedelta(minutes=5)
    again = Poller(store, home, tokens=tokens).poll("box")
    assert (again.imported, again.error) == (3, None)
    assert imported(out, "box") == set(messages)
    with store.read() as repo:
        status = next(r for r in mailbox_status(repo) if r["name"] == "box")
    assert (status["authorization_state"], status["authorization_detail"]) == ("authorized", None)
