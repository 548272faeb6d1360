"""The web admin in Chromium (tests/e2e): the tenant the browser signs in on, ``mailintake
serve``'s application under uvicorn (``serve``), what the ``sandbox`` fixture of
tests/e2e/conftest.py started (``Sandbox``), and the page's pictures (``screenshot``)."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from playwright.sync_api import Page

from mailintake.runtime import open_store
from mailintake.settings import Settings
from mailintake.store.admin import set_admin_password
from mailintake.web.app import create_app
from sandbox.graph import GraphEmulator
from sandbox.idp import App, IdentityProvider, User, daemon_app, desktop_app
from sandbox.ports import free_port
from tests.support.dovecot import Dovecot
from tests.support.web import QUICK_HASH

# The pictures in docs/ are refreshed by `make screenshots` only; a test run keeps the last
# run's in one folder (each run's own would pile up in the temporary folder).
SCREENSHOTS = Path(
    os.environ.get("MAILINTAKE_SCREENSHOTS_DIR")
    or Path(tempfile.gettempdir()) / "mailintake-screenshots"
)


TENANT = "5f0e2b1c-7a3d-4e8f-9c21-0d4b6a8e1f37"


DOMAIN = "fabrikam.onmicrosoft.com"


WEB_APP = "e1000000-0000-4000-8000-0000000000e1"  # Web platform, redirect on serve's callback


WEB_SECRET = "web-admin-app-secret~Value-7"


GRAPH_APP = "a1000000-0000-4000-8000-0000000000a1"  # app-only Graph access


DEVICE_APP = "d1000000-0000-4000-8000-0000000000d1"  # public client: device sign-in


GRAPH_SECRET = "graph-admin-app-secret~Value-8"


ALICE = f"alice@{DOMAIN}"


ALICE_PASSWORD = "Alice-Web-Password-1!"


CLAIMS = f"claims@{DOMAIN}"


ADMIN_PASSWORD = "Admin-Web-Password-5!"


# Short-lived access tokens, so that a poll soon needs the refresh token (and a password
# change shows at once).
ACCESS_TOKEN_LIFETIME = 6


@dataclass
class Sandbox:
    """What the ``sandbox`` fixture started."""

    idp: IdentityProvider
    dovecot: Dovecot
    graph: GraphEmulator
    base_url: str  # of mailintake serve
    output: Path


def build_idp() -> IdentityProvider:
    """The tenant: the web admin's app, an app-only Graph app, a device app; ALICE, CLAIMS."""
    idp = IdentityProvider(
        tenant_id=TENANT,
        domain=DOMAIN,
        introspection_open=True,
        access_token_lifetime=ACCESS_TOKEN_LIFETIME,
        device_interval=1,
    )
    idp.add_app(
        App(
            client_id=WEB_APP,
            name="mail intake (web admin)",
            secrets={WEB_SECRET: None},
            redirect_uris={"http://127.0.0.1/api/v1/oauth/callback": "web"},
        )
    )
    idp.add_app(
        daemon_app(
            GRAPH_APP,
            "mail intake (app-only)",
            GRAPH_SECRET,
            {"https://graph.microsoft.com": ["Mail.ReadWrite"]},
        )
    )
    idp.add_app(desktop_app(DEVICE_APP, "mail intake (device sign-in)"))
    idp.add_user(User(username=ALICE, password=ALICE_PASSWORD, consented_apps={WEB_APP}))
    idp.add_user(User(username=CLAIMS, password="Claims-Unused-2!"))
    return idp


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """``mailintake serve``'s application under uvicorn on a free loopback port."""
    store = open_store(settings)
    set_admin_password(store, ADMIN_PASSWORD, QUICK_HASH)
    app = create_app(settings, store=store, environ=dict)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            proxy_headers=False,  # as `mailintake serve`
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("mailintake serve did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        store.engine.dispose()


def screenshot(page: Page, name: str) -> None:
    """The whole page, as SCREENSHOTS/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
