"""The REST API under /api/v1: same validation as the CLI."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from mailintake.settings import Settings
from mailintake.store.repo import Store
from tests.support.documents import (
    claims_mailbox,
    corp_idp_server,
    folder_output,
    invoices_mailbox,
    orders_mailbox,
)
from tests.support.store import database_text
from tests.support.web import API_GRAPH_SECRET as CLIENT_SECRET

PASSWORD = "api-pw-Dj6Hs3Fv9Gb2Kn5Mq8"
PROXY_PASSWORD = "api-pp-Cw4Ex7Ru1Ty5Io8Pa3"
NEW_PASSWORD = "api-pw-Changed-Qq1Ww2Ee3"
SECRETS = (CLIENT_SECRET, PASSWORD, PROXY_PASSWORD, NEW_PASSWORD)


def document(tmp: str) -> dict[str, Any]:
    return {
        "outputs": [folder_output(tmp)],
        "mailboxes": [
            invoices_mailbox("${env:GRAPH_SECRET}", PROXY_PASSWORD),
            claims_mailbox(PASSWORD),
        ],
    }


def test_health_matrix_and_openapi(api: TestClient) -> None:
    assert api.get("/api/v1/health").json()["status"] == "ok"
    matrix = api.get("/api/v1/matrix").json()
    assert matrix["grants"]["password"]["protocols"]["imap"]["supported"] is False
    assert matrix["grants"]["authorization_code"]["fields"]["redirect_uri"]["need"] == "mandatory"
    assert "# TYPE mailintake_messages_total counter" in api.get("/metrics").text
    spec = api.get("/api/v1/openapi.json").json()
    for path in (
        "/api/v1/mailboxes",
        "/api/v1/mailboxes/{name}",
        "/api/v1/servers/{name}/reset",
        "/api/v1/config/apply",
        "/api/v1/status",
    ):
        assert path in spec["paths"], path


def test_apply_json_and_yaml_then_export(api: TestClient, tmp_path: Any) -> None:
    doc = document(str(tmp_path))
    answer = api.post("/api/v1/config/apply", json=doc)
    assert answer.status_code == 200, answer.text
    assert {(c["name"], c["action"]) for c in answer.json()["changes"]} == {
        ("capture", "created"),
        ("invoices", "created"),
        ("claims", "created"),
    }
    # The same document as YAML changes nothing.
    answer = api.post(
        "/api/v1/config/apply",
        content=yaml.safe_dump(doc),
        headers={"Content-Type": "application/yaml"},
    )
    assert {c["action"] for c in answer.json()["changes"]} == {"unchanged"}
    exported = api.get("/api/v1/config/export").json()
    boxes = {m["name"]: m for m in exported["mailboxes"]}
    assert boxes["invoices"]["oauth"]["client_secret"] == "${env:GRAPH_SECRET}"
    assert boxes["claims"]["oauth"]["password"] == "<redacted>"
    as_yaml = api.get("/api/v1/config/export", params={"format": "yaml"})
    assert as_yaml.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(as_yaml.text) == exported
    status = api.get("/api/v1/status").json()["mailboxes"]
    assert {m["name"]: m["authorization_state"] for m in status} == {
        "claims": "not_authorized",
        "invoices": "not_authorized",
    }


def test_invalid_document_gives_every_problem_and_changes_nothing(
    api: TestClient, tmp_path: Any
) -> None:
    doc = document(str(tmp_path))
    doc["mailboxes"][0]["oauth"]["redirect_uri"] = "http://localhost:8765/"  # NA here
    doc["mailboxes"][1]["protocol"] = "imap"  # password is refused for IMAP
    del doc["mailboxes"][0]["oauth"]["client_id"]
    for url in ("/api/v1/config/validate", "/api/v1/config/apply"):
        answer = api.post(url, json=doc)
        assert answer.status_code == 422
        problems = answer.json()["problems"]
        assert (
            "mailboxes[invoices].oauth.redirect_uri: not applicable to grant_type "
            "client_credentials (remove it)" in problems
        ), problems
        assert any(p.startswith("mailboxes[claims].oauth.grant_type:") for p in problems)
        assert any(p.startswith("mailboxes[invoices].oauth.client_id:") for p in problems)
        assert any(p.startswith("mailboxes[claims].host: required") for p in problems)
        assert len(problems) == 5, problems
    assert api.get("/api/v1/mailboxes").json() == []
    answer = api.post(
        "/api/v1/config/validate",
        content="mailboxes: [",
        headers={"Content-Type": "application/yaml"},
    )
    assert answer.status_code == 422
    assert answer.json()["problems"][0].startswith("(body): line")


def test_item_endpoints(api: TestClient, tmp_path: Any) -> None:
    assert api.post("/api/v1/config/apply", json=document(str(tmp_path))).status_code == 200
    server = corp_idp_server()
    answer = api.post("/api/v1/servers", json=server)
    assert answer.status_code == 201, answer.text
    assert answer.json()["action"] == "created"
    assert api.post("/api/v1/servers", json=server).status_code == 409
    mailbox = orders_mailbox(redirect_uri=None)
    answer = api.post("/api/v1/mailboxes", json=mailbox)
    assert answer.status_code == 422
    assert answer.json()["problems"] == [
        "mailboxes[orders].oauth.redirect_uri: required for grant_type authorization_code"
    ]
    mailbox["oauth"]["redirect_uri"] = "http://127.0.0.1/"
    answer = api.post("/api/v1/mailboxes", json=mailbox)
    assert answer.status_code == 201, answer.text
    assert "scopes" not in answer.json()["item"]["oauth"]  # left to follow the server
    effective = api.get("/api/v1/mailboxes/orders/effective").json()
    assert effective["oauth"]["scopes"] == ["mail.read", "offline_access"]
    assert effective["oauth"]["token_endpoint"] == "https://idp.example.com/token"
    assert (effective["port"], effective["security"], effective["folder"]) == (993, "ssl", "INBOX")
    assert effective["push"] == "auto"

    answer = api.delete("/api/v1/servers/corp-idp")
    assert answer.status_code == 409
    assert "used by mailbox(es) orders" in answer.json()["detail"]
    assert api.delete("/api/v1/servers/MICROSOFT").status_code == 409

    answer = api.patch("/api/v1/mailboxes/orders", json={"set": {"oauth.grant_type": "password"}})
    assert answer.status_code == 422
    assert any(
        "password is not supported for protocol imap" in p for p in answer.json()["problems"]
    )
    answer = api.patch("/api/v1/mailboxes/orders", json={"set": {"poll_interval": 300}})
    assert answer.status_code == 200
    assert answer.json()["item"]["poll_interval"] == 300
    answer = api.patch("/api/v1/mailboxes/orders", json={"sett": {}})
    assert answer.status_code == 422
    assert answer.json()["problems"] == ["sett: Extra inputs are not permitted"]

    assert api.post("/api/v1/mailboxes/orders/disable").json()["item"]["enabled"] is False
    assert api.get("/api/v1/mailboxes/orders").json()["enabled"] is False
    assert api.post("/api/v1/mailboxes/orders/enable").json()["item"]["enabled"] is True

    renamed = {**mailbox, "name": "other"}
    answer = api.put("/api/v1/mailboxes/orders", json=renamed)
    assert answer.status_code == 422
    assert answer.json()["problems"] == [
        "mailboxes[orders].name: 'other' differs from the name in the URL"
    ]
    assert api.put("/api/v1/mailboxes/nothing", json=mailbox).status_code == 422
    answer = api.put("/api/v1/mailboxes/nothing", json={**mailbox, "name": "nothing"})
    assert answer.status_code == 404

    answer = api.patch("/api/v1/servers/MICROSOFT", json={"set": {"scopes.graph": ["Mail.Read"]}})
    assert answer.status_code == 200, answer.text
    assert api.get("/api/v1/servers").json()[0]["edited"] is True
    assert api.post("/api/v1/servers/MICROSOFT/reset").json()["action"] == "reset"
    assert api.get("/api/v1/servers").json()[0]["edited"] is False

    assert api.delete("/api/v1/mailboxes/orders").json()["action"] == "deleted"
    assert api.delete("/api/v1/servers/corp-idp").status_code == 200
    answer = api.get("/api/v1/mailboxes/orders")
    assert answer.status_code == 404
    assert answer.json()["detail"] == "no mailbox named 'orders'"


def test_no_secret_in_any_response_log_or_the_database(
    api: TestClient,
    store: Store,
    settings: Settings,
    tmp_path: Any,
    capfd: pytest.CaptureFixture[str],
) -> None:
    responses = [
        api.post("/api/v1/config/validate", json=document(str(tmp_path))),
        api.post("/api/v1/config/apply", json=document(str(tmp_path))),
        api.get("/api/v1/config/export"),
        api.get("/api/v1/config/export", params={"format": "yaml"}),
        api.get("/api/v1/mailboxes"),
        api.get("/api/v1/mailboxes/claims"),
        api.get("/api/v1/mailboxes/invoices"),
        api.get("/api/v1/status"),
        api.patch("/api/v1/mailboxes/claims", json={"set": {"oauth.password": NEW_PASSWORD}}),
        api.put("/api/v1/mailboxes/invoices", json=document(str(tmp_path))["mailboxes"][0]),
    ]
    assert all(r.status_code < 300 for r in responses), [r.text for r in responses]
    text = "".join(r.text for r in responses) + "".join(capfd.readouterr())
    database = database_text(store, settings)
    assert "claims" in database  # the dump holds the rows
    for secret in SECRETS:
        assert secret not in text
        assert secret not in database
    with store.read() as repo:  # and they are really stored
        oauth = repo.get_mailbox("claims", reveal=True).spec.oauth
    assert oauth is not None
    assert oauth.password is not None
    assert oauth.password.get_secret_value() == NEW_PASSWORD


def test_a_mailbox_picks_a_national_cloud_and_everything_follows(
    api: TestClient, tmp_path: Any
) -> None:
    assert api.post("/api/v1/config/apply", json=document(str(tmp_path))).status_code == 200
    servers = {s["name"]: s for s in api.get("/api/v1/servers").json()}
    assert {"MICROSOFT_US_GCC_HIGH", "MICROSOFT_US_DOD", "MICROSOFT_CHINA"} <= set(servers)
    assert servers["MICROSOFT_US_DOD"]["builtin"] is True
    mailbox = {
        "name": "dod-claims",
        "protocol": "graph",
        "username": "claims@army.example.mil",
        "output": "capture",
        "oauth": {
            "authorization_server": "MICROSOFT_US_DOD",
            "grant_type": "client_credentials",
            "tenant_id": "0b6a6d2e-1234-4c1e-9b5e-123456789abc",
            "client_id": "dod-app",
            "client_secret": CLIENT_SECRET,
        },
    }
    answer = api.post("/api/v1/mailboxes", json=mailbox)
    assert answer.status_code == 201, answer.text
    effective = api.get("/api/v1/mailboxes/dod-claims/effective").json()
    assert effective["graph_url"] == "https://dod-graph.microsoft.us/v1.0"
    assert effective["oauth"]["token_endpoint"] == (
        "https://login.microsoftonline.us/0b6a6d2e-1234-4c1e-9b5e-123456789abc/oauth2/v2.0/token"
    )
    assert effective["oauth"]["scopes"] == ["https://dod-graph.microsoft.us/.default"]
    # Picking another cloud moves every endpoint and scope with it.
    answer = api.patch(
        "/api/v1/mailboxes/dod-claims",
        json={"set": {"oauth.authorization_server": "MICROSOFT_CHINA"}},
    )
    assert answer.status_code == 200, answer.text
    effective = api.get("/api/v1/mailboxes/dod-claims/effective").json()
    assert effective["graph_url"] == "https://microsoftgraph.chinacloudapi.cn/v1.0"
    assert effective["oauth"]["token_endpoint"].startswith(
        "https://login.partner.microsoftonline.cn/"
    )
    assert effective["oauth"]["scopes"] == ["https://microsoftgraph.chinacloudapi.cn/.default"]
    # The administrator may still edit the cloud's server; a reset restores it.
    answer = api.put(
        "/api/v1/servers/MICROSOFT_CHINA",
        json={
            "name": "MICROSOFT_CHINA",
            "token_endpoint": "https://login.chinacloudapi.cn/{tenant}/oauth2/v2.0/token",
        },
    )
    assert answer.status_code == 200, answer.text
    effective = api.get("/api/v1/mailboxes/dod-claims/effective").json()
    assert effective["oauth"]["token_endpoint"].startswith("https://login.chinacloudapi.cn/")
    assert api.post("/api/v1/servers/MICROSOFT_CHINA/reset").status_code == 200
    effective = api.get("/api/v1/mailboxes/dod-claims/effective").json()
    assert effective["oauth"]["token_endpoint"].startswith(
        "https://login.partner.microsoftonline.cn/"
    )
    assert api.delete("/api/v1/servers/MICROSOFT_CHINA").status_code == 409
