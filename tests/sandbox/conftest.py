"""Fixtures of the stand-ins' own tests: the Graph emulator on a tenant of its own, once
per module (tests/support/graph_sandbox.py has its names and helpers). A module that tests
the identity provider alone defines its own ``idp``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx2
import pytest

from sandbox import http_clients
from sandbox.graph import GraphEmulator
from sandbox.idp import App, IdentityProvider, User
from tests.support.graph_sandbox import (
    ANNA,
    APP,
    BORIS,
    CARLA,
    DOMAIN,
    GRAPH,
    NATIVE_APP,
    PASSWORD,
    READ_APP,
    SECRET,
    TENANT,
    app_token,
)


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    """The tenant: APP (Mail.ReadWrite), READ_APP (Mail.Read), NATIVE_APP; ANNA, BORIS, CARLA."""
    provider = IdentityProvider(tenant_id=TENANT, domain=DOMAIN)
    for client_id, roles in ((APP, ["Mail.ReadWrite"]), (READ_APP, ["Mail.Read"])):
        provider.add_app(
            App(
                client_id=client_id,
                secrets={SECRET: None},
                application_permissions={
                    GRAPH: roles,
                    "https://outlook.office365.com": ["IMAP.AccessAsApp"],
                },
            )
        )
    provider.add_app(
        App(
            client_id=NATIVE_APP,
            redirect_uris={"http://localhost/": "public"},
            allow_public_client=True,
        )
    )
    for user in (ANNA, BORIS, CARLA):
        provider.add_user(User(username=user, password=PASSWORD, consented_apps={NATIVE_APP}))
    with provider.serve():
        yield provider


@pytest.fixture(scope="module")
def graph_server(idp: IdentityProvider) -> Iterator[tuple[GraphEmulator, str]]:
    """The emulator serving, and its base URL."""
    graph = GraphEmulator(idp)
    with graph.serve() as base:
        yield graph, base


@pytest.fixture
def graph(graph_server: tuple[GraphEmulator, str]) -> GraphEmulator:
    """The module's emulator, with no latency, throttling or fault, its counts at zero."""
    emulator, _ = graph_server
    emulator.latency = 0.0
    emulator.max_concurrent = 4
    emulator.throttle_next(0)
    emulator.faults.reset()
    emulator.reset_stats()
    return emulator


@pytest.fixture
def base(graph_server: tuple[GraphEmulator, str]) -> str:
    return graph_server[1]


@pytest.fixture(scope="module")
def token(idp: IdentityProvider) -> str:
    """APP's token for Graph."""
    return app_token(idp)


@pytest.fixture
def client(token: str) -> Iterator[httpx2.Client]:
    """An HTTP client sending APP's token."""
    with http_clients.Client(headers={"Authorization": f"Bearer {token}"}, timeout=10) as http:
        yield http


@pytest.fixture
def mailbox(graph: GraphEmulator) -> str:
    """A fresh mailbox per test (the emulator is shared by the module)."""
    address = f"box-{uuid.uuid4().hex[:8]}@{DOMAIN}"
    graph.add_mailbox(address, delegates={BORIS})
    return address
