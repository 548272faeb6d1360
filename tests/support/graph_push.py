"""Shared by the Graph push tests and benchmark: a Graph mailbox configured against the
sandbox, ``serve``'s application under uvicorn on a free loopback port with a public URL, and
waiting for what happens in the background."""

from __future__ import annotations

import email.policy
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

from mailintake.engine.poll import Poller
from mailintake.engine.runtime import ImportRuntime
from mailintake.engine.scheduler import Scheduler
from mailintake.services.apply import apply_document
from mailintake.settings import Settings
from mailintake.store.repo import Store
from mailintake.web.app import create_app
from sandbox.demo.tenant import microsoft_at
from sandbox.graph import GraphEmulator
from sandbox.idp import IdentityProvider
from sandbox.ports import free_port
from tests.support.oauth import GRAPH_APP, GRAPH_SECRET

T = TypeVar("T")


def message(n: int, to: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "orders@supplier.example"
    msg["To"] = to
    msg["Subject"] = f"Order {n}"
    msg["Message-ID"] = f"<order-{n}-{time.monotonic_ns()}@supplier.example>"
    msg["Date"] = "Wed, 02 Dec 2026 09:00:00 +0000"
    msg.set_content(f"order {n}")
    return msg.as_bytes(policy=email.policy.SMTP)


def configure(
    store: Store,
    idp: IdentityProvider,
    graph: GraphEmulator,
    out: Path,
    boxes: dict[str, str],
    **extra: Any,
) -> None:
    """Graph mailboxes (name → address, each added to the emulator) signing in with the
    application's client credentials, importing into ``out``."""
    for address in boxes.values():
        if graph.store.mailbox(address) is None:
            graph.add_mailbox(address)
    mailboxes = [
        {
            "name": name,
            "protocol": "graph",
            "graph_url": graph.base_url,
            "username": address,
            "output": "capture",
            "poll_interval": 3600,  # only a notification can start a pass soon
            "oauth": {
                "grant_type": "client_credentials",
                "tenant_id": idp.tenant_id,
                "client_id": GRAPH_APP,
                "client_secret": GRAPH_SECRET,
            },
            **extra,
        }
        for name, address in boxes.items()
    ]
    document = {
        "authorization_servers": [microsoft_at(idp.base_url)],
        "outputs": [{"name": "capture", "type": "folder", "path": str(out)}],
        "mailboxes": mailboxes,
    }
    apply_document(store, document, {})


@contextmanager
def served(settings: Settings, store: Store, *, scheduler: bool = True) -> Iterator[str]:
    """``serve`` (scheduler, Graph subscriptions, notification endpoint) on a free port,
    with that address as its public URL; yields the address. Without ``scheduler``, as
    ``serve --no-scheduler``: workers poll."""
    import uvicorn

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    public = settings.model_copy(update={"public_url": base})
    app = create_app(public, store=store, scheduler=scheduler)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    until(lambda: server.started, "uvicorn to start", 30)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=30)  # serve's lifespan ends its loops before it returns


@contextmanager
def worker(store: Store, home: Path) -> Iterator[Scheduler]:
    """What ``mailintake worker`` runs (without push), in this process, until the end."""
    with ImportRuntime(switch_interval=None) as runtime:
        scheduler = Scheduler(Poller(store, home, runtime=runtime), concurrency=2)
        loop = scheduler.start()
        try:
            yield scheduler
        finally:
            scheduler.stop()
            loop.join(60)


def until(check: Callable[[], T], what: str, timeout: float = 15.0) -> T:
    """``check()``'s first true value, looked at every 10 ms."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(0.01)


def unannounced(graph: GraphEmulator, address: str, raw: bytes) -> None:
    """A message in the inbox that no notification announces (Graph missed it)."""
    box = graph.store.mailbox(address)
    assert box is not None
    inbox = box.folder("inbox")
    assert inbox is not None
    graph.store.deliver(box, raw, inbox)


def captured(out: Path, mailbox: str) -> list[Path]:
    return sorted(out.glob(f"{mailbox}/*/*/message.eml"))
