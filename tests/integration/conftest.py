"""Fixtures shared by the integration tests (their helpers are in tests/support; the
services the contract suite shares with them are in tests/conftest.py):

- once per module: an authenticating HTTP proxy (``proxy``);
- for one test: a memory mailbox of three invoices (``box``), an alerts receiver and an SMTP
  server (``hook``, ``smtp``), a second store on the test's database as another process
  would open it (``second``), an API token (``bearer``), the REST API (``api``), the
  command (``cli``), the web admin (``ui``, ``ui_store``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mailintake.runtime import open_store
from mailintake.services.apply import apply_document
from mailintake.settings import Settings
from mailintake.sources.memory import MemoryMailbox
from mailintake.store.admin import create_api_token, set_admin_password
from mailintake.store.repo import Store
from mailintake.web.app import create_app
from tests.support.http_receiver import Receiver, http_receiver
from tests.support.memory import filled, message
from tests.support.proxy import Proxy, start_proxy
from tests.support.smtp import SmtpServer, smtp_server
from tests.support.web import (
    ADMIN,
    API_GRAPH_SECRET,
    CLI_GRAPH_SECRET,
    CLI_ROPC_PASSWORD,
    QUICK_HASH,
    Cli,
)


@pytest.fixture
def bearer(store: Store) -> dict[str, str]:
    """Headers that authenticate a REST API request with a fresh API token."""
    return {"Authorization": f"Bearer {create_api_token(store, 'tests')}"}


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """A running tinyproxy requiring ``proxy.username`` / ``proxy.password``."""
    with start_proxy(tmp_path_factory.mktemp("proxy")) as started:
        yield started


@pytest.fixture
def box() -> MemoryMailbox:
    """A memory mailbox of three invoices (UIDs 1 to 3) with a PDF each."""
    return filled({i: message(i, b"%PDF-1.4 " + bytes([i]) * 50) for i in range(1, 4)})


@pytest.fixture
def api(settings: Settings, store: Store, bearer: dict[str, str]) -> Iterator[TestClient]:
    """The REST API, authenticated, with API_GRAPH_SECRET in its environment."""
    env = {"GRAPH_SECRET": API_GRAPH_SECRET}
    served = settings.model_copy(update={"allowed_hosts": ("testserver",)})
    app = create_app(served, store=store, environ=lambda: env)
    with TestClient(app, headers=bearer) as client:
        yield client


@pytest.fixture
def cli(home: Path, database_url: str) -> Cli:
    """The command, with CLI_GRAPH_SECRET and CLI_ROPC_PASSWORD in its environment."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("MAILINTAKE_") and k != "COLUMNS"
    }
    env.update(
        MAILINTAKE_HOME=str(home),
        MAILINTAKE_DATABASE_URL=database_url,
        GRAPH_SECRET=CLI_GRAPH_SECRET,
        ROPC_PASSWORD=CLI_ROPC_PASSWORD,
    )
    return Cli(home, env)


@pytest.fixture
def ui_store(home: Path, tmp_path: Path) -> Iterator[tuple[Settings, Store]]:
    """The web admin's settings and store: an admin password (ADMIN), a folder output."""
    settings = Settings(
        home=home,
        database_url=f"sqlite:///{tmp_path / 'ui.db'}",
        allowed_hosts=("testserver",),  # the TestClient's host name
    )
    store = open_store(settings)
    set_admin_password(store, ADMIN, QUICK_HASH)
    apply_document(
        store, {"outputs": [{"name": "capture", "type": "folder", "path": str(tmp_path)}]}, {}
    )
    yield settings, store
    store.engine.dispose()


@pytest.fixture
def ui(ui_store: tuple[Settings, Store]) -> Iterator[TestClient]:
    """The web admin, signed in."""
    settings, store = ui_store
    app = create_app(settings, store=store, environ=dict)
    with TestClient(app, headers={"Sec-Fetch-Site": "same-origin"}) as client:
        answer = client.post("/login", data={"password": ADMIN, "next": "/"})
        assert answer.status_code == 200, answer.text
        yield client


@pytest.fixture
def hook() -> Iterator[Receiver]:
    """An HTTP receiver for alerts, at ``/alerts``."""
    with http_receiver() as receiver:
        yield receiver


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    """An SMTP server requiring STARTTLS and a sign-in (``smtp.password``)."""
    with smtp_server(tmp_path) as server:
        yield server


@pytest.fixture
def second(settings: Settings) -> Iterator[Store]:
    """Another process's store (another worker's): its own engine on the same database,
    named differently so that only the database's locks (not this process's own) stand
    between the two."""
    url = settings.database_url or ""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        other = f"sqlite:///{path.parent}/./{path.name}"
    else:
        other = f"{url}&application_name=second"
    store = open_store(Settings(home=settings.home, database_url=other))
    yield store
    store.engine.dispose()
