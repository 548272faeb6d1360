"""The Dovecot test server as pytest sees it: the ``mail_server`` fixture (one identity
provider and one Dovecot per test process, registered in tests/conftest.py),
``MailServer`` (tokens for the test's users), the SASL client responses, and the names of
``sandbox.dovecot``, where the server itself lives::

    from tests.support.dovecot import DOMAIN, MailServer, answer_once, xoauth2

    def test_it(mail_server: MailServer) -> None:
        user = mail_server.fresh_user()  # a mailbox of its own: the server is shared
        mail_server.dovecot.deliver(user, b"Subject: hi\\r\\n\\r\\nbody\\r\\n")
        token = mail_server.token(user)  # password grant, public client MAIL_APP
        with imaplib.IMAP4(mail_server.dovecot.host, mail_server.dovecot.imap_port) as imap:
            imap.authenticate("XOAUTH2", answer_once(xoauth2(user, token)))

or start one yourself with ``start_dovecot(tmp_path, idp.base_url + "/introspect")`` (the
identity provider must be made with ``introspection_open=True``); stop it with ``stop()`` or
use it in a ``with`` block. Without Dovecot installed, the test is skipped (or fails when CI
requires every service).
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mailintake.sources.base import MailSource
from sandbox import http_clients
from sandbox.dovecot import (
    ALICE,
    BOB,
    DAEMON_APP,
    DAEMON_SECRET,
    DOMAIN,
    MAIL_APP,
    MAIL_USER,
    OUTLOOK_APP_SCOPE,
    OUTLOOK_SCOPES,
    PASSWORDS,
    SHARED,
    USER_PASSWORD,
    Dovecot,
    build_mail_idp,
)
from sandbox.dovecot import start_dovecot as _start
from sandbox.dovecot.launch import DovecotMissing
from sandbox.idp import IdentityProvider, User
from tests.support.services import service_missing

__all__ = [
    "ALICE",
    "BOB",
    "DAEMON_APP",
    "DAEMON_SECRET",
    "DOMAIN",
    "MAIL_APP",
    "MAIL_USER",
    "OUTLOOK_APP_SCOPE",
    "OUTLOOK_SCOPES",
    "PASSWORDS",
    "SHARED",
    "USER_PASSWORD",
    "Dovecot",
    "MailServer",
    "answer_once",
    "build_mail_idp",
    "mail_server",
    "oauthbearer",
    "start_dovecot",
    "xoauth2",
]


def start_dovecot(folder: Path, introspection_url: str) -> Dovecot:
    """``sandbox.dovecot.start_dovecot``, skipping the test when Dovecot is not installed."""
    try:
        return _start(folder, introspection_url)
    except DovecotMissing as exc:
        service_missing(str(exc))
        raise AssertionError("unreachable") from exc


def xoauth2(user: str, token: str) -> bytes:
    """The XOAUTH2 client response (before base64)."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def oauthbearer(user: str, token: str) -> bytes:
    """The OAUTHBEARER client response (RFC 7628, before base64)."""
    return f"n,a={user},\x01auth=Bearer {token}\x01\x01".encode()


def answer_once(payload: bytes, *, on_error: bytes = b"") -> Callable[[bytes], bytes]:
    """An imaplib authentication callback: ``payload`` first; when the server refuses the
    token it sends an error challenge and imaplib calls back again: then ``on_error`` (empty
    for XOAUTH2, ``b"\\x01"`` for OAUTHBEARER)."""
    calls: list[bytes] = []

    def respond(challenge: bytes) -> bytes:
        calls.append(challenge)
        return payload if len(calls) == 1 else on_error

    return respond


@dataclass
class MailServer:
    """The sandbox identity provider and a Dovecot that trusts its tokens."""

    idp: IdentityProvider
    dovecot: Dovecot
    passwords: dict[str, str] = field(default_factory=lambda: dict(PASSWORDS))

    def user_grant(self) -> dict[str, Any]:
        """A mailbox's ``oauth`` section for a person signing in (authorization code with the
        public client ``MAIL_APP``; authorize it with the user's password)."""
        return {
            "authorization_server": "MICROSOFT",
            "grant_type": "authorization_code",
            "tenant_id": self.idp.tenant_id,
            "client_id": MAIL_APP,
            "redirect_uri": "http://localhost/",
        }

    def app_grant(self) -> dict[str, Any]:
        """A mailbox's ``oauth`` section for the daemon application (client credentials of
        ``DAEMON_APP``; the mailbox needs ``dovecot.add_delegate(DAEMON_APP, mailbox)``)."""
        return {
            "authorization_server": "MICROSOFT",
            "grant_type": "client_credentials",
            "tenant_id": self.idp.tenant_id,
            "client_id": DAEMON_APP,
            "client_secret": DAEMON_SECRET,
        }

    def fresh_user(self, prefix: str = "u") -> str:
        """A new user with an address no other test uses."""
        return self.add_user(f"{prefix}-{uuid.uuid4().hex[:8]}@{DOMAIN}")

    def add_user(self, username: str, password: str = USER_PASSWORD) -> str:
        """Register another user (consented to ``MAIL_APP``); returns the address."""
        self.passwords[username] = password
        self.idp.add_user(User(username=username, password=password, consented_apps={MAIL_APP}))
        return username

    @property
    def token_endpoint(self) -> str:
        return f"{self.idp.base_url}/{self.idp.tenant_id}/oauth2/v2.0/token"

    def token(
        self, username: str = ALICE, password: str | None = None, scope: str = OUTLOOK_SCOPES
    ) -> str:
        """An access token for ``username`` (password grant with the public client
        ``MAIL_APP``, IMAP and POP scopes unless ``scope`` says otherwise)."""
        answer = http_clients.post(
            self.token_endpoint,
            data={
                "grant_type": "password",
                "client_id": MAIL_APP,
                "username": username,
                "password": password or self.passwords[username],
                "scope": scope,
            },
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token

    def app_token(self) -> str:
        """An app-only access token (client credentials of ``DAEMON_APP``); it opens only
        mailboxes the app was made a delegate of (``add_delegate(DAEMON_APP, mailbox)``)."""
        answer = http_clients.post(
            self.token_endpoint,
            data={
                "grant_type": "client_credentials",
                "client_id": DAEMON_APP,
                "client_secret": DAEMON_SECRET,
                "scope": OUTLOOK_APP_SCOPE,
            },
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token


@pytest.fixture(scope="session")
def mail_server() -> Iterator[MailServer]:
    """The sandbox identity provider and a Dovecot wired to it, shared by every test of the
    process: a test works in mailboxes of its own (``fresh_user``), and changes to the
    identity provider name the user they apply to. Its
    folder is its own (not pytest's numbered temporary folders, which another pytest run on
    the machine may clean up while this one still uses them)."""
    idp = build_mail_idp()
    folder = Path(tempfile.mkdtemp(prefix="mailintake-dovecot-"))
    try:
        with idp.serve() as base, start_dovecot(folder, f"{base}/introspect") as server:
            yield MailServer(idp, server)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def opened(source: MailSource) -> Iterator[MailSource]:
    """A source signed in for the block, closed after it."""
    source.open()
    try:
        yield source
    finally:
        source.close()
