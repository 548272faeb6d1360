"""Pieces of configuration documents for tests: the identifiers they share, and functions that
each return a fresh dict (an output, an authorization server, a mailbox) for a test to put in
its document and change as it likes.

Secrets are parameters: each test module keeps its own values, so a leak it looks for can only
come from what it did itself::

    doc = {
        "outputs": [folder_output(str(tmp_path))],
        "mailboxes": [invoices_mailbox("${env:GRAPH_SECRET}", PROXY_PASSWORD)],
    }
"""

from __future__ import annotations

from typing import Any

TENANT = "0b6a6d2e-1234-4c1e-9b5e-123456789abc"
CLIENT = "11111111-2222-3333-4444-555555555555"
REDIRECT_URI = "http://127.0.0.1/"


def folder_output(path: str) -> dict[str, Any]:
    """The output ``capture``: a folder."""
    return {"name": "capture", "type": "folder", "path": path}


def webhook_output(url: str, authorization: str) -> dict[str, Any]:
    """The output ``hook``: a webhook sent with the given Authorization header."""
    return {
        "name": "hook",
        "type": "webhook",
        "url": url,
        "headers": {"Authorization": authorization},
    }


def corp_idp_server() -> dict[str, Any]:
    """The custom authorization server ``corp-idp``, with its scopes for IMAP."""
    return {
        "name": "corp-idp",
        "authorization_endpoint": "https://idp.example.com/authorize",
        "token_endpoint": "https://idp.example.com/token",
        "scopes": {"imap": ["mail.read", "offline_access"]},
    }


def invoices_mailbox(
    client_secret: str,
    proxy_password: str,
    *,
    tenant_id: str = TENANT,
    client_id: str = CLIENT,
) -> dict[str, Any]:
    """The Graph mailbox ``invoices``: client credentials, through an authenticating proxy."""
    return {
        "name": "invoices",
        "protocol": "graph",
        "username": "invoices@contoso.com",
        "output": "capture",
        "oauth": {
            "grant_type": "client_credentials",
            "tenant_id": tenant_id,
            "client_id": client_id,
            "client_secret": client_secret,
        },
        "proxy": {
            "address": "http://proxy.example.com:3128",
            "username": "svc",
            "password": proxy_password,
        },
    }


def claims_mailbox(
    password: str, *, output: str = "capture", client_id: str = CLIENT
) -> dict[str, Any]:
    """The Graph mailbox ``claims``: the user's password (the ROPC grant)."""
    return {
        "name": "claims",
        "protocol": "graph",
        "username": "claims@contoso.com",
        "output": output,
        "oauth": {"grant_type": "password", "client_id": client_id, "password": password},
    }


def orders_mailbox(*, redirect_uri: str | None = REDIRECT_URI) -> dict[str, Any]:
    """The IMAP mailbox ``orders``: an authorization code from ``corp_idp_server()`` (no
    redirect_uri with None, which its grant requires)."""
    oauth = {
        "authorization_server": "corp-idp",
        "grant_type": "authorization_code",
        "client_id": "orders-app",
    }
    if redirect_uri is not None:
        oauth["redirect_uri"] = redirect_uri
    return {
        "name": "orders",
        "protocol": "imap",
        "host": "mail.example.com",
        "username": "orders@example.com",
        "output": "capture",
        "oauth": oauth,
    }


# CONTRACT §3, verbatim: its authorization server and outputs.
CONTRACT_EXAMPLE = """\
authorization_servers:            # MICROSOFT and GOOGLE are built in; entries add or edit servers
  - name: corp-idp
    authorization_endpoint: https://idp.example.com/oauth2/authorize
    token_endpoint: https://idp.example.com/oauth2/token
    device_authorization_endpoint: https://idp.example.com/oauth2/device   # optional
    scopes: {imap: [...], pop3: [...], graph: [...]}   # defaults that populate a mailbox's scopes
                                  # (graph scopes of a custom server are accepted and unused:
                                  # Graph mailboxes always use MICROSOFT)

outputs:
  - name: capture
    type: folder                  # folder | webhook
    path: /srv/capture/inbox
  - name: hook
    type: webhook
    url: https://capture.example.com/ingest
    headers: {Authorization: "${env:HOOK_TOKEN}"}
"""


NATIONAL = "MICROSOFT_US_GCC_HIGH, MICROSOFT_US_DOD, MICROSOFT_CHINA"
GRAPH_UNUSED = (
    "authorization_servers[corp-idp].scopes.graph: unused: Microsoft Graph mailboxes always "
    f"use the MICROSOFT authorization server (or that of a national cloud: {NATIONAL})"
)

# 549 bytes: six levels of ten aliases each expand to 10^6 values.
BOMB = "\n".join(
    [
        'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 7)),
        "mailboxes: *a6",
    ]
)
