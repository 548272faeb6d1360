"""Push on a real Dovecot: a mailbox kept in IMAP IDLE imports a new message within seconds
although its interval is an hour; IDLE issued again on the same connection; a token about
to expire signs the connection in again, and so does Exchange's BYE at token expiry (said
by a relay in front of Dovecot), at once and with a new token; a connection killed on the
server reconnects and loses nothing; a budget of connections (the rest polled at their
interval); ``push: off``; and with two workers each mailbox has one connection."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from mailintake.engine.poll import Poller
from mailintake.engine.push import Connect, PushManager, PushOptions
from mailintake.engine.runtime import ImportRuntime
from mailintake.engine.scheduler import Scheduler
from mailintake.errors import NetworkError
from mailintake.oauth.tokens import TokenManager
from mailintake.observability.metrics import REGISTRY
from mailintake.runtime import open_store
from mailintake.services.apply import apply_document
from mailintake.settings import Settings
from mailintake.sources.imap import ImapSettings
from mailintake.sources.imap_idle import IdleConnection, IdleUnsupported
from mailintake.store import push, schedule
from mailintake.store.repo import Store
from tests.support.dovecot import DAEMON_APP, MailServer
from tests.support.mail import raw, sign_in
from tests.support.oauth import microsoft_at
from tests.support.relay import EndingRelay

FAST = PushOptions(refresh_every=0.3, backoff=0.2, max_backoff=2.0)


def until(condition: Callable[[], bool], seconds: float, what: str = "") -> float:
    """Wait for ``condition``; return how long it took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"not within {seconds} s: {what}"
        time.sleep(0.05)
    return time.monotonic() - started


def captured(out: Path, name: str) -> set[bytes]:
    return {p.read_bytes() for p in out.glob(f"{name}/*/*/message.eml")}


@dataclass
class Box:
    name: str
    user: str


def mailboxes(
    store: Store,
    server: MailServer,
    out: Path,
    count: int,
    *,
    interval: int = 3600,
    push_off: tuple[str, ...] = (),
) -> list[Box]:
    """``count`` IMAP mailboxes read app-only (client credentials), each its own user."""
    boxes = []
    for n in range(count):
        user = server.fresh_user("push")
        server.dovecot.create_folder(user, "INBOX")
        server.dovecot.add_delegate(DAEMON_APP, user)
        boxes.append(Box(f"box{n}", user))
    apply_document(
        store,
        {
            "authorization_servers": [microsoft_at(server.idp.base_url)],
            "outputs": [{"name": "capture", "type": "folder", "path": str(out)}],
            "mailboxes": [
                entry(server, box, interval, "off" if box.name in push_off else None)
                for box in boxes
            ],
        },
        {},
    )
    return boxes


def entry(server: MailServer, box: Box, interval: int, push: str | None) -> dict[str, Any]:
    """The mailbox's configuration: IMAP on Dovecot, read app-only."""
    found: dict[str, Any] = {
        "name": box.name,
        "protocol": "imap",
        "host": server.dovecot.host,
        "port": server.dovecot.imap_port,
        "security": "none",
        "username": box.user,
        "output": "capture",
        "poll_interval": interval,
        "oauth": server.app_grant(),
    }
    if push is not None:
        found["push"] = push
    return found


@dataclass
class Worker:
    scheduler: Scheduler
    push: PushManager


@contextmanager
def worker(
    store: Store, home: Path, options: PushOptions = FAST, connect: Connect = IdleConnection
) -> Iterator[Worker]:
    """What ``mailintake worker`` runs, in this process (``connect``: how a connection in
    IDLE is made)."""
    tokens = TokenManager(store)
    with ImportRuntime(switch_interval=None) as runtime:
        poller = Poller(store, home, tokens=tokens, runtime=runtime)
        scheduler = Scheduler(poller, concurrency=4, heartbeat_every=1.0)
        loop = scheduler.start()
        manager = PushManager(store, tokens, scheduler.wake, scheduler.id, options, connect=connect)
        manager.start()
        try:
            yield Worker(scheduler, manager)
        finally:
            manager.stop()
            scheduler.stop()
            loop.join(60)


def due(store: Store, name: str) -> bool:
    """Whether ``name`` is being polled or due now."""
    with store.read() as repo:
        (found,) = [d for d in schedule.listed(repo.conn) if d.schedule.name == name]
    later = found.next_poll_at is not None and found.next_poll_at > datetime.now(UTC)
    return found.polled_by is not None or not later


def polled(store: Store, name: str) -> bool:
    with store.read() as repo:
        return repo.get_mailbox(name).last_poll_at is not None


def test_a_new_message_is_imported_within_seconds(
    store: Store, home: Path, tmp_path: Path, mail_server: MailServer
) -> None:
    out = tmp_path / "capture"
    (box,) = mailboxes(store, mail_server, out, 1)
    renewing = PushOptions(renew_every=1.0, refresh_every=0.3, backoff=0.2)
    with worker(store, home, renewing) as running:
        until(lambda: running.push.open_connections() == 1, 20, "IDLE")
        until(lambda: polled(store, box.name), 20, "the first pass")
        time.sleep(2.5)  # IDLE issued again twice on the same connection meanwhile
        for n in range(2):
            message = raw(n)
            mail_server.dovecot.deliver(box.user, message)
            took = until(lambda m=message: m in captured(out, box.name), 5, "the import")
            assert took < 5
        assert running.push.sign_ins == {box.name: 1}  # one connection all along
        assert REGISTRY.get_sample_value("mailintake_idle_connections") == 1
        assert REGISTRY.get_sample_value("mailintake_idle_connection_budget") == 100
    with store.read() as repo:
        assert push.holders(repo.conn) == {}  # let go of when the worker stopped
    assert mail_server.dovecot.sessions(box.user) == []


def test_a_connection_killed_on_the_server_reconnects_and_loses_nothing(
    store: Store, home: Path, tmp_path: Path, mail_server: MailServer
) -> None:
    out = tmp_path / "capture"
    (box,) = mailboxes(store, mail_server, out, 1)
    with worker(store, home) as running:
        until(lambda: running.push.open_connections() == 1, 20, "IDLE")
        until(lambda: polled(store, box.name), 20, "the first pass")

        def quiet() -> bool:  # the passes IDLE's start asked for are over: only IDLE is left
            alone = running.scheduler.running() == 0 and not due(store, box.name)
            return alone and len(mail_server.dovecot.sessions(box.user)) == 1

        until(quiet, 10, "IDLE alone")
        assert mail_server.dovecot.kill_sessions(box.user) == 1
        message = raw(1)  # arrives while the connection is down
        mail_server.dovecot.deliver(box.user, message)
        until(lambda: running.push.sign_ins.get(box.name) == 2, 8, "connected again")
        until(lambda: message in captured(out, box.name), 8, "the import after reconnecting")
        assert running.push.open_connections() == 1


def test_a_token_about_to_expire_signs_the_connection_in_again(
    store: Store,
    home: Path,
    tmp_path: Path,
    mail_server: MailServer,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Exchange Online ends a session whose token expired (``BYE Session invalidated -
    AccessTokenExpired``); Dovecot refuses a sign-in with an expired token. Tokens of 8 s:
    the connection signs in again with a new one before each expires, and keeps working."""
    out = tmp_path / "capture"
    user = mail_server.fresh_user("expiry")
    found = mail_server.idp.user(user)
    assert found is not None
    found.token_lifetime = 8
    mail_server.dovecot.create_folder(user, "INBOX")
    box: dict[str, Any] = {
        "name": "box0",
        "protocol": "imap",
        "host": mail_server.dovecot.host,
        "port": mail_server.dovecot.imap_port,
        "security": "none",
        "username": user,
        "output": "capture",
        "poll_interval": 3600,
        "oauth": mail_server.user_grant(),
    }
    apply_document(
        store,
        {
            "authorization_servers": [microsoft_at(mail_server.idp.base_url)],
            "outputs": [{"name": "capture", "type": "folder", "path": str(out)}],
            "mailboxes": [box],
        },
        {},
    )
    sign_in(store, "box0", user, mail_server)
    with worker(store, home) as running:
        until(lambda: running.push.sign_ins.get("box0", 0) >= 3, 30, "two sign-ins again")
        assert running.push.open_connections() == 1
        message = raw(uuid.uuid4().int % 1000)
        mail_server.dovecot.deliver(user, message)
        until(lambda: message in captured(out, "box0"), 5, "the import")
    with mail_server.idp.lock:
        tokens = [r.token for r in mail_server.idp.access_tokens.values() if r.username == user]
    said = capfd.readouterr()
    assert len(tokens) >= 3
    assert not [t for t in tokens if t in said.out or t in said.err]  # never logged


def test_exchanges_bye_at_token_expiry_signs_in_again_with_a_new_token_at_once(
    store: Store, home: Path, tmp_path: Path, mail_server: MailServer
) -> None:
    """Exchange Online ends a session in IDLE whose token expired with ``* BYE Session
    invalidated - AccessTokenExpired`` (Dovecot never does: a relay in front of it says it,
    once the first session is in IDLE). The connection signs in again at once with a new
    token although the one it had is fresh for the token manager, and goes on idling; it is
    no failure (after a failure it would wait the 10-minute back-off first, and the second
    IDLE would not come within the test's wait)."""
    out = tmp_path / "capture"
    (box,) = mailboxes(store, mail_server, out, 1)
    patient = dataclasses.replace(FAST, backoff=600.0, max_backoff=600.0)
    dovecot = mail_server.dovecot
    with EndingRelay(dovecot.host, dovecot.imap_port) as relay:

        def through_relay(settings: ImapSettings, token: Callable[[], str], name: str) -> Any:
            return IdleConnection(dataclasses.replace(settings, port=relay.port), token, name)

        with worker(store, home, patient, through_relay) as running:
            until(lambda: relay.ended == 1, 20, "the BYE")
            until(lambda: running.push.sign_ins.get(box.name) == 2, 20, "IDLE again")
            assert running.push.open_connections() == 1
            message = raw(uuid.uuid4().int % 1000)
            dovecot.deliver(box.user, message)
            until(lambda: message in captured(out, box.name), 10, "the import")
        first, second = relay.tokens()
    assert first != second


@pytest.mark.slow
def test_mailboxes_past_the_budget_are_polled_at_their_interval(
    store: Store, home: Path, tmp_path: Path, mail_server: MailServer
) -> None:
    out = tmp_path / "capture"
    boxes = mailboxes(store, mail_server, out, 3, interval=10)
    budget = PushOptions(connections=2, refresh_every=0.3, backoff=0.2)
    with worker(store, home, budget) as running:
        until(lambda: running.push.open_connections() == 2, 20, "two IDLE connections")
        until(lambda: all(polled(store, b.name) for b in boxes), 20, "the first passes")
        assert running.push.held() == {"box0", "box1"}
        assert REGISTRY.get_sample_value("mailintake_idle_connections") == 2
        assert REGISTRY.get_sample_value("mailintake_idle_connection_budget") == 2
        pushed, polled_only = raw(1), raw(2)
        mail_server.dovecot.deliver(boxes[0].user, pushed)
        mail_server.dovecot.deliver(boxes[2].user, polled_only)
        until(lambda: pushed in captured(out, "box0"), 5, "the pushed mailbox's import")
        until(lambda: polled_only in captured(out, "box2"), 15, "the interval poll's import")
        assert "box2" not in running.push.sign_ins  # never kept in IDLE


def test_push_off_keeps_no_connection(
    store: Store, home: Path, tmp_path: Path, mail_server: MailServer
) -> None:
    out = tmp_path / "capture"
    boxes = mailboxes(store, mail_server, out, 2, push_off=("box1",))
    with worker(store, home) as running:
        until(lambda: running.push.open_connections() == 1, 20, "IDLE")
        until(lambda: all(polled(store, b.name) for b in boxes), 20, "the first passes")
        time.sleep(1.0)  # a few looks at the store more
        assert running.push.held() == {"box0"}
        assert mail_server.dovecot.sessions(boxes[1].user) == []
        apply_document(store, {"mailboxes": [entry(mail_server, boxes[0], 3600, "off")]}, {})
        until(lambda: running.push.held() == frozenset(), 5, "push off for box0")
        until(lambda: mail_server.dovecot.sessions(boxes[0].user) == [], 5, "its session gone")


@pytest.mark.postgres
def test_two_workers_keep_one_connection_per_mailbox(
    postgres_url: str, home: Path, tmp_path: Path, mail_server: MailServer
) -> None:
    store = open_store(Settings(home=home, database_url=postgres_url))
    try:
        out = tmp_path / "capture"
        boxes = mailboxes(store, mail_server, out, 3)
        budget = PushOptions(connections=2, refresh_every=0.3, backoff=0.2)
        with worker(store, home, budget) as first, worker(store, home, budget) as second:
            until(
                lambda: first.push.open_connections() + second.push.open_connections() == 3,
                20,
                "three IDLE connections",
            )
            assert first.push.held().isdisjoint(second.push.held())
            assert first.push.held() | second.push.held() == {b.name for b in boxes}
            for b in boxes:
                assert len(mail_server.dovecot.sessions(b.user)) <= 2  # IDLE, and a pass
            first.push.stop()  # its mailboxes are let go of: the other takes what it may
            until(lambda: len(second.push.held()) == 2, 10, "taken over")
            until(lambda: second.push.open_connections() == 2, 10, "open")
    finally:
        store.engine.dispose()


class Refusing(IdleConnection):
    """A server that offers no IDLE, or (``down``) cannot be reached: the mailbox is polled
    at its interval."""

    opened: ClassVar[list[float]] = []
    down = False

    def __init__(self, settings: ImapSettings, token: Callable[[], str], mailbox: str) -> None:
        super().__init__(settings, token, mailbox)
        self.opened.append(time.monotonic())

    def open(self) -> None:
        if self.down:
            raise NetworkError(f"{self.mailbox}: cannot connect: connection refused")
        raise IdleUnsupported(f"{self.mailbox}: the server does not offer IDLE")


def test_a_server_without_idle_is_asked_again_only_later(
    store: Store, home: Path, tmp_path: Path, mail_server: MailServer
) -> None:
    out = tmp_path / "capture"
    (box,) = mailboxes(store, mail_server, out, 1)
    Refusing.opened = []
    with worker(store, home, connect=Refusing) as running:
        until(lambda: len(Refusing.opened) == 1, 20, "a first try")
        until(lambda: running.push.held() == frozenset(), 5, "let go of")
        time.sleep(1.5)  # five looks at the store: not taken again within the hour
        assert len(Refusing.opened) == 1
        with store.read() as repo:
            assert push.holders(repo.conn) == {}
        until(lambda: polled(store, box.name), 20, "polled all the same")


def test_a_server_that_cannot_be_reached_is_tried_less_and_less_often(
    store: Store, home: Path, tmp_path: Path, mail_server: MailServer
) -> None:
    out = tmp_path / "capture"
    mailboxes(store, mail_server, out, 1)

    class Down(Refusing):
        opened: ClassVar[list[float]] = []
        down = True

    backing_off = PushOptions(refresh_every=0.3, backoff=0.1, max_backoff=0.8)
    with worker(store, home, backing_off, connect=Down) as running:
        until(lambda: len(Down.opened) >= 6, 20, "six tries")
        assert running.push.held() == {"box0"}  # kept: the server may come back
    waits = [b - a for a, b in zip(Down.opened, Down.opened[1:], strict=False)]
    assert waits[4] >= 0.75  # 0.1, 0.2, 0.4, 0.8, then 0.8 again
    assert waits[0] < waits[4]
