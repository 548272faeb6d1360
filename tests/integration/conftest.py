"""Fixtures shared by the integration tests: an API token for the REST API, and the services
started once per test process (Dovecot with its identity provider: ``mail_server``)."""

from __future__ import annotations

import pytest

from mailintake.store.admin import create_api_token
from mailintake.store.repo import Store
from tests.support.dovecot import mail_server

__all__ = ["mail_server"]  # fixtures


@pytest.fixture
def bearer(store: Store) -> dict[str, str]:
    """Headers that authenticate a REST API request with a fresh API token."""
    return {"Authorization": f"Bearer {create_api_token(store, 'tests')}"}
