"""Fixtures shared by the integration tests: an API token for the REST API, the services
started once per test process (Dovecot with its identity provider: ``mail_server``), and the
sandbox tenant of the OAuth tests (``certificate``, ``idp``) and an authenticating HTTP proxy
(``proxy``), once per module (a module may change the tenant's users and apps); ``box``, a
memory mailbox of three invoices (tests.support.memory)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailintake.sources.memory import MemoryMailbox
from mailintake.store.admin import create_api_token
from mailintake.store.repo import Store
from sandbox.idp import IdentityProvider
from tests.support.dovecot import mail_server
from tests.support.memory import filled, message
from tests.support.oauth import Certificate, build_idp, make_certificate
from tests.support.proxy import Proxy, start_proxy

__all__ = ["mail_server"]  # fixtures


@pytest.fixture
def bearer(store: Store) -> dict[str, str]:
    """Headers that authenticate a REST API request with a fresh API token."""
    return {"Authorization": f"Bearer {create_api_token(store, 'tests')}"}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """The certificate of the tenant's certificate application (CERT_APP)."""
    return make_certificate(tmp_path_factory.mktemp("cert"))


@pytest.fixture(scope="module")
def idp(certificate: Certificate) -> Iterator[IdentityProvider]:
    """The sandbox tenant of tests.support.oauth, serving on a loopback port."""
    provider = build_idp(certificate)
    with provider.serve():
        yield provider


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """A running tinyproxy requiring ``proxy.username`` / ``proxy.password``."""
    with start_proxy(tmp_path_factory.mktemp("proxy")) as started:
        yield started


@pytest.fixture
def box() -> MemoryMailbox:
    """A memory mailbox of three invoices (UIDs 1 to 3) with a PDF each."""
    return filled({i: message(i, b"%PDF-1.4 " + bytes([i]) * 50) for i in range(1, 4)})
