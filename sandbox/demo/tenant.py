"""The demo's tenant at the sandbox identity provider, its mailboxes (Dovecot and the Graph
emulator, seeded with mail) and the mailintake configuration that reads them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandbox.dovecot import Dovecot
from sandbox.graph import GraphEmulator
from sandbox.idp import IdentityProvider, User, daemon_app, desktop_app

TENANT = "7d3c9a51-0f2e-4b8a-9c6d-1e5f2a3b4c5d"
DOMAIN = "contoso.onmicrosoft.com"
DESKTOP_APP = "11111111-2222-3333-4444-555555555555"  # public client, loopback redirect
DAEMON_APP = "66666666-7777-8888-9999-000000000000"  # confidential, app-only
DAEMON_SECRET = "demo-daemon-secret~Value-1"
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
PASSWORDS = {ALICE: "Alice-Demo-Password-1!", BOB: "Bob-Demo-Password-2!"}
ORDERS = f"orders@{DOMAIN}"  # shared mailbox on Dovecot, read app-only over POP3
CLAIMS = f"claims@{DOMAIN}"  # shared mailbox on Graph, read app-only; Alice is a delegate
IMAP_BOX, POP3_BOX, GRAPH_BOX = "alice-imap", "orders-pop3", "claims-graph"
OUTPUT = "capture"


def build_idp() -> IdentityProvider:
    """Entra ID for the demo: Alice and Bob, a desktop app they consented to, a daemon app
    with Graph and Exchange application permissions. Dovecot checks tokens by introspection."""
    idp = IdentityProvider(
        tenant_id=TENANT, domain=DOMAIN, introspection_open=True, device_interval=2
    )
    idp.add_app(desktop_app(DESKTOP_APP, "mailintake demo (desktop)"))
    idp.add_app(
        daemon_app(
            DAEMON_APP,
            "mailintake demo (daemon)",
            DAEMON_SECRET,
            {
                "https://graph.microsoft.com": ["Mail.ReadWrite"],
                "https://outlook.office365.com": ["IMAP.AccessAsApp", "POP.AccessAsApp"],
            },
        )
    )
    for username, password in PASSWORDS.items():
        idp.add_user(User(username=username, password=password, consented_apps={DESKTOP_APP}))
    return idp


def seed_dovecot(dovecot: Dovecot, alice_mail: list[bytes], orders_mail: list[bytes]) -> None:
    dovecot.deliver_many(ALICE, alice_mail)
    dovecot.create_folder(ALICE, "Processed")
    dovecot.deliver_many(ORDERS, orders_mail)
    dovecot.add_delegate(DAEMON_APP, ORDERS)  # Add-MailboxPermission for the daemon app
    dovecot.create_folder(BOB, "INBOX")


def seed_graph(graph: GraphEmulator, alice_mail: list[bytes], claims_mail: list[bytes]) -> None:
    graph.add_mailbox(ALICE, display_name="Alice")
    graph.add_mailbox(BOB, display_name="Bob")
    graph.add_mailbox(CLAIMS, delegates={ALICE}, display_name="Claims")
    graph.add_folder(CLAIMS, "Processed")
    for raw in alice_mail:
        graph.deliver(ALICE, raw)
    for raw in claims_mail:
        graph.deliver(CLAIMS, raw)


def microsoft_at(base: str) -> dict[str, Any]:
    """The built-in MICROSOFT server pointed at the sandbox (same paths, loopback host)."""
    login = f"{base}/{{tenant}}/oauth2/v2.0"
    return {
        "name": "MICROSOFT",
        "authorization_endpoint": f"{login}/authorize",
        "token_endpoint": f"{login}/token",
        "device_authorization_endpoint": f"{login}/devicecode",
    }


def demo_config(idp_url: str, graph_url: str, dovecot: Dovecot, output: Path) -> dict[str, Any]:
    """demo.yaml: Alice's IMAP inbox (she signs in: authorization code), the shared orders
    mailbox over POP3 and the shared claims mailbox over Graph (app-only: client
    credentials), each into a folder output."""
    app_only = {
        "authorization_server": "MICROSOFT",
        "grant_type": "client_credentials",
        "tenant_id": TENANT,
        "client_id": DAEMON_APP,
        "client_secret": DAEMON_SECRET,
    }
    local = {"host": dovecot.host, "security": "none", "output": OUTPUT, "poll_interval": 60}
    return {
        "authorization_servers": [microsoft_at(idp_url)],
        "outputs": [{"name": OUTPUT, "type": "folder", "path": str(output)}],
        "mailboxes": [
            {
                "name": IMAP_BOX,
                "protocol": "imap",
                "port": dovecot.imap_port,
                "username": ALICE,
                "folder": "INBOX",
                "after_import": "move",
                "move_to": "Processed",
                **local,
                "oauth": {
                    "authorization_server": "MICROSOFT",
                    "grant_type": "authorization_code",
                    "tenant_id": TENANT,
                    "client_id": DESKTOP_APP,
                    "redirect_uri": "http://localhost/",
                },
            },
            {
                "name": POP3_BOX,
                "protocol": "pop3",
                "port": dovecot.pop3_port,
                "username": ORDERS,
                "after_import": "keep",
                **local,
                "oauth": app_only,
            },
            {
                "name": GRAPH_BOX,
                "protocol": "graph",
                "graph_url": graph_url,
                "username": CLAIMS,
                "folder": "inbox",
                "after_import": "mark_read",
                "output": OUTPUT,
                "poll_interval": 60,
                "oauth": app_only,
            },
        ],
    }
