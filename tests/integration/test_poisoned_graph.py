"""Graph: a message whose ``$value`` fails every time (500 ErrorMimeContentConversionFailed
for S/MIME items, 404 ErrorItemNotFound for an item gone since the listing, 504 for a large
one) fails alone, listed with the subject and sender the listing gave; the rest of the
folder is imported. A Graph that fails every request charges no message."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mailintake.engine.factories import build_graph_source
from mailintake.engine.poll import Poller
from mailintake.errors import MessageUnavailable, NetworkError
from mailintake.sources.base import MailSource
from mailintake.sources.graph import GraphSettings, GraphSource
from mailintake.store import import_views
from mailintake.store.repo import Store
from sandbox.graph import GraphEmulator
from sandbox.graph.faults import LargeValues
from sandbox.idp import IdentityProvider
from tests.support.graph import app_token, configure, raw
from tests.support.web import Cli


def quick(*args: Any, **kwargs: Any) -> MailSource:
    """The mailbox's Graph source, with short pauses between its tries of a 503/504."""
    source = build_graph_source(*args, **kwargs)
    source.settings = dataclasses.replace(source.settings, attempts=3, backoff=0.01)
    return source


def test_messages_graph_cannot_give_fail_alone(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    address = f"poison-{tmp_path.name[-6:]}@contoso.onmicrosoft.com"
    graph.add_mailbox(address)
    ids = [graph.deliver(address, raw(n)) for n in range(7)]
    graph.faults.fail_message(ids[2], "value", 500, "ErrorMimeContentConversionFailed", 99)
    graph.faults.fail_message(ids[3], "value", 404, "ErrorItemNotFound", 99)
    graph.faults.fail_message(ids[4], "value", 504, "GatewayTimeout", 99)
    out = tmp_path / "out"
    configure(store, idp, graph.base_url, out, username=address)
    result = Poller(store, home, source_factory=quick).poll("claims")
    assert (result.imported, result.failed, result.error) == (4, 3, None)
    assert len(list(out.glob("claims/*/*/message.eml"))) == 4
    with store.read() as repo:
        listed = {
            p["reason"].split("message ")[1][: len(ids[2])]: p
            for p in import_views.problems(repo.conn, "claims")
        }
    assert set(listed) == set(ids[2:5])
    assert "HTTP 500 ErrorMimeContentConversionFailed" in listed[ids[2]]["reason"]
    assert "HTTP 404 ErrorItemNotFound" in listed[ids[3]]["reason"]
    assert "kept failing to give message" in listed[ids[4]]["reason"]
    assert "504" in listed[ids[4]]["reason"]
    assert listed[ids[2]]["subject"] == "Claim 2"
    assert listed[ids[2]]["from"] is not None
    assert all(p["status"] == "failed" and p["tries"] == 1 for p in listed.values())
    # the others were acknowledged (marked read); the three stay unread for their next try
    assert [m["isRead"] for m in graph.messages(address)] == [
        True,
        True,
        False,
        False,
        False,
        True,
        True,
    ]

    box = graph.store.mailbox(address)  # the one Graph did not find is really gone
    assert box is not None
    with graph.store.lock:
        box.remove(box.messages[ids[3]])
    # The next poll goes on from the folder's delta link: it lists nothing, so it cannot say
    # which failed messages are gone; the three stay in the list until their next try.
    again = Poller(store, home, source_factory=quick).poll("claims")
    assert (again.imported, again.waiting, again.error) == (0, 3, None)
    graph.faults.forget_sync_states()  # a poll that lists the whole folder counts two
    whole = Poller(store, home, source_factory=quick).poll("claims")
    assert (whole.imported, whole.waiting, whole.error) == (0, 2, None)


@pytest.mark.parametrize("fault", ["drop", "504"])
def test_a_large_message_whose_value_never_arrives_fails_alone(
    store: Store,
    home: Path,
    tmp_path: Path,
    idp: IdentityProvider,
    graph: GraphEmulator,
    fault: str,
) -> None:
    """Graph drops the connection (or its gateway answers 504) for ``$value`` of a large
    item, every time, while it answers the rest: that message fails alone, with the
    subject of the listing; the rest of the folder is imported."""
    address = f"large-{tmp_path.name[-6:]}@contoso.onmicrosoft.com"
    graph.add_mailbox(address)
    large = raw(3).replace(b"claim 3", b"claim 3 " + b"x" * 20_000)
    ids = [graph.deliver(address, large if n == 3 else raw(n)) for n in range(6)]
    graph.faults.large_values = LargeValues(above=10_000, fault=fault, after=0.05)
    out = tmp_path / "out"
    configure(store, idp, graph.base_url, out, username=address)
    result = Poller(store, home, source_factory=quick).poll("claims")
    assert (result.imported, result.failed, result.error) == (5, 1, None)
    assert len(list(out.glob("claims/*/*/message.eml"))) == 5
    with store.read() as repo:
        [listed] = import_views.problems(repo.conn, "claims")
    assert ids[3] in listed["reason"]
    assert "kept failing to give message" in listed["reason"], listed["reason"]
    said = "Server disconnected" if fault == "drop" else "answered 504, 504, 504"
    assert said in listed["reason"], listed["reason"]
    assert (listed["status"], listed["tries"], listed["subject"]) == ("failed", 1, "Claim 3")
    assert [m["isRead"] for m in graph.messages(address)] == [True] * 3 + [False] + [True] * 2


def test_a_graph_that_fails_every_request_charges_no_message(
    tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    address = f"down-{tmp_path.name[-6:]}@contoso.onmicrosoft.com"
    graph.add_mailbox(address)
    graph.deliver(address, raw(0))
    token = app_token(idp)
    source = GraphSource(
        GraphSettings(graph.base_url, address, "inbox", "keep", None, attempts=3, backoff=0.01),
        lambda: token,
        "claims",
    )
    source.open()
    try:
        items = source.list_items()
        graph.faults.fail_next(3, 504)  # the download's three tries: Graph answers the check
        [(_item, fetched)] = list(source.fetch(items))
        assert isinstance(fetched, MessageUnavailable)
        graph.faults.fail_next(6, 504)  # the download and the check: Graph is failing
        with pytest.raises(NetworkError, match="Graph kept failing"):
            list(source.fetch(items))
    finally:
        source.close()


def test_a_person_lists_retries_and_skips_through_the_cli_and_the_api(
    store: Store,
    home: Path,
    tmp_path: Path,
    idp: IdentityProvider,
    graph: GraphEmulator,
    cli: Cli,
    api: TestClient,
) -> None:
    address = f"person-{tmp_path.name[-6:]}@contoso.onmicrosoft.com"
    graph.add_mailbox(address)
    ids = [graph.deliver(address, raw(n)) for n in range(4)]
    for poisoned in ids[1:3]:
        graph.faults.fail_message(poisoned, "value", 500, "ErrorMimeContentConversionFailed", 99)
    configure(store, idp, graph.base_url, tmp_path / "out", username=address)
    poller = Poller(store, home)  # the clock of the `mailintake` processes below
    assert poller.poll("claims").imported == 2
    assert poller.poll("claims").waiting == 2  # their next try is not due

    listed = json.loads(cli("messages", "claims", "--json").stdout)["messages"]
    keys = {m["reason"].split("message ")[1][: len(ids[1])]: m["key"] for m in listed}
    assert set(keys) == set(ids[1:3])
    assert all(m["subject"].startswith("Claim ") for m in listed)
    text = cli("messages", "claims").stdout
    assert keys[ids[1]] in text
    assert "ErrorMimeContentConversionFailed" in text
    polled = cli("poll", "claims")  # their next try is not due: not tried, counted
    # From the folder's delta link: nothing new, nothing listed (none skipped as imported).
    assert "claims: imported 0, skipped 0, failed 0, waiting 2" in polled.stdout, polled.stderr
    status = cli("status").stdout
    assert "messages that could not be imported" in status
    assert keys[ids[2]] in status
    [row] = json.loads(cli("status", "--json").stdout)["mailboxes"]
    assert {m["key"] for m in row["failed_messages"]} == set(keys.values())

    answer = api.get("/api/v1/mailboxes/claims/messages")
    assert answer.status_code == 200
    assert {m["key"] for m in answer.json()["messages"]} == set(keys.values())
    skipped = api.post(f"/api/v1/mailboxes/claims/messages/{keys[ids[2]]}/skip")
    assert skipped.status_code == 200
    assert skipped.json()["message"]["status"] == "skipped"
    assert api.post("/api/v1/mailboxes/claims/messages/no-such-key/skip").status_code == 404
    assert api.get("/api/v1/mailboxes/nobody/messages").status_code == 404

    graph.faults.reset()  # what kept the first one from converting is fixed
    retried = cli("messages", "retry", "claims", keys[ids[1]])
    assert retried.returncode == 0, retried.stderr
    assert "is tried again at the next pass" in retried.stdout
    unknown = cli("messages", "skip", "claims", "no-such-key")
    assert unknown.returncode == 2
    assert "no message no-such-key" in unknown.stderr + unknown.stdout

    result = poller.poll("claims")  # within a minute: retry-now needs no wait
    # The one a person skipped is not in the list of failures a delta poll tries from.
    assert (result.imported, result.failed, result.waiting) == (1, 0, 0)
    assert [m["isRead"] for m in graph.messages(address)] == [True, True, False, True]
    [left] = json.loads(cli("messages", "claims", "--json").stdout)["messages"]
    assert (left["key"], left["status"]) == (keys[ids[2]], "skipped")
    assert json.loads(cli("status", "--json").stdout)["mailboxes"][0]["failed_messages"] == []
