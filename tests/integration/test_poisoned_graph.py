"""Graph: a message whose ``$value`` fails every time (500 ErrorMimeContentConversionFailed
for S/MIME items, 404 ErrorItemNotFound for an item gone since the listing, 504 for a large
one) fails alone, listed with the subject and sender the listing gave; the rest of the
folder is imported. A Graph that fails every request charges no message."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailintake.engine.poll import Poller
from mailintake.errors import MessageUnavailable, NetworkError
from mailintake.sources.base import MailSource
from mailintake.sources.graph import GraphSettings, GraphSource, build_graph_source
from mailintake.store import imports
from mailintake.store.repo import Store
from sandbox.graph import GraphEmulator
from sandbox.idp import IdentityProvider
from tests.integration.oauth_support import certificate, idp
from tests.integration.test_import_graph import configure, raw
from tests.integration.test_import_graph_faults import app_token

__all__ = ["certificate", "idp"]


@pytest.fixture(scope="module")
def emulator(idp: IdentityProvider) -> Iterator[GraphEmulator]:
    server = GraphEmulator(idp)
    with server.serve():
        yield server


@pytest.fixture
def graph(emulator: GraphEmulator) -> Iterator[GraphEmulator]:
    emulator.faults.reset()
    yield emulator
    emulator.faults.reset()


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
            for p in imports.problems(repo.conn, "claims")
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
