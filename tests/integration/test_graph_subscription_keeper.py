"""Keeping Graph subscriptions (engine.graph_push) against the emulator, with the clock passed
in: creation with a secret clientState kept encrypted, renewal before expiry, one keeper per
subscription when several run on one database, push off, removal of the mailbox."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from mailintake.engine.graph_push import RENEW_BEFORE, GraphPush, unsubscribe, unsubscriber
from mailintake.oauth.tokens import TokenManager
from mailintake.services.apply import apply_document
from mailintake.services.export import export_document
from mailintake.sources.graph_subscriptions import LIFETIME
from mailintake.status import mailbox_status
from mailintake.store import graph_subscriptions as stored
from mailintake.store.repo import Store
from mailintake.store.tables import graph_subscriptions, secrets
from sandbox.graph import GraphEmulator
from sandbox.idp import IdentityProvider
from tests.support.graph_push import configure
from tests.support.oauth import DOMAIN, GRAPH_SECRET
from tests.support.webhook_endpoint import Endpoint, webhook_endpoint

pytestmark = pytest.mark.both_databases


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(graph: GraphEmulator) -> Iterator[Clock]:
    time = Clock()
    graph.subscriptions.clock = time  # Graph's clock and ours move together
    yield time
    graph.subscriptions.clock = lambda: datetime.now(UTC)


@pytest.fixture
def public() -> Iterator[Endpoint]:
    """Where the notification URLs point: it answers Graph's validation handshake."""
    with webhook_endpoint() as endpoint:
        yield endpoint


@pytest.fixture
def address(store: Store, idp: IdentityProvider, graph: GraphEmulator, tmp_path: Path) -> str:
    box = f"intake-{uuid.uuid4().hex[:8]}@{DOMAIN}"
    configure(store, idp, graph, tmp_path / "out", {box.split("@")[0]: box})
    return box


@pytest.fixture
def name(address: str) -> str:
    """The mailbox's name, of its own: store locks are named by it, and PostgreSQL's
    advisory locks are shared by every test schema of the database."""
    return address.split("@")[0]


def keeper(store: Store, public: Endpoint, clock: Clock, woken: list[str]) -> GraphPush:
    base = public.url.rsplit("/", 1)[0]
    return GraphPush(store, base, TokenManager(store), woken.append, clock=clock)


def test_created_renewed_before_expiry_and_kept_secret(
    store: Store, graph: GraphEmulator, address: str, public: Endpoint, clock: Clock, name: str
) -> None:
    woken: list[str] = []
    push = keeper(store, public, clock, woken)
    assert push.round() == {name: "created"}
    assert woken == [name]  # a pass for what came before the subscription
    (made,) = graph.subscriptions.of_mailbox(address)
    assert made.notification_url == push.urls[0]
    assert made.expires == pytest.approx(clock.now + LIFETIME, abs=timedelta(seconds=1))
    # The clientState is a secret: encrypted in the store, never exported.
    assert made.client_state is not None
    assert len(made.client_state) >= 32
    with store.read() as repo:
        ciphertexts = repo.conn.execute(select(secrets.c.ciphertext)).scalars().all()
        rows = repo.conn.execute(select(graph_subscriptions)).all()
        found = stored.verified(repo.conn, repo.box, made.id)
    assert found is not None
    assert found.client_state == made.client_state
    assert not any(made.client_state in c for c in ciphertexts)
    assert not any(made.client_state in str(tuple(r)) for r in rows)
    with store.read() as repo:
        assert made.client_state not in str(export_document(repo))
    # Nothing to do until a day before expiry; then renewed (PATCH), the same subscription.
    clock.now += LIFETIME - RENEW_BEFORE - timedelta(minutes=1)
    assert push.round() == {}
    clock.now += timedelta(minutes=2)
    graph.reset_stats()
    assert push.round() == {name: "renewed"}
    assert graph.stats["by_path"] == {f"PATCH /v1.0/subscriptions/{made.id}": 1}
    assert made.expires == pytest.approx(clock.now + LIFETIME, abs=timedelta(seconds=1))
    with store.read() as repo:
        row = stored.load(repo.conn, name)
    assert row is not None
    assert row.expires_at == made.expires
    with store.read() as repo:
        (shown,) = [m for m in mailbox_status(repo) if m["name"] == name]
    assert shown["graph_subscription"] == {
        "id": made.id,
        "folder": "inbox",
        "expires_at": made.expires.isoformat(),
        "notification_url": push.urls[0],
    }
    # Past its expiry (nobody renewed it) Graph has forgotten it: created again.
    clock.now = made.expires + timedelta(minutes=1)
    assert push.round() == {name: "created"}
    (again,) = graph.subscriptions.of_mailbox(address)
    assert again.id != made.id


def test_one_keeper_per_subscription(
    store: Store, graph: GraphEmulator, address: str, public: Endpoint, clock: Clock, name: str
) -> None:
    """Several serve processes on one database: each subscription is created once."""
    woken: list[str] = []
    keepers = [keeper(store, public, clock, woken) for _ in range(4)]
    results: list[dict[str, str]] = []
    start = threading.Barrier(len(keepers))

    def run(push: GraphPush) -> None:
        start.wait()
        results.append(push.round())

    threads = [threading.Thread(target=run, args=(k,)) for k in keepers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.get(name, "") for r in results).count("created") == 1
    assert len(graph.subscriptions.of_mailbox(address)) == 1
    assert woken == [name]


def test_push_off_has_no_subscription(
    store: Store,
    idp: IdentityProvider,
    graph: GraphEmulator,
    address: str,
    public: Endpoint,
    clock: Clock,
    tmp_path: Path,
    name: str,
) -> None:
    push = keeper(store, public, clock, [])
    assert push.round() == {name: "created"}
    configure(store, idp, graph, tmp_path / "out", {name: address}, push="off")
    assert push.round() == {name: "deleted"}
    assert graph.subscriptions.of_mailbox(address) == []
    assert push.round() == {}
    other = f"quiet-{uuid.uuid4().hex[:8]}@{DOMAIN}"
    configure(store, idp, graph, tmp_path / "out", {"quiet": other}, push="off")
    assert push.round() == {}
    assert graph.subscriptions.of_mailbox(other) == []


def test_unsubscribed_before_the_mailbox_is_deleted(
    store: Store, graph: GraphEmulator, address: str, public: Endpoint, clock: Clock, name: str
) -> None:
    push = keeper(store, public, clock, [])
    push.round()
    assert unsubscribe(store, TokenManager(store), name)
    assert graph.subscriptions.of_mailbox(address) == []
    with store.begin() as repo:
        repo.delete_mailbox(name)
    assert push.round() == {}


def test_a_failure_waits_before_trying_again(
    store: Store, graph: GraphEmulator, address: str, public: Endpoint, clock: Clock, name: str
) -> None:
    woken: list[str] = []
    push = keeper(store, public, clock, woken)
    public.validation = "refuse"  # the public URL does not reach us
    assert push.round() == {name: "failed"}
    assert push.round() == {}  # not again at once
    public.validation = "echo"
    clock.now += timedelta(seconds=11)
    assert push.round() == {name: "created"}
    assert len(graph.subscriptions.of_mailbox(address)) == 1


def test_a_new_folder_gets_a_new_subscription(
    store: Store,
    idp: IdentityProvider,
    graph: GraphEmulator,
    address: str,
    public: Endpoint,
    clock: Clock,
    tmp_path: Path,
    name: str,
) -> None:
    push = keeper(store, public, clock, [])
    push.round()
    (first,) = graph.subscriptions.of_mailbox(address)
    graph.add_folder(address, "Invoices")
    configure(store, idp, graph, tmp_path / "out", {name: address}, folder="Invoices")
    assert push.round() == {name: "created"}
    (second,) = graph.subscriptions.of_mailbox(address)
    assert second.id != first.id
    assert second.folder_id == graph.folder_id(address, "Invoices")


def test_a_mailbox_waiting_for_a_person_keeps_its_subscription(
    store: Store, graph: GraphEmulator, address: str, public: Endpoint, clock: Clock, name: str
) -> None:
    push = keeper(store, public, clock, [])
    push.round()
    with store.begin() as repo:
        repo.set_auth_state(name, "error", "the client secret was refused")
    clock.now += LIFETIME  # due for renewal, and more
    graph.subscriptions.clock = lambda: clock.now - LIFETIME  # Graph still has it
    assert push.round() == {}
    assert len(graph.subscriptions.of_mailbox(address)) == 1


def test_apply_prune_deletes_the_subscriptions_of_pruned_mailboxes(
    store: Store,
    idp: IdentityProvider,
    graph: GraphEmulator,
    address: str,
    public: Endpoint,
    clock: Clock,
    tmp_path: Path,
    name: str,
) -> None:
    push = keeper(store, public, clock, [])
    push.round()
    with store.read() as repo:
        document = export_document(repo)
    kept = [m for m in document["mailboxes"] if m["name"] != name]
    kept.append({**document["mailboxes"][0], "name": f"{name}-x", "push": "off"})
    for mailbox in kept:  # secrets come back redacted in exports: give them again
        mailbox["oauth"]["client_secret"] = GRAPH_SECRET
    pruned = {**document, "mailboxes": kept}
    dry = apply_document(
        store, pruned, {}, prune=True, dry_run=True, before_pruning=unsubscriber(store)
    )
    assert {(c.name, c.action) for c in dry} >= {(name, "deleted")}
    assert len(graph.subscriptions.of_mailbox(address)) == 1  # a dry run deletes nothing
    apply_document(store, pruned, {}, prune=True, before_pruning=unsubscriber(store))
    assert graph.subscriptions.of_mailbox(address) == []
    with store.read() as repo:
        assert stored.listed(repo.conn) == {}
