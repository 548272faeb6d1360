"""The emulator's change-notification subscriptions, driven over HTTP as Graph's clients drive
graph.microsoft.com: the validation handshake, notifications of new mail, renewal, expiry,
deletion and lifecycle notifications (sandbox/graph/subscriptions.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest

from sandbox import http_clients
from sandbox.graph import GraphEmulator
from sandbox.idp import IdentityProvider
from tests.support.graph_sandbox import ANNA, BORIS, DOMAIN, IMMUTABLE, app_token, mime, user_token
from tests.support.webhook_endpoint import Endpoint, webhook_endpoint


@pytest.fixture(scope="module")
def graph(idp: IdentityProvider) -> Iterator[GraphEmulator]:
    emulator = GraphEmulator(idp)
    with emulator.serve():
        yield emulator


@pytest.fixture
def client(idp: IdentityProvider) -> Iterator[httpx2.Client]:
    headers = {"Authorization": f"Bearer {app_token(idp)}", **IMMUTABLE}
    with http_clients.Client(headers=headers, timeout=20) as http:
        yield http


@pytest.fixture
def mailbox(graph: GraphEmulator) -> str:
    address = f"box-{uuid.uuid4().hex[:8]}@{DOMAIN}"
    graph.add_mailbox(address)
    return address


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    with webhook_endpoint() as hook:
        yield hook


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _body(mailbox: str, url: str, minutes: int = 4230, **extra: Any) -> dict[str, Any]:
    return {
        "changeType": "created",
        "notificationUrl": url,
        "lifecycleNotificationUrl": url,
        "resource": f"users/{mailbox}/mailFolders('inbox')/messages",
        "expirationDateTime": _iso(datetime.now(UTC) + timedelta(minutes=minutes)),
        "clientState": "s3cret-state",
        **extra,
    }


def _subscribe(graph: GraphEmulator, client: httpx2.Client, body: dict[str, Any]) -> Any:
    return client.post(f"{graph.base_url}/subscriptions", json=body)


def test_created_after_the_handshake_and_notifies_new_mail(
    graph: GraphEmulator, client: httpx2.Client, mailbox: str, endpoint: Endpoint
) -> None:
    answer = _subscribe(graph, client, _body(mailbox, endpoint.url))
    assert answer.status_code == 201, answer.text
    created = answer.json()
    # Both URLs validated, each with a token that is a sentence (URL-encoded on the wire).
    assert len(endpoint.tokens) == 2
    assert all(t.startswith("Validation: Testing client application") for t in endpoint.tokens)
    message_id = graph.deliver(mailbox, mime(1))
    graph.deliver(mailbox, mime(2), folder="archive")  # not the subscribed folder
    (notice,) = endpoint.wait_for(1)[0]["value"]
    assert notice["subscriptionId"] == created["id"]
    assert notice["clientState"] == "s3cret-state"
    assert notice["changeType"] == "created"
    assert notice["resourceData"]["id"] == message_id  # created with ImmutableId
    assert notice["tenantId"] == graph.idp.tenant_id
    assert notice["subscriptionExpirationDateTime"] == created["expirationDateTime"]
    assert len(endpoint.notifications) == 1


@pytest.mark.parametrize("validation", ["wrong", "refuse"])
def test_a_failed_handshake_refuses_the_subscription(
    graph: GraphEmulator,
    client: httpx2.Client,
    mailbox: str,
    endpoint: Endpoint,
    validation: str,
) -> None:
    endpoint.validation = validation
    answer = _subscribe(graph, client, _body(mailbox, endpoint.url))
    assert answer.status_code == 400
    assert "validation request failed" in answer.json()["error"]["message"]
    assert graph.subscriptions.of_mailbox(mailbox) == []


def test_limits_of_a_subscription(
    graph: GraphEmulator,
    client: httpx2.Client,
    mailbox: str,
    endpoint: Endpoint,
    idp: IdentityProvider,
) -> None:
    too_long = _subscribe(graph, client, _body(mailbox, endpoint.url, minutes=10081))
    assert too_long.status_code == 400
    assert "10080 minutes" in too_long.json()["error"]["message"]
    past = _subscribe(graph, client, _body(mailbox, endpoint.url, minutes=-1))
    assert past.status_code == 400
    state = _subscribe(graph, client, _body(mailbox, endpoint.url, clientState="x" * 129))
    assert state.status_code == 400
    plain = _subscribe(graph, client, _body(mailbox, "http://hooks.example.com/graph"))
    assert plain.status_code == 400  # https only (loopback excepted here)
    # A delegated token may not subscribe to another user's mailbox (.Shared permissions).
    graph.add_delegate(mailbox, BORIS)
    delegated = http_clients.post(
        f"{graph.base_url}/subscriptions",
        json=_body(mailbox, endpoint.url),
        headers={"Authorization": f"Bearer {user_token(idp, BORIS)}"},
        timeout=20,
    )
    assert delegated.status_code == 403
    assert endpoint.tokens == []  # nothing validated for what was refused


def test_renew_expire_and_delete(
    graph: GraphEmulator, client: httpx2.Client, mailbox: str, endpoint: Endpoint
) -> None:
    created = _subscribe(graph, client, _body(mailbox, endpoint.url, minutes=60)).json()
    url = f"{graph.base_url}/subscriptions/{created['id']}"
    later = _iso(datetime.now(UTC) + timedelta(minutes=10000))
    renewed = client.patch(url, json={"expirationDateTime": later})
    assert renewed.status_code == 200
    assert renewed.json()["expirationDateTime"] == later
    assert client.get(url).json()["id"] == created["id"]
    listed = client.get(f"{graph.base_url}/subscriptions").json()["value"]
    assert created["id"] in {s["id"] for s in listed}
    # Past its expiry the subscription is gone, and nothing is sent for it.
    graph.subscriptions.clock = lambda: datetime.now(UTC) + timedelta(minutes=10001)
    try:
        assert client.get(url).status_code == 404
        graph.deliver(mailbox, mime(3))
    finally:
        graph.subscriptions.clock = lambda: datetime.now(UTC)
    assert endpoint.notifications == []
    second = _subscribe(graph, client, _body(mailbox, endpoint.url)).json()
    second_url = f"{graph.base_url}/subscriptions/{second['id']}"
    assert client.delete(second_url).status_code == 204
    assert client.delete(second_url).status_code == 404
    assert client.patch(second_url, json={"expirationDateTime": later}).status_code == 404


def test_lifecycle_notifications(
    graph: GraphEmulator, client: httpx2.Client, mailbox: str, endpoint: Endpoint
) -> None:
    created = _subscribe(graph, client, _body(mailbox, endpoint.url)).json()
    key = created["id"]
    assert graph.subscriptions.lifecycle(key, "reauthorizationRequired")
    (first,) = endpoint.wait_for(1)[0]["value"]
    assert first["lifecycleEvent"] == "reauthorizationRequired"
    assert first["clientState"] == "s3cret-state"
    graph.deliver(mailbox, mime(4))  # paused until reauthorized: not notified
    reauthorized = client.post(f"{graph.base_url}/subscriptions/{key}/reauthorize")
    assert reauthorized.status_code == 204
    graph.deliver(mailbox, mime(5))
    change = endpoint.wait_for(2)[1]["value"][0]
    assert change["changeType"] == "created"
    assert graph.subscriptions.lifecycle(key, "missed")
    assert endpoint.wait_for(3)[2]["value"][0]["lifecycleEvent"] == "missed"
    assert graph.subscriptions.lifecycle(key, "subscriptionRemoved")
    assert endpoint.wait_for(4)[3]["value"][0]["lifecycleEvent"] == "subscriptionRemoved"
    assert client.get(f"{graph.base_url}/subscriptions/{key}").status_code == 404


def test_unknown_resources_are_refused(
    graph: GraphEmulator, client: httpx2.Client, endpoint: Endpoint
) -> None:
    missing = _subscribe(graph, client, _body(f"nobody@{DOMAIN}", endpoint.url))
    assert missing.status_code == 404
    odd = _subscribe(graph, client, {**_body(ANNA, endpoint.url), "resource": "users/x/events"})
    assert odd.status_code == 400
