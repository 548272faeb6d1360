"""The contract suite: the same tests run against every source and every output (``source``
and ``output``, parametrized by name). The servers are the shared ones (tests/conftest.py:
Dovecot once per process, the Graph emulator once per module, a webhook receiver per test);
each test gets a mailbox of its own on them.

To add a source or an output: a case class in tests/support/sources.py or outputs.py (what
it must offer is written there), and its name and maker here."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from mailintake.enums import AfterImport
from tests.support.outputs import FolderCase, OutputCase, WebhookCase
from tests.support.sources import (
    GraphCase,
    ImapCase,
    MemoryCase,
    Pop3Case,
    SourceCase,
)

# name -> how a test's case is made (it asks for the fixtures it needs)
SOURCES: dict[str, Callable[[pytest.FixtureRequest], SourceCase]] = {
    "memory": lambda _request: MemoryCase(),
    "imap": lambda request: ImapCase(request.getfixturevalue("mail_server")),
    "pop3": lambda request: Pop3Case(request.getfixturevalue("mail_server")),
    "graph": lambda request: GraphCase(
        request.getfixturevalue("emulator"),
        request.getfixturevalue("idp"),
        f"contract-{uuid.uuid4().hex[:8]}@contoso.onmicrosoft.com",
    ),
}
# The after-import actions each source offers (a test taking ``after_import`` runs on each).
ACTIONS: dict[str, tuple[AfterImport, ...]] = {
    "memory": MemoryCase.actions,
    "imap": ImapCase.actions,
    "pop3": Pop3Case.actions,
    "graph": GraphCase.actions,
}
OUTPUTS: dict[str, Callable[[pytest.FixtureRequest], OutputCase]] = {
    "folder": lambda request: FolderCase(Path(request.getfixturevalue("tmp_path")) / "out"),
    "webhook": lambda request: WebhookCase(request.getfixturevalue("receiver")),
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test taking ``source`` runs on every source; one also taking ``after_import`` on
    every action of every source; one taking ``output`` on every output."""
    names = metafunc.fixturenames
    if "source" in names and "after_import" in names:
        pairs = [(name, action) for name, actions in ACTIONS.items() for action in actions]
        metafunc.parametrize(
            ("source", "after_import"),
            pairs,
            indirect=["source"],
            ids=[f"{name}-{action}" for name, action in pairs],
        )
    elif "source" in names:
        metafunc.parametrize("source", list(SOURCES), indirect=True)
    if "output" in names:
        metafunc.parametrize("output", list(OUTPUTS), indirect=True)


@pytest.fixture
def source(request: pytest.FixtureRequest) -> SourceCase:
    return SOURCES[request.param](request)


@pytest.fixture
def output(request: pytest.FixtureRequest) -> OutputCase:
    return OUTPUTS[request.param](request)
