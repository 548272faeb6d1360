"""Graph change notifications end to end: ``serve``'s application under uvicorn with a public
URL, the Graph emulator creating subscriptions after the validation handshake against it and
POSTing notifications to it; a new message is imported within seconds, forged notifications
change nothing, and lifecycle notifications renew, create again or start a whole pass."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from mailintake.settings import Settings
from mailintake.store import graph_subscriptions as stored
from mailintake.store import schedule
from mailintake.store.repo import Store
from mailintake.store.tables import graph_subscriptions
from sandbox import http_clients
from sandbox.graph import GraphEmulator
from sandbox.graph.subscriptions import Subscription
from sandbox.idp import IdentityProvider
from tests.support.graph_push import (
    captured,
    configure,
    message,
    served,
    unannounced,
    until,
    worker,
)
from tests.support.oauth import DOMAIN


def box_name(address: str) -> str:
    """The mailbox's name, of its own: store locks are named by it, and PostgreSQL's
    advisory locks are shared by every test schema of the database."""
    return address.split("@")[0]


@pytest.fixture
def address() -> str:
    return f"orders-{uuid.uuid4().hex[:8]}@{DOMAIN}"


@pytest.fixture
def app(
    settings: Settings,
    store: Store,
    idp: IdentityProvider,
    graph: GraphEmulator,
    address: str,
    tmp_path: Path,
) -> Iterator[str]:
    configure(store, idp, graph, tmp_path / "out", {box_name(address): address})
    with served(settings, store) as base:
        yield base


def subscription(graph: GraphEmulator, address: str, store: Store) -> Subscription:
    """The mailbox's subscription, once Graph has it and the store has recorded it."""
    found = until(lambda: graph.subscriptions.of_mailbox(address), "a subscription")
    assert len(found) == 1

    def recorded() -> bool:
        with store.read() as repo:
            row = stored.load(repo.conn, box_name(address))
        return row is not None and row.subscription_id == found[0].id

    until(recorded, "the subscription to be recorded")
    return found[0]


def first_pass_done(store: Store, name: str) -> None:
    """The passes serve starts by itself have ended: the one at once (the mailbox was never
    polled) and the one after the subscription was recorded; the next is an hour away."""
    with store.read() as repo:
        query = select(graph_subscriptions.c.updated_at).where(
            graph_subscriptions.c.mailbox == name
        )
        recorded = schedule.aware(repo.conn.execute(query).scalar_one())
    assert recorded is not None

    def idle() -> bool:
        with store.read() as repo:
            (due,) = schedule.listed(repo.conn)
            last = schedule.aware(repo.get_mailbox(name).last_poll_at)
        later = datetime.now(UTC) + timedelta(minutes=30)
        return (
            due.polled_by is None
            and due.next_poll_at is not None
            and due.next_poll_at > later
            and last is not None
            and last >= recorded
        )

    until(idle, "the first passes")


def test_a_new_message_is_imported_within_seconds(
    app: str, store: Store, graph: GraphEmulator, address: str, tmp_path: Path
) -> None:
    made = subscription(graph, address, store)
    assert made.notification_url == f"{app}/notifications/graph"
    assert made.lifecycle_url == f"{app}/notifications/graph/lifecycle"
    assert made.change_types == {"created"}
    first_pass_done(store, box_name(address))
    graph.deliver(address, message(1, address))
    started = time.monotonic()
    until(lambda: captured(tmp_path / "out", box_name(address)), "the message to be imported")
    assert time.monotonic() - started < 10  # the next poll was an hour away
    deliveries = graph.subscriptions.deliveries
    (sent,) = [d for d in deliveries if d.kind == "change" and d.subscription == made.id]
    until(lambda: sent.status is not None, "the emulator to record the answer")
    assert sent.status == 202


@pytest.mark.both_databases  # the notification reaches the worker through the store
def test_serve_without_a_scheduler_leaves_the_notified_pass_to_a_worker(
    settings: Settings,
    store: Store,
    idp: IdentityProvider,
    graph: GraphEmulator,
    address: str,
    tmp_path: Path,
) -> None:
    """``serve --no-scheduler --public-url``: serve keeps the subscription and receives the
    notification; it makes the mailbox due now in the store, and a worker's next step (two
    seconds at most) claims it and runs the delta pass."""
    name, out = box_name(address), tmp_path / "out"
    configure(store, idp, graph, out, {name: address})
    with served(settings, store, scheduler=False):
        made = subscription(graph, address, store)
        with worker(store, settings.home):  # the passes of a new mailbox and subscription
            first_pass_done(store, name)
        # No process polls now: the notification leaves the mailbox due, nothing imported.
        graph.deliver(address, message(1, address))
        (sent,) = [d for d in graph.subscriptions.deliveries if d.subscription == made.id]
        until(lambda: sent.status is not None, "the emulator to record the answer")
        assert sent.status == 202

        def due_now() -> bool:
            with store.read() as repo:
                (due,) = schedule.listed(repo.conn)
            return due.next_poll_at is not None and due.next_poll_at <= datetime.now(UTC)

        until(due_now, "the mailbox to be due now (its next poll was an hour away)")
        assert captured(out, name) == []
        with worker(store, settings.home):
            until(lambda: captured(out, name), "the worker to import the notified message")
        with store.read() as repo:
            (due,) = schedule.listed(repo.conn)
        assert due.next_poll_at is not None
        assert due.next_poll_at > datetime.now(UTC) + timedelta(minutes=30)


def test_the_endpoint_answers_the_handshake_and_ignores_forgeries(
    app: str, store: Store, graph: GraphEmulator, address: str, tmp_path: Path
) -> None:
    made = subscription(graph, address, store)
    first_pass_done(store, box_name(address))
    with http_clients.Client(base_url=app, timeout=10) as client:  # no sign-in
        token = "Validation: Testing client application reachability Request-Id: 1 & 2"
        handshake = client.post("/notifications/graph", params={"validationToken": token})
        assert handshake.status_code == 200
        assert handshake.headers["content-type"].startswith("text/plain")
        assert handshake.text == token
        # A notification naming the real subscription with the wrong clientState: 202,
        # and nothing happens (the mailbox is not polled, its message not imported).
        unannounced(graph, address, message(2, address))
        forged = {"value": [{"subscriptionId": made.id, "clientState": "guess"}]}
        for _ in range(20):
            assert client.post("/notifications/graph", json=forged).status_code == 202
        time.sleep(1.5)
        assert captured(tmp_path / "out", box_name(address)) == []
        with store.read() as repo:
            (due,) = schedule.listed(repo.conn)
        assert due.next_poll_at is not None
        assert due.next_poll_at > datetime.now(UTC) + timedelta(minutes=30)
        # After 20 refusals (counted once each has been checked) the address is turned away.
        refused = until(
            lambda: (
                (r := client.post("/notifications/graph", json=forged)).status_code == 429 and r
            ),
            "429 Too Many Requests",
        )
        assert int(refused.headers["retry-after"]) > 0
        # Bodies are limited in size and shape.
        big = client.post("/notifications/graph/lifecycle", content=b"{" + b" " * 300_000)
        assert big.status_code in (413, 429)


def test_oversized_and_malformed_bodies(app: str) -> None:
    with http_clients.Client(base_url=app, timeout=10) as client:
        assert client.post("/notifications/graph", content=b"x" * 300_000).status_code == 413
        assert client.post("/notifications/graph", content=b"[1]").status_code == 400
        assert (
            client.post("/notifications/graph", params={"validationToken": ""}).status_code == 400
        )


@pytest.mark.both_databases  # the subscription's state goes through the store
def test_lifecycle_notifications(
    app: str, store: Store, graph: GraphEmulator, address: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    made = subscription(graph, address, store)
    first_pass_done(store, box_name(address))
    # reauthorizationRequired: renewed at once (PATCH), and notifications flow again.
    graph.reset_stats()
    assert graph.subscriptions.lifecycle(made.id, "reauthorizationRequired")
    until(lambda: not made.paused, "the subscription to be renewed")
    assert graph.stats["by_path"].get(f"PATCH /v1.0/subscriptions/{made.id}") == 1
    graph.deliver(address, message(3, address))
    until(lambda: len(captured(out, box_name(address))) == 1, "the first message")
    # missed: a whole pass, which finds a message no notification announced.
    unannounced(graph, address, message(4, address))
    assert graph.subscriptions.lifecycle(made.id, "missed")
    until(lambda: len(captured(out, box_name(address))) == 2, "the pass after missed")
    # subscriptionRemoved: created again (a new id), and the mailbox polled.
    unannounced(graph, address, message(5, address))
    assert graph.subscriptions.lifecycle(made.id, "subscriptionRemoved")

    def recorded() -> str | None:
        with store.read() as repo:
            row = stored.load(repo.conn, box_name(address))
        return row.subscription_id if row is not None else None

    renewed = until(lambda: recorded() not in (None, made.id) and recorded(), "a new subscription")
    assert [s.id for s in graph.subscriptions.of_mailbox(address)] == [renewed]
    until(lambda: len(captured(out, box_name(address))) == 3, "the pass after re-creation")
    graph.deliver(address, message(6, address))
    until(lambda: len(captured(out, box_name(address))) == 4, "a message notified by the new one")


def test_deleting_the_mailbox_deletes_its_subscription(
    app: str, store: Store, graph: GraphEmulator, address: str
) -> None:
    from mailintake.store.admin import create_api_token

    subscription(graph, address, store)
    headers = {"Authorization": f"Bearer {create_api_token(store, 'tests')}"}
    answer = http_clients.delete(
        f"{app}/api/v1/mailboxes/{box_name(address)}", headers=headers, timeout=30
    )
    assert answer.status_code == 200, answer.text
    assert graph.subscriptions.of_mailbox(address) == []
    with store.read() as repo:
        assert stored.listed(repo.conn) == {}
