"""Effective settings: what the mailbox gave, else what its server or the defaults give."""

from __future__ import annotations

from typing import Any

from mailintake.config import resolve
from mailintake.config.matrix import Grant, Protocol
from mailintake.config.models import MailboxSpec
from mailintake.config.servers import GOOGLE, MICROSOFT

TENANT = "0b6a6d2e-1234-4c1e-9b5e-123456789abc"


def spec(**fields: Any) -> MailboxSpec:
    return MailboxSpec.model_validate({"name": "a", "username": "a@contoso.com", **fields})


def test_endpoints_and_scopes_come_from_the_server_with_the_tenant_filled_in() -> None:
    box = spec(
        protocol="imap",
        oauth={
            "grant_type": "authorization_code",
            "tenant_id": TENANT,
            "client_id": "c",
            "redirect_uri": "http://localhost/",
        },
    )
    assert resolve.server_name(box) is None  # no host, no server: nothing implied
    box = box.model_copy(update={"host": "outlook.office365.com"})
    assert resolve.server_name(box) == "MICROSOFT"
    effective = resolve.effective_oauth(box, MICROSOFT)
    assert effective.authorization_endpoint == (
        f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/authorize"
    )
    assert (
        effective.token_endpoint == f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
    )
    assert effective.device_authorization_endpoint is None  # not applicable
    assert effective.scopes == (
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "offline_access",
    )
    assert effective.scopes_from_server


def test_overrides_win_and_optional_tenant_defaults_to_organizations() -> None:
    box = spec(
        protocol="graph",
        oauth={"grant_type": "password", "client_id": "c", "password": "p"},
    )
    effective = resolve.effective_oauth(box, MICROSOFT)
    assert effective.tenant_id == "organizations"
    assert effective.token_endpoint == (
        "https://login.microsoftonline.com/organizations/oauth2/v2.0/token"
    )
    assert effective.authorization_endpoint is None
    box = spec(
        protocol="graph",
        oauth={
            "grant_type": "device_code",
            "client_id": "c",
            "token_endpoint": "https://login.microsoftonline.us/{tenant}/oauth2/v2.0/token",
            "scopes": ["Mail.Read"],
        },
    )
    effective = resolve.effective_oauth(box, MICROSOFT)
    assert effective.token_endpoint == (
        "https://login.microsoftonline.us/organizations/oauth2/v2.0/token"
    )
    assert effective.scopes == ("Mail.Read",)
    assert not effective.scopes_from_server


def test_application_and_shared_mailbox_scopes() -> None:
    assert resolve.default_scopes(
        MICROSOFT, Protocol.IMAP, Grant.CLIENT_CREDENTIALS, shared=False
    ) == ("https://outlook.office365.com/.default",)
    assert resolve.default_scopes(
        MICROSOFT, Protocol.GRAPH, Grant.CLIENT_CREDENTIALS, shared=True
    ) == ("https://graph.microsoft.com/.default",)
    assert resolve.default_scopes(
        MICROSOFT, Protocol.GRAPH, Grant.AUTHORIZATION_CODE, shared=True
    ) == (
        "https://graph.microsoft.com/Mail.ReadWrite.Shared",
        "offline_access",
    )
    assert resolve.default_scopes(
        GOOGLE, Protocol.POP3, Grant.AUTHORIZATION_CODE, shared=False
    ) == ("https://mail.google.com/",)


def test_connection_defaults() -> None:
    imap = spec(protocol="imap", oauth={"authorization_server": "GOOGLE"})
    assert resolve.host(imap) == "imap.gmail.com"
    assert resolve.port(imap) == 993
    assert resolve.folder(imap) == "INBOX"
    assert resolve.after_import(imap) == "mark_read"
    pop = spec(protocol="pop3", host="127.0.0.1", security="starttls")
    assert resolve.port(pop) == 110
    assert resolve.folder(pop) is None
    assert resolve.after_import(pop) == "keep"
    graph = spec(protocol="graph")
    assert resolve.server_name(graph) == "MICROSOFT"
    assert resolve.folder(graph) == "inbox"
    assert resolve.host(graph) is None
