"""Bad configuration input at every entry point (CLI, REST API, web form): refused with
``PATH: message``, exit 2 or 422, never a crash."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mailintake.settings import Settings
from mailintake.store.repo import Store
from mailintake.web.app import create_app
from tests.integration.test_cli import Cli, cli
from tests.integration.test_web_ui import errors_beside, graph_form, ui, ui_store
from tests.support.documents import claims_mailbox, folder_output

__all__ = ["cli", "ui", "ui_store"]

DOT = "'..' is not a name: it means a folder ('.' this one, '..' its parent)"


@pytest.fixture
def api(settings: Settings, store: Store, bearer: dict[str, str]) -> Iterator[TestClient]:
    app = create_app(settings, store=store, environ=dict)
    with TestClient(app, headers=bearer) as client:
        yield client


def test_cli_refuses_a_dot_name(cli: Cli, tmp_path: Path) -> None:
    result = cli("outputs", "add", "..", "--type", "folder", "--path", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"outputs[0].name: {DOT}"]
    result = cli("outputs", "add", ".incoming", "--type", "folder", "--path", str(tmp_path))
    assert result.returncode == 2
    assert "outputs[0].name: must not start with '.'" in result.stderr
    assert cli("outputs", "list", "--json").stdout.strip() == "[]"


def test_api_refuses_a_dot_name(api: TestClient, tmp_path: Path) -> None:
    answer = api.post("/api/v1/outputs", json={**folder_output(str(tmp_path)), "name": ".."})
    assert answer.status_code == 422
    assert answer.json()["problems"] == [f"outputs[0].name: {DOT}"]
    mailbox = {**claims_mailbox("pw", output="default"), "name": ".."}
    answer = api.post("/api/v1/mailboxes", json=mailbox)
    assert answer.status_code == 422
    assert answer.json()["problems"] == [f"mailboxes[0].name: {DOT}"]
    answer = api.post("/api/v1/config/apply", json={"mailboxes": [mailbox]})
    assert answer.status_code == 422
    assert api.get("/api/v1/mailboxes").json() == []


def test_web_form_refuses_a_dot_name(ui: TestClient) -> None:
    answer = ui.post("/mailboxes/new", data=graph_form(name=".."))
    assert answer.status_code == 422
    assert html.unescape(errors_beside(answer.text)["name"]) == DOT
    assert "claims" not in ui.get("/mailboxes").text
