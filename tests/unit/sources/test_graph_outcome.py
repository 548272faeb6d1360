"""What a failed Graph download means: the message's failure (it fails alone) or the pass's
(raised, charged to no message)."""

from __future__ import annotations

from concurrent.futures import Future

import pytest

from mailintake.errors import AuthorizationRequired, MessageUnavailable, NetworkError, RateLimited
from mailintake.sources.base import SourceItem
from mailintake.sources.graph_answers import GraphRefused
from mailintake.sources.graph_downloads import outcome
from mailintake.spool import Body

ITEM = SourceItem("graph-k", {"id": "AAk1"})


def failed(exc: Exception) -> Future[Body]:
    future: Future[Body] = Future()
    future.set_exception(exc)
    return future


def answers() -> None:
    return None


def down() -> None:
    raise NetworkError("claims: Graph GET: connection refused")


def test_a_refusal_with_a_code_is_the_message_s() -> None:
    refused = GraphRefused("HTTP 500 ErrorMimeContentConversionFailed", 500, "x", "y")
    got = outcome("claims", ITEM, failed(refused), down)  # not even asked: the code says it
    assert isinstance(got, MessageUnavailable)
    assert (
        str(got)
        == "claims: Graph cannot give message AAk1: HTTP 500 ErrorMimeContentConversionFailed"
    )


def test_a_connection_dropped_halfway_is_the_message_s_when_graph_answers_otherwise() -> None:
    dropped = NetworkError("claims: Graph GET: the server closed the connection")
    got = outcome("claims", ITEM, failed(dropped), answers)
    assert isinstance(got, MessageUnavailable)
    assert "kept failing to give message AAk1 while it answers other requests" in str(got)


def test_a_graph_that_answers_nothing_stops_the_pass() -> None:
    dropped = NetworkError("claims: Graph GET: the server closed the connection")
    with pytest.raises(NetworkError) as raised:
        outcome("claims", ITEM, failed(dropped), down)
    assert raised.value is dropped


@pytest.mark.parametrize(
    "error",
    [AuthorizationRequired("claims: Graph refused the token"), RateLimited("claims: throttled")],
)
def test_a_refused_token_or_throttling_is_never_the_message_s(error: Exception) -> None:
    with pytest.raises(type(error)):
        outcome("claims", ITEM, failed(error), answers)


def test_a_body_comes_as_it_is() -> None:
    future: Future[Body] = Future()
    future.set_result(b"Subject: x\r\n\r\n")
    assert outcome("claims", ITEM, future, down) == b"Subject: x\r\n\r\n"
