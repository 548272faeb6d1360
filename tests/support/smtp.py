"""A real SMTP server for tests (aiosmtpd on a free loopback port): STARTTLS with a
certificate of its own, and AUTH LOGIN / PLAIN required, over TLS only. What it accepted is
kept in ``messages``, parsed."""

from __future__ import annotations

import secrets
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from sandbox.ports import free_port
from tests.support.certs import pem_certificate, pem_key, rsa_key, self_signed


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    login: str


@dataclass
class SmtpServer:
    host: str
    port: int
    ca_file: str  # the PEM certificate clients must trust
    username: str
    password: str
    messages: list[Received] = field(default_factory=list)
    refused_logins: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, _server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        login = session.auth_data.login.decode() if session.auth_data else ""
        with self.server.lock:
            self.server.messages.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), parsed, login)
            )
        return "250 OK"


@contextmanager
def smtp_server(
    tmp_path: Path, username: str = "alerts", *, implicit_tls: bool = False
) -> Iterator[SmtpServer]:
    """The server; its password (``.password``) is made afresh for each. ``implicit_tls``:
    TLS from the first byte (as on port 465) instead of STARTTLS."""
    password = secrets.token_urlsafe(12)
    key = rsa_key()
    cert = self_signed(key, "127.0.0.1", ip_address="127.0.0.1")
    cert_file = tmp_path / "smtp-cert.pem"
    key_file = tmp_path / "smtp-key.pem"
    cert_file.write_bytes(pem_certificate(cert))
    key_file.write_bytes(pem_key(key))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    server = SmtpServer("127.0.0.1", free_port(), str(cert_file), username, password)

    def authenticate(
        _server: Any, _session: Any, _envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if (
            mechanism in ("LOGIN", "PLAIN")
            and isinstance(data, LoginPassword)
            and data.login.decode() == server.username
            and data.password.decode() == server.password
        ):
            return AuthResult(success=True, auth_data=data)
        with server.lock:
            server.refused_logins.append(
                data.login.decode() if isinstance(data, LoginPassword) else ""
            )
        return AuthResult(success=False, handled=False)

    tls: dict[str, Any] = (
        {"ssl_context": context}
        if implicit_tls
        else {"tls_context": context, "require_starttls": True}
    )
    controller = Controller(
        _Handler(server),
        hostname=server.host,
        port=server.port,
        # aiosmtpd counts only STARTTLS as TLS, and warns of AUTH required without it; with
        # implicit TLS every byte is encrypted, and the test checks who signed in instead
        auth_required=not implicit_tls,
        auth_require_tls=not implicit_tls,
        authenticator=authenticate,
        **tls,
    )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()
