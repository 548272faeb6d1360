"""The web admin in Chromium: the sandbox identity provider, Dovecot and the Graph emulator,
``mailintake serve``'s application under uvicorn on a free loopback port, and one browser
(Debian's /usr/bin/chromium, driven by Playwright) for the whole module."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from mailintake.runtime import open_store
from mailintake.services.apply import apply_document
from mailintake.settings import Settings
from sandbox.graph import GraphEmulator
from tests.support.dovecot import start_dovecot
from tests.support.oauth import microsoft_at
from tests.support.services import service_missing
from tests.support.web_admin import Sandbox, build_idp, serve

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    if not CHROMIUM.exists():
        service_missing(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    home = tmp_path_factory.mktemp("home")
    output = tmp_path_factory.mktemp("capture")
    folder = Path(tempfile.mkdtemp(prefix="mailintake-dovecot-"))
    idp = build_idp()
    graph = GraphEmulator(idp)
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'mailintake.db'}")
    try:
        with (
            idp.serve() as base,
            graph.serve(),
            start_dovecot(folder, f"{base}/introspect") as dovecot,
        ):
            store = open_store(settings)
            # MICROSOFT pointed at the sandbox (same paths, loopback host), and a folder
            # output the imports go to.
            apply_document(
                store,
                {
                    "authorization_servers": [microsoft_at(base)],
                    "outputs": [{"name": "capture", "type": "folder", "path": str(output)}],
                },
                {},
            )
            store.engine.dispose()
            with serve(settings) as url:
                yield Sandbox(idp, dovecot, graph, url, output)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def page(browser: Browser, sandbox: Sandbox) -> Iterator[Page]:
    context = browser.new_context(
        base_url=sandbox.base_url, viewport={"width": 1200, "height": 800}
    )
    context.set_default_timeout(20_000)
    tab = context.new_page()
    tab.on("dialog", lambda dialog: dialog.accept())
    try:
        yield tab
    finally:
        context.close()
