"""Microsoft's national clouds end to end: a document that picks them applies and exports
again unchanged, and a Graph mailbox of a national cloud asks the identity provider for a
token of that cloud's Graph and reads its mail from there (the Graph emulator standing in
for https://graph.microsoft.us at an overridden base URL)."""

from __future__ import annotations

import email.policy
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailintake.engine.poll import Poller
from mailintake.services.apply import apply_document
from mailintake.services.export import export_document
from mailintake.store.repo import Store
from sandbox.demo.tenant import microsoft_at
from sandbox.graph import GraphEmulator
from sandbox.idp import IdentityProvider
from sandbox.idp.model import App

GCC_APP = "c1c1c1c1-0000-4000-8000-0000000000c1"
GCC_SECRET = "gcc-cs-Qw3Er6Ty9Ui2Op5As8"
TENANT = "0b6a6d2e-1234-4c1e-9b5e-123456789abc"


def document(out: Path) -> dict[str, Any]:
    app_only = {"grant_type": "client_credentials", "tenant_id": TENANT, "client_id": "app"}
    return {
        "authorization_servers": [
            # An administrator's edit of a cloud's built-in server: an extra delegated scope.
            {
                "name": "MICROSOFT_US_GCC_HIGH",
                "scopes": {
                    "graph": ["https://graph.microsoft.us/Mail.ReadWrite", "offline_access"],
                    "imap": [
                        "https://outlook.office365.us/IMAP.AccessAsUser.All",
                        "offline_access",
                        "openid",
                    ],
                },
            }
        ],
        "outputs": [{"name": "capture", "type": "folder", "path": str(out)}],
        "mailboxes": [
            {
                "name": "gcc-imap",
                "protocol": "imap",
                "username": "ap@agency.example.us",
                "output": "capture",
                "oauth": {
                    "authorization_server": "MICROSOFT_US_GCC_HIGH",
                    "grant_type": "authorization_code",
                    "tenant_id": TENANT,
                    "client_id": "app",
                    "redirect_uri": "http://localhost/",
                },
            },
            {
                "name": "dod-pop",
                "protocol": "pop3",
                "username": "ap@army.example.mil",
                "output": "capture",
                "oauth": {"authorization_server": "MICROSOFT_US_DOD", **app_only},
            },
            {
                "name": "cn-graph",
                "protocol": "graph",
                "username": "ap@contoso.partner.onmschina.cn",
                "output": "capture",
                "oauth": {"authorization_server": "MICROSOFT_CHINA", **app_only},
            },
        ],
    }


def test_a_document_with_national_clouds_round_trips(store: Store, tmp_path: Path) -> None:
    doc = document(tmp_path / "out")
    for box in doc["mailboxes"][1:]:
        box["oauth"]["client_secret"] = "literal-secret-Ab1"
    changes = apply_document(store, doc, {})
    assert {(c.name, c.action) for c in changes} >= {
        ("MICROSOFT_US_GCC_HIGH", "updated"),
        ("gcc-imap", "created"),
        ("dod-pop", "created"),
        ("cn-graph", "created"),
    }
    with store.read() as repo:
        exported = export_document(repo)
        effective = {
            r.spec.name: repo.get_server(r.authorization_server) for r in repo.list_mailboxes()
        }
    # Only the edited built-in is exported, as its administrator wrote it.
    assert [s["name"] for s in exported["authorization_servers"]] == ["MICROSOFT_US_GCC_HIGH"]
    assert exported["authorization_servers"][0]["token_endpoint"] == (
        "https://login.microsoftonline.us/{tenant}/oauth2/v2.0/token"
    )
    assert {b["name"]: b["oauth"]["authorization_server"] for b in exported["mailboxes"]} == {
        "gcc-imap": "MICROSOFT_US_GCC_HIGH",
        "dod-pop": "MICROSOFT_US_DOD",
        "cn-graph": "MICROSOFT_CHINA",
    }
    assert effective["dod-pop"].token_endpoint == (
        "https://login.microsoftonline.us/{tenant}/oauth2/v2.0/token"
    )
    # The export applies again, as text, and changes nothing.
    again = yaml.safe_load(yaml.safe_dump(exported))
    assert all(c.action == "unchanged" for c in apply_document(store, again, {}))
    with store.read() as repo:
        assert export_document(repo) == exported


def raw(n: int, to: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "contracts@vendor.example"
    msg["To"] = to
    msg["Subject"] = f"Contract {n}"
    msg["Message-ID"] = f"<contract-{n}@vendor.example>"
    msg["Date"] = "Wed, 02 Dec 2026 09:00:00 +0000"
    msg.set_content(f"contract {n}")
    return msg.as_bytes(policy=email.policy.SMTP)


@pytest.fixture(scope="module")
def us_graph(idp: IdentityProvider) -> Iterator[GraphEmulator]:
    """Graph for US Government L4 (GCC High): it accepts only tokens for its own root."""
    idp.add_app(
        App(
            client_id=GCC_APP,
            name="mail intake (GCC High, app-only)",
            secrets={GCC_SECRET: None},
            application_permissions={"https://graph.microsoft.us": ["Mail.ReadWrite"]},
        )
    )
    emulator = GraphEmulator(idp, resource="https://graph.microsoft.us")
    with emulator.serve():
        yield emulator


def configure(store: Store, idp: IdentityProvider, graph_url: str, address: str, out: Path) -> None:
    # The GCC High server pointed at the sandbox's sign-in (same paths); its scopes are the
    # cloud's, untouched: https://graph.microsoft.us/.default for this grant.
    server = {**microsoft_at(idp.base_url), "name": "MICROSOFT_US_GCC_HIGH"}
    apply_document(
        store,
        {
            "authorization_servers": [server],
            "outputs": [{"name": "capture", "type": "folder", "path": str(out)}],
            "mailboxes": [
                {
                    "name": "contracts",
                    "protocol": "graph",
                    "graph_url": graph_url,
                    "username": address,
                    "output": "capture",
                    "oauth": {
                        "authorization_server": "MICROSOFT_US_GCC_HIGH",
                        "grant_type": "client_credentials",
                        "tenant_id": idp.tenant_id,
                        "client_id": GCC_APP,
                        "client_secret": GCC_SECRET,
                    },
                }
            ],
        },
        {},
    )


def test_a_gcc_high_graph_mailbox_reads_from_its_cloud(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, us_graph: GraphEmulator
) -> None:
    address = f"contracts-{tmp_path.name[-6:]}@agency.example.us"
    us_graph.add_mailbox(address)
    messages = [raw(n, address) for n in range(3)]
    for message in messages:
        us_graph.deliver(address, message)
    out = tmp_path / "out"
    configure(store, idp, us_graph.base_url, address, out)
    result = Poller(store, home).poll("contracts")
    assert (result.imported, result.failed, result.error) == (3, 0, None)
    assert {p.read_bytes() for p in out.glob("contracts/*/*/message.eml")} == set(messages)
    assert all(m["isRead"] for m in us_graph.messages(address))
    with idp.lock:
        resources = {r.resource for r in idp.access_tokens.values() if r.client_id == GCC_APP}
    assert resources == {"https://graph.microsoft.us"}


def test_the_global_graph_refuses_a_national_cloud_token(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, us_graph: GraphEmulator
) -> None:
    global_graph = GraphEmulator(idp)
    address = f"contracts-{tmp_path.name[-6:]}@agency.example.us"
    global_graph.add_mailbox(address)
    global_graph.deliver(address, raw(1, address))
    with global_graph.serve():
        configure(store, idp, global_graph.base_url, address, tmp_path / "out")
        result = Poller(store, home).poll("contracts")
    assert result.imported == 0
    assert result.error is not None
    assert "Invalid audience" in result.error
