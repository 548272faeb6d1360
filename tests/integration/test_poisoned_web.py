"""The web admin lists a mailbox's messages that could not be imported, with Retry now and
Skip, as the CLI and the REST API do."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from mailintake.settings import Settings
from mailintake.store import import_views, imports
from mailintake.store.repo import Store
from tests.support.web import graph_form, notice_of


def test_failed_and_parked_messages_are_listed_with_retry_and_skip(
    ui: TestClient, ui_store: tuple[Settings, Store], tmp_path: Path
) -> None:
    _, store = ui_store
    assert ui.post("/mailboxes/new", data=graph_form()).status_code == 200
    with store.begin() as repo:
        imports.failed(
            repo.conn,
            "claims",
            "graph-AAk1",
            {"id": "AAk1"},
            "Graph cannot give message AAk1: HTTP 500 ErrorMimeContentConversionFailed",
            subject="<b>Signed claim</b>",
            sender="claims@insurer.example",
            size=2048,
            parked=True,
        )
    page = ui.get("/mailboxes/claims").text
    assert 'id="failed-messages"' in page
    assert "&lt;b&gt;Signed claim&lt;/b&gt;" in page  # text, never markup
    assert "ErrorMimeContentConversionFailed" in page
    assert "parked: waits for you" in page
    assert 'action="/mailboxes/claims/messages/graph-AAk1/retry"' in page
    assert "parked: Graph cannot give message AAk1" in ui.get("/imports").text  # the log too

    retried = ui.post("/mailboxes/claims/messages/graph-AAk1/retry")
    assert notice_of(retried.text) == "The message is tried again at the next poll"
    with store.read() as repo:
        [row] = import_views.problems(repo.conn, "claims")
    assert (row["status"], row["next_try_at"]) == ("failed", None)
    assert "next poll" in retried.text

    skipped = ui.post("/mailboxes/claims/messages/graph-AAk1/skip")
    assert notice_of(skipped.text) == "The message is skipped: never imported, never tried again"
    with store.read() as repo:
        [row] = import_views.problems(repo.conn, "claims")
    assert row["status"] == "skipped"
    assert ui.post("/mailboxes/claims/messages/nope/skip").status_code == 404
