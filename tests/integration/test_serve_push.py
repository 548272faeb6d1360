"""``mailintake serve`` with its scheduler keeps IMAP IDLE connections as a worker does, within
its ``--idle-connections`` budget, so that a single-process install gets push: a real
``serve`` process and a real Dovecot, a mailbox polled every hour whose new mail is imported
within seconds."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mailintake.services.apply import apply_document
from mailintake.settings import Settings
from mailintake.store.repo import Store
from sandbox import http_clients
from tests.support import serve
from tests.support.dovecot import DAEMON_APP, MailServer
from tests.support.mail import raw
from tests.support.oauth import microsoft_at


def until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.1)


@contextmanager
def serving(settings: Settings, *options: str) -> Iterator[str]:
    """The base URL of a running ``serve`` on the store of ``settings``."""
    with serve.serving(settings.home, *options, database_url=settings.database_url) as running:
        yield running[0]


def gauge(base: str, name: str) -> float | None:
    text = http_clients.get(f"{base}/metrics", timeout=10).text
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


def captured(out: Path, name: str) -> set[bytes]:
    return {p.read_bytes() for p in out.glob(f"{name}/*/*/message.eml")}


def polled(store: Store) -> bool:
    with store.read() as repo:
        return repo.get_mailbox("box").last_poll_at is not None


def configure(store: Store, server: MailServer, out: Path, push: str) -> str:
    """One IMAP mailbox "box" polled every hour, read app-only; its Dovecot user."""
    user = server.fresh_user("serve")
    server.dovecot.create_folder(user, "INBOX")
    server.dovecot.add_delegate(DAEMON_APP, user)
    box = {
        "name": "box",
        "protocol": "imap",
        "host": server.dovecot.host,
        "port": server.dovecot.imap_port,
        "security": "none",
        "username": user,
        "output": "capture",
        "poll_interval": 3600,
        "push": push,
        "oauth": server.app_grant(),
    }
    document = {
        "authorization_servers": [microsoft_at(server.idp.base_url)],
        "outputs": [{"name": "capture", "type": "folder", "path": str(out)}],
        "mailboxes": [box],
    }
    apply_document(store, document, {})
    return user


def test_serve_keeps_idle_connections_and_imports_within_seconds(
    settings: Settings, store: Store, mail_server: MailServer, tmp_path: Path
) -> None:
    out = tmp_path / "capture"
    user = configure(store, mail_server, out, "auto")
    with serving(settings, "--idle-connections", "2") as base:
        until(lambda: gauge(base, "mailintake_idle_connections") == 1, 60, "IDLE")
        assert gauge(base, "mailintake_idle_connection_budget") == 2
        # The first message may be found by the pass the new connection starts; the
        # second only by the server's word in IDLE, with the next poll an hour away.
        for n in (1, 2):
            message = raw(n)
            mail_server.dovecot.deliver(user, message)
            until(lambda: message in captured(out, "box"), 30, f"message {n}")  # noqa: B023


def test_serve_with_no_idle_connections_keeps_none(
    settings: Settings, store: Store, mail_server: MailServer, tmp_path: Path
) -> None:
    out = tmp_path / "capture"
    configure(store, mail_server, out, "auto")
    with serving(settings, "--idle-connections", "0") as base:
        until(lambda: polled(store), 60, "a poll")
        # push never started: no budget set in this process, no connection
        assert not gauge(base, "mailintake_idle_connection_budget")
        assert not gauge(base, "mailintake_idle_connections")
