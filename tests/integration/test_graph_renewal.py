"""A token Graph refuses (401) is renewed once and the request sent again (graph_http.Bearer);
a renewed token Graph refuses too is reported."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mailintake.errors import AuthorizationRequired
from mailintake.sources.graph import GraphSettings, GraphSource
from sandbox.graph import GraphEmulator
from sandbox.idp import IdentityProvider
from tests.support.graph import app_token, raw


class Renewals:
    """A token provider's renewals, counted (threads at once included)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self) -> str:
        with self.lock:
            self.count += 1
        return self.token


def source(graph: GraphEmulator, address: str, token: str, renew: Renewals) -> GraphSource:
    settings = GraphSettings(graph.base_url, address, "inbox", "keep", None)
    return GraphSource(settings, lambda: token, "claims", renew)


def test_a_refused_token_is_renewed_once_and_the_request_sent_again(
    tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    address = f"renew-{tmp_path.name[-6:]}@contoso.onmicrosoft.com"
    graph.add_mailbox(address)
    for n in range(8):
        graph.deliver(address, raw(n))
    renewals = Renewals(app_token(idp))
    reader = source(graph, address, "revoked-or-expired", renewals)
    reader.open()
    try:
        items = reader.list_items()  # the first request is refused, renewed, sent again
        assert len(items) == 8
        fetched = list(reader.fetch(items))  # with the renewed token
    finally:
        reader.close()
    assert len(fetched) == 8
    assert not [body for _item, body in fetched if isinstance(body, Exception)]
    assert renewals.count == 1


def test_a_renewed_token_graph_refuses_too_is_reported(
    tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    address = f"refused-{tmp_path.name[-6:]}@contoso.onmicrosoft.com"
    graph.add_mailbox(address)
    renewals = Renewals("still-not-a-token")
    reader = source(graph, address, "not-a-token", renewals)
    reader.open()
    try:
        with pytest.raises(AuthorizationRequired) as refused:
            reader.list_items()
    finally:
        reader.close()
    assert str(refused.value).startswith("claims: Graph refused the token: ")
    assert renewals.count == 1  # once per request, not again and again
