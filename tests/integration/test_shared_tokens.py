"""Several workers on one database: a client-credentials token per application shared by
every mailbox using it, renewed once, and Graph's Retry-After honoured by every worker.
Runs on SQLite and PostgreSQL; the second worker is a second store (its own engine and
connections) on the same database."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from pathlib import Path
from typing import Any

from mailintake.engine.factories import build_source
from mailintake.engine.poll import Poller, PollResult
from mailintake.oauth.authorize import authorize
from mailintake.oauth.tokens import TokenManager, load_auth, stored_access
from mailintake.services.edit import edit_item
from mailintake.sources.base import MailSource
from mailintake.sources.graph import GraphSource
from mailintake.store.repo import Store
from mailintake.store.tokens import write_access
from sandbox.graph import GraphEmulator
from sandbox.idp import IdentityProvider
from tests.support.graph import configure_many, raw
from tests.support.oauth import (
    ANNA,
    ANNA_PASSWORD,
    GRAPH_APP,
    NATIVE_APP,
    Browser,
    configure,
    interaction,
    mailbox,
)

SECOND_SECRET = "graph-app-second-secret~789"
NATIVE_LOOPBACK = "http://localhost/"


def shared_boxes(
    store: Store, idp: IdentityProvider, graph: GraphEmulator, out: Path, tag: str, count: int
) -> list[str]:
    """``count`` shared mailboxes in Graph, each with one message, read with one app."""
    names = [f"shared-{n:02d}" for n in range(count)]
    boxes = []
    for name in names:
        address = f"{name}-{tag}@contoso.onmicrosoft.com"
        graph.add_mailbox(address)
        graph.deliver(address, raw(int(name[-2:])))
        boxes.append({"name": name, "username": address})
    configure_many(store, idp, graph.base_url, out, *boxes)
    return names


def client_credentials_requests(idp: IdentityProvider) -> int:
    return sum(1 for r in idp.token_requests if r["grant_type"] == "client_credentials")


def test_twenty_mailboxes_of_one_app_polled_by_two_workers_ask_for_one_token(
    store: Store,
    second: Store,
    home: Path,
    tmp_path: Path,
    idp: IdentityProvider,
    graph: GraphEmulator,
) -> None:
    names = shared_boxes(store, idp, graph, tmp_path / "out", tmp_path.name[-6:], 20)
    idp.reset_counters()
    idp.token_delay = 0.5  # the two workers ask for a token at the same time
    results: list[PollResult] = []
    lock = threading.Lock()

    def work(worker: Store, mine: list[str]) -> None:
        poller = Poller(worker, home)
        for name in mine:
            result = poller.poll(name)
            with lock:
                results.append(result)

    workers = [
        threading.Thread(target=work, args=(store, names[0::2])),
        threading.Thread(target=work, args=(second, names[1::2])),
    ]
    try:
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(timeout=120)
    finally:
        idp.token_delay = 0.0
    assert sorted((r.mailbox, r.imported, r.error) for r in results) == [
        (name, 1, None) for name in names
    ]
    assert client_credentials_requests(idp) == 1  # not one per mailbox
    with store.read() as repo:
        used = {stored_access(repo, load_auth(repo, name)) for name in names}
        states = {repo.get_mailbox(name).auth_state for name in names}
    assert len(used) == 1
    assert states == {"authorized"}


def test_a_new_client_secret_stops_sharing_the_old_token(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    shared_boxes(store, idp, graph, tmp_path / "out", tmp_path.name[-6:], 2)
    app = idp.apps[GRAPH_APP]
    app.secrets[SECOND_SECRET] = None  # a second secret of the same registration
    try:
        manager = TokenManager(store)
        idp.reset_counters()
        first = manager.access_token("shared-00")
        assert manager.access_token("shared-01") == first
        assert client_credentials_requests(idp) == 1
        edit_item(store, "mailbox", "shared-01", {"oauth.client_secret": SECOND_SECRET}, [], {})
        renewed = manager.access_token("shared-01")
        assert renewed != first  # the old secret's token is not used with the new one
        assert client_credentials_requests(idp) == 2
        assert manager.access_token("shared-00") == first  # the other keeps its token
        assert client_credentials_requests(idp) == 2
    finally:
        del app.secrets[SECOND_SECRET]


def no_patience(*args: Any, **kwargs: Any) -> MailSource:
    """The mailbox's source, giving up at the first 429 instead of waiting it out."""
    source = build_source(*args, **kwargs)
    assert isinstance(source, GraphSource)
    source.settings = dataclasses.replace(source.settings, attempts=1)
    return source


def test_a_retry_after_one_worker_was_given_holds_back_the_other(
    store: Store,
    second: Store,
    home: Path,
    tmp_path: Path,
    idp: IdentityProvider,
    graph: GraphEmulator,
) -> None:
    [name, other] = shared_boxes(store, idp, graph, tmp_path / "out", tmp_path.name[-6:], 2)
    with store.read() as repo:
        address = repo.get_mailbox(name).spec.username
    # Graph's budget for this app and mailbox: the first request of a pass goes through,
    # the next answers 429 with a Retry-After of about two minutes.
    graph.faults.budget = (1, 120.0)
    told = Poller(store, home, source_factory=no_patience).poll(name)
    assert told.error is not None
    assert "Graph kept throttling" in told.error
    graph.reset_stats()
    tokens_before = len(idp.token_requests)
    held = Poller(second, home).poll(name)  # another worker, before the time Graph gave
    assert held.error is None  # not a failure: no back-off for it
    assert held.deferred is not None
    assert held.deferred.startswith(f"{name}: throttled by Microsoft Graph until ")
    assert f"for this application and {address}" in held.deferred
    assert graph.stats["requests"] == 0  # Graph was not called for that mailbox
    assert len(idp.token_requests) == tokens_before
    with second.read() as repo:
        record = repo.get_mailbox(name)
    assert record.last_warning == held.deferred  # status says why
    assert record.last_error == told.error  # the skipped poll changed nothing else
    # Another mailbox of the same app is not held back (Graph's limits are per mailbox).
    graph.faults.budget = None
    assert Poller(second, home).poll(other).imported == 1


def test_two_workers_spend_a_refresh_token_once(
    store: Store, second: Store, idp: IdentityProvider
) -> None:
    configure(
        store,
        idp.base_url,
        mailbox("user", "authorization_code", client_id=NATIVE_APP, redirect_uri=NATIVE_LOOPBACK),
    )
    authorize(TokenManager(store), "user", interaction(Browser(ANNA, ANNA_PASSWORD)))
    with store.begin() as repo:  # the access token has expired
        first = repo.grant("user")
        token = repo.access_token("user", "https://graph.microsoft.com")
        assert token is not None
        expired = dataclasses.replace(token, expires_at=dt.datetime.now(dt.UTC))
        write_access(repo.conn, repo.box, "user", expired)
    assert first is not None
    idp.reset_counters()
    idp.token_delay = 1.0  # both workers are inside the renewal at once
    got: list[str] = []

    def renew(worker: Store) -> None:
        got.append(TokenManager(worker).access_token("user"))

    workers = [threading.Thread(target=renew, args=(s,)) for s in (store, second)]
    try:
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(timeout=60)
    finally:
        idp.token_delay = 0.0
    assert [r["grant_type"] for r in idp.token_requests] == ["refresh_token"]
    assert len(got) == 2
    assert len(set(got)) == 1  # the second used what the first stored
    with second.read() as repo:
        rotated = repo.grant("user")
    assert rotated is not None
    assert rotated.refresh_token != first.refresh_token  # the newest one is kept
