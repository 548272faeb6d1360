"""The after-import actions on Graph: every imported message's action is tried, whatever the
answer to another's."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx2
import pytest

from mailintake.enums import AfterImport
from mailintake.errors import SourceError
from mailintake.sources.graph import GraphSettings
from mailintake.sources.graph_actions import Actions
from mailintake.sources.graph_answers import GraphRefused
from mailintake.sources.graph_downloads import CONCURRENCY

BASE = "https://graph.example/v1.0/users/claims@contoso.example"


def settings() -> GraphSettings:
    return GraphSettings(
        graph_url="https://graph.example/v1.0",
        mailbox="claims@contoso.example",
        folder="inbox",
        after_import=AfterImport.MARK_READ,
        move_to=None,
    )


def test_a_refused_action_does_not_cancel_the_others() -> None:
    """The first message's action is refused while the others are under way, and more wait
    behind them: each is still sent, then the refusal is reported."""
    refused = threading.Event()
    sent: list[str] = []
    lock = threading.Lock()

    def request(method: str, url: str, **options: Any) -> httpx2.Response:
        identifier = url.rsplit("/", 1)[1]
        with lock:
            sent.append(f"{method} {identifier}")
        if identifier == "m0":
            refused.set()
            raise GraphRefused("HTTP 400 ErrorInvalidRequest", 400, "ErrorInvalidRequest", "")
        refused.wait(5)
        time.sleep(0.2)  # under way while the refusal is seen
        return httpx2.Response(200, json={})

    count = CONCURRENCY + 3
    actions = Actions("claims", settings(), BASE, request, lambda folder: folder)
    with pytest.raises(SourceError, match="ErrorInvalidRequest"):
        actions.acknowledge([{"id": f"m{n}"} for n in range(count)])
    assert sorted(sent) == sorted(f"PATCH m{n}" for n in range(count))
