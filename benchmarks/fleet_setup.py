"""The fleet benchmark's mailboxes: one sandbox tenant (the identity provider), the Graph
emulator and a real Dovecot, a mix of mailboxes on them, the one configuration file that
``mailintake apply`` reads, the user grants signed in through the login pages, and messages
appended while the workers run.

The mix, by mailbox number (of every 20): 8 Graph mailboxes read app-only, 5 IMAP and 3
POP3 mailboxes read app-only (the daemon app made a delegate of each), 2 IMAP and 2 POP3
mailboxes read with a user grant (authorization code, each its own user). Dovecot knows
every user at once: its user database is static and a delegation is one small file, so
1,000 users cost no process each.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import yaml

from mailintake.oauth.authorize import Interaction, authorize
from mailintake.oauth.tokens import TokenManager
from mailintake.runtime import open_store
from mailintake.settings import Settings
from sandbox.demo.tenant import microsoft_at
from sandbox.dovecot import DAEMON_APP, DAEMON_SECRET, DOMAIN, MAIL_APP, Dovecot, build_mail_idp
from sandbox.dovecot import start_dovecot as start
from sandbox.graph import GraphEmulator
from sandbox.idp import IdentityProvider, User, daemon_app
from tests.support.oauth import Browser

GRAPH_APP = "a0000000-0000-4000-8000-0000000000f1"
GRAPH_SECRET = "fleet-graph-secret~Value-1"
USER_PASSWORD = "Fleet-User-Password-1!"
# (protocol, grant) for mailbox number n: MIX[n % 20]
MIX = (
    [("graph", "app")] * 8
    + [("imap", "app")] * 5
    + [("pop3", "app")] * 3
    + [("imap", "user")] * 2
    + [("pop3", "user")] * 2
)


@dataclass(frozen=True)
class Box:
    name: str  # the mailbox's name in mailintake
    protocol: str
    grant: str  # "app" (client credentials) or "user" (authorization code)
    address: str


def plan(count: int) -> list[Box]:
    boxes = []
    for n in range(count):
        protocol, grant = MIX[n % len(MIX)]
        name = f"m{n:04d}-{protocol}-{grant}"
        boxes.append(Box(name, protocol, grant, f"{name}@{DOMAIN}"))
    return boxes


def message(seq: int, box: Box) -> tuple[str, bytes]:
    """A small message of its own Message-ID (what the output check looks for)."""
    message_id = f"<fleet-{seq}@bench.example>"
    msg = EmailMessage()
    msg["From"] = f"Supplier {seq % 97} <billing{seq % 97}@supplier.example>"
    msg["To"] = box.address
    msg["Subject"] = f"Invoice {seq}"
    msg["Message-ID"] = message_id
    msg["Date"] = "Tue, 24 Nov 2026 09:00:00 +0000"
    msg.set_content(f"Dear customer,\nplease find invoice {seq} below.\n" * 3)
    return message_id, msg.as_bytes().replace(b"\n", b"\r\n")


@dataclass
class Servers:
    idp: IdentityProvider
    graph: GraphEmulator
    dovecot: Dovecot
    graph_url: str
    sent: dict[str, str] = field(default_factory=dict)  # Message-ID: mailbox name
    _seq: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, box: Box) -> None:
        if box.protocol == "graph":
            self.graph.add_mailbox(box.address)
        elif box.grant == "app":
            self.dovecot.create_folder(box.address, "INBOX")
            self.dovecot.add_delegate(DAEMON_APP, box.address)
        else:
            self.dovecot.create_folder(box.address, "INBOX")
            self.idp.add_user(
                User(username=box.address, password=USER_PASSWORD, consented_apps={MAIL_APP})
            )

    def append(self, box: Box) -> None:
        """Deliver one new message to ``box`` and remember it."""
        with self._lock:
            self._seq += 1
            seq = self._seq
        message_id, raw = message(seq, box)
        if box.protocol == "graph":
            self.graph.deliver(box.address, raw)
        else:
            self.dovecot.deliver(box.address, raw)
        with self._lock:
            self.sent[message_id] = box.name

    def mailbox(self, box: Box, interval: int) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": box.name,
            "protocol": box.protocol,
            "username": box.address,
            "output": "out",
            "poll_interval": interval,
        }
        if box.protocol == "graph":
            entry["graph_url"] = self.graph_url
            entry["oauth"] = {
                "grant_type": "client_credentials",
                "tenant_id": self.idp.tenant_id,
                "client_id": GRAPH_APP,
                "client_secret": "${env:FLEET_GRAPH_SECRET}",
            }
            return entry
        entry["host"] = self.dovecot.host
        entry["port"] = self.dovecot.imap_port if box.protocol == "imap" else self.dovecot.pop3_port
        entry["security"] = "none"  # loopback: Dovecot counts it as secured
        if box.grant == "app":
            entry["oauth"] = {
                "authorization_server": "MICROSOFT",
                "grant_type": "client_credentials",
                "tenant_id": self.idp.tenant_id,
                "client_id": DAEMON_APP,
                "client_secret": "${env:FLEET_DAEMON_SECRET}",
            }
        else:
            entry["oauth"] = {
                "authorization_server": "MICROSOFT",
                "grant_type": "authorization_code",
                "tenant_id": self.idp.tenant_id,
                "client_id": MAIL_APP,
                "redirect_uri": "http://localhost/",
            }
        return entry

    def document(self, boxes: list[Box], interval: int, out: Path) -> dict[str, Any]:
        return {
            "authorization_servers": [microsoft_at(self.idp.base_url)],
            "outputs": [{"name": "out", "type": "folder", "path": str(out)}],
            "mailboxes": [self.mailbox(box, interval) for box in boxes],
        }


SECRETS = {"FLEET_GRAPH_SECRET": GRAPH_SECRET, "FLEET_DAEMON_SECRET": DAEMON_SECRET}


@contextmanager
def servers(root: Path) -> Iterator[Servers]:
    """The identity provider (Dovecot asks it about tokens), the Graph emulator, Dovecot."""
    idp = build_mail_idp()
    idp.add_app(
        daemon_app(
            GRAPH_APP,
            "mail intake (fleet, Graph)",
            GRAPH_SECRET,
            {"https://graph.microsoft.com": ["Mail.ReadWrite"]},
        )
    )
    graph = GraphEmulator(idp)
    with idp.serve() as base, graph.serve() as graph_url:
        dovecot = start(root / "dovecot", f"{base}/introspect")
        with dovecot:
            yield Servers(idp, graph, dovecot, graph_url)


def apply_file(path: Path, environ: dict[str, str]) -> float:
    """``mailintake apply FILE`` as a user runs it; returns its wall time in seconds."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "mailintake", "apply", str(path)],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, **environ},
    )
    return time.perf_counter() - started


def write_config(path: Path, document: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def sign_in_users(settings: Settings, boxes: list[Box]) -> float:
    """Authorize every user-grant mailbox as a person would (the login page, then the
    loopback redirect), four at a time; returns the wall time in seconds."""
    users = [box for box in boxes if box.grant == "user"]
    store = open_store(settings)
    manager = TokenManager(store)

    def one(box: Box) -> None:
        browser = Browser(box.address, USER_PASSWORD)
        show: Any = lambda _text: None  # noqa: E731
        authorize(manager, box.name, Interaction(show, browser.sign_in, lambda _p: "", 60))

    started = time.perf_counter()
    for start_at in range(0, len(users), 4):
        threads = [threading.Thread(target=one, args=(b,)) for b in users[start_at:][:4]]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    store.engine.dispose()
    return time.perf_counter() - started


class Appender:
    """Appends a message to a random mailbox every ``every`` seconds while running."""

    def __init__(self, fleet: Servers, boxes: list[Box], every: float) -> None:
        self.fleet, self.boxes, self.every = fleet, boxes, every
        self._on = threading.Event()
        self._stop = threading.Event()
        self._random = random.Random(11)
        self._thread = threading.Thread(target=self._run, name="appender", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._on.wait(0.2) and not self._stop.is_set():
                self.fleet.append(self._random.choice(self.boxes))
                self._stop.wait(self.every)

    def resume(self) -> None:
        self._on.set()

    def pause(self) -> None:
        self._on.clear()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
