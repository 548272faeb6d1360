"""Microsoft's national clouds: the built-in server of each cloud, and every endpoint, host
and scope a mailbox gets from it; what validation and the diagnosis of refusals say there."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailintake.config import clouds, resolve
from mailintake.config.clouds import Cloud
from mailintake.config.matrix import Grant, Protocol
from mailintake.config.models import MailboxSpec
from mailintake.config.servers import BUILTIN_SERVERS
from mailintake.config.validate import Context, validate_document
from mailintake.engine.factories import build_graph_source
from mailintake.errors import ConfigError
from mailintake.oauth.audience import wrong_audience
from mailintake.oauth.diagnose import Context as Situation
from mailintake.oauth.diagnose import diagnose, parse_token_error

TENANT = "0b6a6d2e-1234-4c1e-9b5e-123456789abc"
NATIONAL = [c for c in clouds.CLOUDS if c is not clouds.GLOBAL]
# Each cloud's documented hosts (config.clouds [N1]-[N7]), written out rather than derived.
EXPECTED = {
    "global": (
        "login.microsoftonline.com",
        "https://graph.microsoft.com/v1.0",
        "outlook.office365.com",
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "https://outlook.office365.com/.default",
    ),
    "us_gov_gcc_high": (
        "login.microsoftonline.us",
        "https://graph.microsoft.us/v1.0",
        "outlook.office365.us",
        "https://outlook.office365.us/IMAP.AccessAsUser.All",
        "https://outlook.office365.us/.default",
    ),
    "us_gov_dod": (
        "login.microsoftonline.us",
        "https://dod-graph.microsoft.us/v1.0",
        "outlook-dod.office365.us",
        "https://outlook-dod.office365.us/IMAP.AccessAsUser.All",
        "https://outlook-dod.office365.us/.default",
    ),
    "china": (
        "login.partner.microsoftonline.cn",
        "https://microsoftgraph.chinacloudapi.cn/v1.0",
        None,  # Microsoft lists no IMAP/POP3 port for 21Vianet's Exchange Online
        "https://partner.outlook.cn/IMAP.AccessAsUser.All",
        "https://partner.outlook.cn/.default",
    ),
}
ids = [c.key for c in clouds.CLOUDS]


def spec(
    cloud: Cloud, protocol: str, grant: str = "authorization_code", **more: Any
) -> MailboxSpec:
    oauth: dict[str, Any] = {
        "authorization_server": cloud.server,
        "grant_type": grant,
        "tenant_id": TENANT,
        "client_id": "11111111-2222-3333-4444-555555555555",
    }
    if grant == "authorization_code":
        oauth["redirect_uri"] = "http://localhost/"
    else:
        oauth["client_secret"] = "s"
    oauth.update(more.pop("oauth", {}))
    return MailboxSpec.model_validate(
        {"name": "box", "protocol": protocol, "username": "a@contoso.us", "oauth": oauth, **more}
    )


def problems(*boxes: MailboxSpec) -> list[str]:
    doc = {"mailboxes": [b.model_dump(mode="json", exclude_none=True) for b in boxes]}
    for box in doc["mailboxes"]:
        if "client_secret" in box["oauth"]:
            box["oauth"]["client_secret"] = "s"
    try:
        validate_document(doc, Context())
    except ConfigError as exc:
        return exc.problems
    return []


@pytest.mark.parametrize("cloud", clouds.CLOUDS, ids=ids)
def test_each_cloud_has_a_built_in_server_with_its_own_endpoints_and_scopes(cloud: Cloud) -> None:
    login, graph_url, mail_host, imap_scope, app_scope = EXPECTED[cloud.key]
    server = BUILTIN_SERVERS[cloud.server]
    assert server.builtin
    assert server.uses_tenant
    base = f"https://{login}/{{tenant}}/oauth2/v2.0"
    assert (
        server.authorization_endpoint,
        server.token_endpoint,
        server.device_authorization_endpoint,
    ) == (f"{base}/authorize", f"{base}/token", f"{base}/devicecode")
    graph = graph_url.removesuffix("/v1.0")
    assert server.scopes[Protocol.IMAP] == (imap_scope, "offline_access")
    assert server.scopes[Protocol.POP3] == (
        imap_scope.replace("IMAP.", "POP."),
        "offline_access",
    )
    assert server.scopes[Protocol.GRAPH] == (f"{graph}/Mail.ReadWrite", "offline_access")
    assert server.app_scopes[Protocol.IMAP] == server.app_scopes[Protocol.POP3] == (app_scope,)
    assert server.app_scopes[Protocol.GRAPH] == (f"{graph}/.default",)
    assert cloud.mail_host == mail_host


@pytest.mark.parametrize("cloud", clouds.CLOUDS, ids=ids)
def test_a_mailbox_follows_its_cloud_for_endpoints_hosts_and_scopes(cloud: Cloud) -> None:
    login, graph_url, mail_host, imap_scope, app_scope = EXPECTED[cloud.key]
    server = BUILTIN_SERVERS[cloud.server]
    imap = spec(cloud, "imap")
    assert (resolve.host(imap), resolve.port(imap)) == (mail_host, 993)
    effective = resolve.effective_oauth(imap, server)
    assert effective.token_endpoint == f"https://{login}/{TENANT}/oauth2/v2.0/token"
    assert effective.authorization_endpoint == f"https://{login}/{TENANT}/oauth2/v2.0/authorize"
    assert effective.scopes == (imap_scope, "offline_access")
    app = resolve.effective_oauth(spec(cloud, "pop3", "client_credentials"), server)
    assert app.scopes == (app_scope,)
    graph = spec(cloud, "graph", shared_mailbox="ap@contoso.us")
    assert resolve.graph_url(graph) == graph_url
    assert resolve.effective_dict(graph, server)["graph_url"] == graph_url
    assert resolve.effective_oauth(graph, server).scopes == (
        f"{graph_url.removesuffix('/v1.0')}/Mail.ReadWrite.Shared",
        "offline_access",
    )
    # The Graph source reads the cloud's Graph root unless the mailbox names another.
    source = build_graph_source(graph, lambda: "token")
    assert source.base.startswith(f"{graph_url}/users/")
    moved = graph.model_copy(update={"graph_url": "http://127.0.0.1:9/v1.0"})
    assert build_graph_source(moved, lambda: "token").base.startswith("http://127.0.0.1:9/v1.0/")


@pytest.mark.parametrize("cloud", clouds.CLOUDS, ids=ids)
@pytest.mark.parametrize("protocol", ["imap", "pop3", "graph"])
@pytest.mark.parametrize("grant", ["authorization_code", "client_credentials"])
def test_the_cloud_defaults_pass_validation(cloud: Cloud, protocol: str, grant: str) -> None:
    extra: dict[str, Any] = {}
    if cloud.mail_host is None and protocol != "graph":
        assert problems(spec(cloud, protocol, grant)) == [
            f"mailboxes[box].host: required: the {protocol.upper()} server's host name"
        ]
        extra["host"] = "mail.example.cn"
    assert problems(spec(cloud, protocol, grant, **extra)) == []


def test_a_host_of_a_national_cloud_implies_its_server() -> None:
    box = MailboxSpec(name="a", protocol=Protocol.IMAP, host="outlook.office365.us")
    assert resolve.server_name(box) == "MICROSOFT_US_GCC_HIGH"
    box = MailboxSpec(name="a", protocol=Protocol.POP3, host="outlook-dod.office365.us")
    assert resolve.server_name(box) == "MICROSOFT_US_DOD"


def test_scopes_of_another_cloud_are_refused_naming_both() -> None:
    gcc = clouds.US_GOV_GCC_HIGH
    box = spec(gcc, "graph", oauth={"scopes": ["https://graph.microsoft.com/Mail.ReadWrite"]})
    assert problems(box) == [
        "mailboxes[box].oauth.scopes: 'https://graph.microsoft.com/Mail.ReadWrite' is for "
        "https://graph.microsoft.com in the Microsoft global service, but this mailbox signs "
        "in to the Microsoft 365 GCC High (US Government), whose tokens are for "
        "https://graph.microsoft.us (tokens of one cloud are not accepted in another)"
    ]
    china = spec(
        clouds.CHINA,
        "pop3",
        "client_credentials",
        host="mail.example.cn",
        oauth={"scopes": ["https://outlook.office365.com/.default"]},
    )
    assert problems(china)[0].startswith(
        "mailboxes[box].oauth.scopes: 'https://outlook.office365.com/.default' is for "
        "Exchange Online (https://outlook.office365.com) in the Microsoft global service"
    )
    # A bare name means Graph in every cloud ([N3]); the fix names the cloud's Exchange.
    bare = spec(clouds.US_GOV_DOD, "imap", oauth={"scopes": ["IMAP.AccessAsUser.All"]})
    assert "write 'https://outlook-dod.office365.us/IMAP.AccessAsUser.All'" in problems(bare)[0]


def test_graph_may_use_a_national_cloud_but_no_other_server() -> None:
    box = spec(clouds.CHINA, "graph", "client_credentials")
    assert problems(box) == []
    google = box.model_copy(
        update={"oauth": box.oauth.model_copy(update={"authorization_server": "GOOGLE"})}  # type: ignore[union-attr]
    )
    assert problems(google) == [
        "mailboxes[box].oauth.authorization_server: Microsoft Graph always uses the MICROSOFT "
        "authorization server, or that of a national cloud (MICROSOFT_US_GCC_HIGH, "
        "MICROSOFT_US_DOD, MICROSOFT_CHINA)"
    ]


def entra(error: str, code: int, text: str) -> bytes:
    return json.dumps(
        {"error": error, "error_description": f"AADSTS{code}: {text}", "error_codes": [code]}
    ).encode()


@pytest.mark.parametrize("cloud", NATIONAL, ids=[c.key for c in NATIONAL])
def test_the_diagnosis_names_the_cloud_and_its_hosts(cloud: Cloud) -> None:
    situation = Situation(
        grant=Grant.CLIENT_CREDENTIALS, phase="token", server=cloud.server, tenant=TENANT
    )
    consent = parse_token_error(
        400, entra("invalid_grant", 65001, "The user or administrator has not consented."), {}
    )
    found = diagnose(consent, situation)
    assert f"https://{cloud.login_host}/{TENANT}/adminconsent?client_id=" in found.message
    assert "login.microsoftonline.com" not in found.message
    scope = parse_token_error(400, json.dumps({"error": "invalid_scope"}).encode(), {})
    found = diagnose(scope, situation)
    assert found.message.startswith(f"Microsoft ({cloud.short}) rejected the scopes")
    assert f"{cloud.exchange_user_resource}/IMAP.AccessAsUser.All" in found.message
    assert f"{cloud.graph_resource}/Mail.ReadWrite" in found.message
    assert "graph.microsoft.com" not in found.message


def test_a_custom_server_on_a_national_sign_in_host_is_diagnosed_as_microsoft() -> None:
    refusal = parse_token_error(400, json.dumps({"error": "invalid_scope"}).encode(), {})
    china = Situation(
        grant=Grant.AUTHORIZATION_CODE,
        phase="authorize",
        server="corp-cn",
        login_host="login.partner.microsoftonline.cn",
    )
    assert diagnose(refusal, china).message.startswith("Microsoft (China, operated by 21Vianet)")
    other = Situation(grant=Grant.AUTHORIZATION_CODE, phase="authorize", server="corp")
    assert diagnose(refusal, other).message.startswith("Corp rejected the scopes")


def test_a_mail_refusal_names_the_resource_of_the_cloud() -> None:
    gcc = clouds.US_GOV_GCC_HIGH
    hint = wrong_audience(
        ("https://graph.microsoft.us/Mail.ReadWrite", "offline_access"),
        Protocol.IMAP,
        Grant.AUTHORIZATION_CODE,
        cloud=gcc,
    )
    assert hint == (
        "The token was requested for https://graph.microsoft.us (oauth.scopes: "
        "https://graph.microsoft.us/Mail.ReadWrite offline_access), but the IMAP server accepts "
        "only tokens for Exchange Online (https://outlook.office365.us): set oauth.scopes to "
        "https://outlook.office365.us/IMAP.AccessAsUser.All offline_access."
    )
    right = ("https://outlook.office365.us/POP.AccessAsUser.All", "offline_access")
    assert wrong_audience(right, Protocol.POP3, Grant.AUTHORIZATION_CODE, cloud=gcc) is None
    # Without a server's cloud, the scopes name it.
    app = ("https://graph.microsoft.us/.default",)
    hint = wrong_audience(app, Protocol.POP3, Grant.CLIENT_CREDENTIALS, cloud=None)
    assert hint is not None
    assert hint.endswith("https://outlook.office365.us/.default.")
