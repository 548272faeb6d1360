"""Whole-document validation: every problem at once, with its path; the value checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mailintake.config.matrix import Grant, Protocol
from mailintake.config.validate import Context, validate_document
from mailintake.errors import ConfigError

TENANT = "0b6a6d2e-1234-4c1e-9b5e-123456789abc"
CLIENT = "11111111-2222-3333-4444-555555555555"


def problems(doc: Any, **ctx: Any) -> list[str]:
    try:
        validate_document(doc, Context(**ctx))
    except ConfigError as exc:
        return exc.problems
    return []


TEN_MISTAKES = f"""
authorization_servers:
  - name: corp-idp
    token_endpoint: http://idp.example.com/token          # 1 plain http off loopback
outputs:
  - name: capture
    type: webhook                                          # 2 webhook without url
mailboxes:
  - name: invoices
    protocol: imap
    username: invoices@contoso.com
    output: capture
    oauth:
      authorization_server: MICROSOFT
      grant_type: authorization_code
      tenant_id: {TENANT}
      client_id: {CLIENT}                                  # 3 redirect_uri missing
      scopes: [IMAP.AccessAsUser.All]                      # 4 bare scope means Graph
  - name: claims
    protocol: pop3
    username: claims@contoso.com
    folder: INBOX                                          # 5 POP3 has no folders
    oauth:
      authorization_server: MICROSOFT
      grant_type: password                                 # 6 ROPC not for POP3
  - name: orders
    protocol: graph
    username: orders@contoso.com
    poll_interval: often                                   # 7 not a number
    output: nowhere                                        # 8 unknown output
    oauth:
      grant_type: client_credentials
      tenant_id: common                                    # 9 needs a specific tenant
      client_id: {CLIENT}
      client_secret: s3cret
      redirect_uri: http://localhost:8765/                 # 10 NA for client credentials
"""


def test_a_file_with_ten_mistakes_reports_all_ten() -> None:
    found = problems(yaml.safe_load(TEN_MISTAKES))
    expected = [
        "authorization_servers[corp-idp].token_endpoint: must use https",
        "outputs[capture].url: required for type webhook",
        "mailboxes[invoices].oauth.redirect_uri: required for grant_type authorization_code",
        "mailboxes[invoices].oauth.scopes: 'IMAP.AccessAsUser.All' has no resource prefix",
        "mailboxes[claims].folder: POP3 has no folders",
        "mailboxes[claims].oauth.grant_type: password is not supported for protocol pop3",
        "mailboxes[orders].poll_interval: must be a valid integer",
        "mailboxes[orders].output: unknown output 'nowhere'",
        "mailboxes[orders].oauth.tenant_id: grant_type client_credentials cannot use 'common'",
        "mailboxes[orders].oauth.redirect_uri: not applicable to grant_type client_credentials",
    ]
    for start in expected:
        assert any(line.startswith(start) for line in found), (start, found)
    assert len(found) == 10, found


def test_paths_use_index_when_the_name_is_unusable() -> None:
    found = problems({"mailboxes": [{"name": "bad name!", "protocol": "imap"}]})
    assert found[0].startswith("mailboxes[0].name: must be 1 to 64 letters")


def test_unknown_fields_and_sections() -> None:
    found = problems({"mailbox": [], "mailboxes": [{"name": "a", "colour": "red"}]})
    assert (
        "mailbox: unknown section (expected authorization_servers, outputs, mailboxes, alerts)"
        in found
    )
    assert "mailboxes[a].colour: unknown field" in found


def test_duplicate_names() -> None:
    base = {"name": "a", "type": "folder", "path": "/tmp/x"}
    found = problems({"outputs": [base, dict(base)]})
    assert "outputs[a]: the name 'a' is used twice in outputs" in found


def test_a_type_error_does_not_hide_matrix_errors_in_the_same_mailbox() -> None:
    doc = {
        "mailboxes": [
            {
                "name": "a",
                "protocol": "imap",
                "port": "nine",
                "username": "a@contoso.com",
                "oauth": {"authorization_server": "MICROSOFT", "grant_type": "authorization_code"},
            }
        ]
    }
    found = problems(doc)
    assert (
        "mailboxes[a].port: must be a valid integer, unable to parse string as an integer" in found
    )
    assert "mailboxes[a].oauth.client_id: required for grant_type authorization_code" in found
    assert "mailboxes[a].oauth.redirect_uri: required for grant_type authorization_code" in found


def imap_box(**oauth: Any) -> dict[str, Any]:
    base = {
        "authorization_server": "MICROSOFT",
        "grant_type": "authorization_code",
        "tenant_id": TENANT,
        "client_id": CLIENT,
        "redirect_uri": "http://localhost:8765/",
    }
    base.update(oauth)
    return {
        "mailboxes": [{"name": "a", "protocol": "imap", "username": "a@contoso.com", "oauth": base}]
    }


@pytest.mark.parametrize(
    ("uri", "error"),
    [
        ("http://localhost:8765/", None),
        ("http://127.0.0.1/callback", None),
        ("https://login.microsoftonline.com/common/oauth2/nativeclient", None),
        ("msal11111111://auth", None),
        ("localhost:8765", "is not an absolute URI"),
        ("/callback", "is not an absolute URI"),
        ("http://example.com/cb", "plain http is only allowed for a loopback redirect URI"),
        ("http://[::1]:8765/", "Microsoft does not accept [::1]"),
        ("https://app.example.com/cb#frag", "must not contain a fragment"),
    ],
)
def test_redirect_uri(uri: str, error: str | None) -> None:
    found = problems(imap_box(redirect_uri=uri))
    if error is None:
        assert found == []
    else:
        assert len(found) == 1
        assert found[0].startswith("mailboxes[a].oauth.redirect_uri: ")
        assert error in found[0]


@pytest.mark.parametrize(
    ("grant", "tenant", "error"),
    [
        ("authorization_code", TENANT, None),
        ("authorization_code", "contoso.onmicrosoft.com", None),
        ("authorization_code", "organizations", None),
        ("authorization_code", "common", None),
        ("authorization_code", "consumers", None),
        ("authorization_code", "not a tenant", "is not a tenant"),
        ("authorization_code", "contoso", "is not a tenant"),
        ("password", "common", "cannot use 'common'"),
        ("password", "consumers", "cannot use 'consumers'"),
        ("password", "organizations", None),
        ("client_credentials", "common", "cannot use 'common'"),
        ("client_credentials", "organizations", "cannot use 'organizations'"),
        ("client_credentials", "contoso.com", None),
    ],
)
def test_tenant(grant: str, tenant: str, error: str | None) -> None:
    oauth: dict[str, Any] = {"grant_type": grant, "tenant_id": tenant, "client_id": CLIENT}
    if grant == "authorization_code":
        oauth["redirect_uri"] = "http://localhost/"
    if grant == "password":
        oauth["password"] = "pw"
    if grant == "client_credentials":
        oauth["client_secret"] = "s"
    doc = {
        "mailboxes": [
            {"name": "g", "protocol": "graph", "username": "g@contoso.com", "oauth": oauth}
        ]
    }
    found = problems(doc)
    if error is None:
        assert found == []
    else:
        assert len(found) == 1
        assert found[0].startswith("mailboxes[g].oauth.tenant_id: ")
        assert error in found[0]


@pytest.mark.parametrize(
    ("protocol", "grant", "scopes", "error"),
    [
        (Protocol.IMAP, Grant.AUTHORIZATION_CODE, ["IMAP.AccessAsUser.All"], "no resource prefix"),
        (
            Protocol.IMAP,
            Grant.AUTHORIZATION_CODE,
            ["https://outlook.office365.com/IMAP.AccessAsUser.All", "offline_access"],
            None,
        ),
        (
            Protocol.IMAP,
            Grant.AUTHORIZATION_CODE,
            ["https://graph.microsoft.com/Mail.Read"],
            "needs a token for Exchange Online",
        ),
        (
            Protocol.GRAPH,
            Grant.AUTHORIZATION_CODE,
            ["Mail.Read", "https://outlook.office.com/IMAP.AccessAsUser.All"],
            "one token request may not mix resources",
        ),
        (
            Protocol.GRAPH,
            Grant.AUTHORIZATION_CODE,
            ["https://graph.microsoft.com/.default", "Mail.Read"],
            "cannot be combined with other scopes",
        ),
        (Protocol.GRAPH, Grant.AUTHORIZATION_CODE, ["Mail.Read", "offline_access"], None),
        (
            Protocol.GRAPH,
            Grant.CLIENT_CREDENTIALS,
            ["https://graph.microsoft.com/Mail.Read"],
            "takes exactly one <resource>/.default scope",
        ),
        (
            Protocol.IMAP,
            Grant.CLIENT_CREDENTIALS,
            ["https://outlook.office365.com/.default", "offline_access"],
            "gets no refresh token",
        ),
    ],
)
def test_microsoft_scopes(
    protocol: Protocol, grant: Grant, scopes: list[str], error: str | None
) -> None:
    oauth: dict[str, Any] = {
        "authorization_server": "MICROSOFT",
        "grant_type": grant.value,
        "tenant_id": TENANT,
        "client_id": CLIENT,
        "scopes": scopes,
    }
    if grant is Grant.AUTHORIZATION_CODE:
        oauth["redirect_uri"] = "http://localhost/"
    else:
        oauth["client_secret"] = "s"
    box = {"name": "a", "protocol": protocol.value, "username": "a@contoso.com", "oauth": oauth}
    found = problems({"mailboxes": [box]})
    if error is None:
        assert found == []
    else:
        assert any(error in line for line in found), found
        assert all(line.startswith("mailboxes[a].oauth.scopes: ") for line in found)


def test_default_scopes_of_microsoft_pass_the_scope_rules() -> None:
    for protocol in Protocol:
        for grant in (Grant.AUTHORIZATION_CODE, Grant.CLIENT_CREDENTIALS, Grant.DEVICE_CODE):
            oauth: dict[str, Any] = {
                "authorization_server": "MICROSOFT",
                "grant_type": grant.value,
                "tenant_id": TENANT,
                "client_id": CLIENT,
            }
            if grant is Grant.AUTHORIZATION_CODE:
                oauth["redirect_uri"] = "http://localhost/"
            if grant is Grant.CLIENT_CREDENTIALS:
                oauth["client_secret"] = "s"
            box = {
                "name": "a",
                "protocol": protocol.value,
                "username": "a@contoso.com",
                "shared_mailbox": "ap@contoso.com",
                "oauth": oauth,
            }
            assert problems({"mailboxes": [box]}) == [], (protocol, grant)


def test_mailbox_settings_checks() -> None:
    doc = {
        "mailboxes": [
            {
                "name": "p",
                "protocol": "pop3",
                "host": "pop.example.com",
                "security": "none",
                "after_import": "mark_read",
                "username": "p@example.com",
                "oauth": {
                    "authorization_server": "GOOGLE",
                    "grant_type": "authorization_code",
                    "client_id": "c",
                    "redirect_uri": "http://127.0.0.1/",
                },
            },
            {
                "name": "i",
                "protocol": "imap",
                "host": "127.0.0.1",
                "port": 10143,
                "security": "none",
                "after_import": "keep",
                "move_to": "Done",
                "graph_url": "https://graph.microsoft.com/v1.0",
                "username": "i@example.com",
                "proxy": {"address": "proxy.example.com", "password": "x"},
                "oauth": {
                    "authorization_server": "GOOGLE",
                    "grant_type": "authorization_code",
                    "client_id": "c",
                    "redirect_uri": "http://127.0.0.1/",
                },
            },
            {
                "name": "g",
                "protocol": "graph",
                "host": "outlook.office365.com",
                "after_import": "move",
                "username": "g@contoso.com",
                "oauth": {
                    "grant_type": "client_credentials",
                    "tenant_id": TENANT,
                    "client_id": CLIENT,
                    "client_secret": "s",
                },
            },
        ]
    }
    found = problems(doc)
    assert found == [
        "mailboxes[p].security: none sends the token in clear and is only allowed for "
        "127.0.0.1/localhost; use ssl or starttls",
        "mailboxes[p].after_import: POP3 cannot mark read: use delete or keep",
        "mailboxes[i].graph_url: only used by protocol graph (remove it)",
        "mailboxes[i].move_to: only used with after_import: move (remove it)",
        "mailboxes[i].proxy.address: 'proxy.example.com' needs a port, for example "
        "http://proxy.example.com:3128",
        "mailboxes[i].proxy.username: required with proxy.password",
        "mailboxes[g].host: not used by protocol graph (Graph is reached at graph_url)",
        "mailboxes[g].move_to: required with after_import: move",
    ]


def test_env_references(tmp_path: Path) -> None:
    doc = {
        "outputs": [
            {
                "name": "hook",
                "type": "webhook",
                "url": "https://capture.example.com/in",
                "headers": {"Authorization": "Bearer ${env:HOOK_TOKEN}"},
            }
        ],
        "mailboxes": [
            {
                "name": "g",
                "protocol": "graph",
                "username": "g@contoso.com",
                "output": "hook",
                "oauth": {
                    "grant_type": "client_credentials",
                    "tenant_id": TENANT,
                    "client_id": CLIENT,
                    "client_secret": "${env:G_SECRET}",
                },
            }
        ],
    }
    assert problems(doc) == [
        "outputs[hook].headers.Authorization: environment variable HOOK_TOKEN is not set",
        "mailboxes[g].oauth.client_secret: environment variable G_SECRET is not set",
    ]
    validated = validate_document(
        doc, Context(environ={"HOOK_TOKEN": "t0k", "G_SECRET": "s3c"}, base_dir=tmp_path)
    )
    oauth = validated.mailboxes[0].oauth
    assert oauth is not None
    assert oauth.client_secret is not None
    assert oauth.client_secret.get_secret_value() == "s3c"
    assert validated.env_templates[("mailboxes", "g", "oauth.client_secret")] == "${env:G_SECRET}"
    assert "s3c" not in repr(validated)


def test_relative_folder_path_is_relative_to_the_file(tmp_path: Path) -> None:
    doc = {"outputs": [{"name": "o", "type": "folder", "path": "capture"}]}
    validated = validate_document(doc, Context(base_dir=tmp_path))
    assert validated.outputs[0].path == str(tmp_path / "capture")


def test_redacted_secret_needs_a_stored_value() -> None:
    box = imap_box(client_secret="<redacted>")
    assert problems(box) == [
        "mailboxes[a].oauth.client_secret: is <redacted> (from an export) but no value is "
        "stored: give the value or ${env:NAME}"
    ]
    stored = frozenset({("mailboxes", "a", "oauth.client_secret")})
    assert problems(box, stored_secrets=stored) == []


def test_empty_and_non_mapping_documents() -> None:
    assert problems(None) == []
    assert problems([1, 2]) == [
        "(document): must be a mapping with authorization_servers, outputs, mailboxes, alerts"
    ]
    assert problems({"mailboxes": {"a": 1}}) == ["mailboxes: must be a list"]
    assert problems({"mailboxes": ["x"]}) == ["mailboxes[0]: must be a mapping of fields"]


def _cert_box(grant: str, **oauth: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"grant_type": grant, "tenant_id": TENANT, "client_id": CLIENT}
    if grant == "authorization_code":
        base["redirect_uri"] = "https://app.example.com/callback"
    if grant == "password":
        base["password"] = "pw"
    return {
        "mailboxes": [
            {
                "name": "box",
                "protocol": "graph",
                "username": "box@contoso.com",
                "oauth": {**base, **oauth},
            }
        ]
    }


def test_certificate_credentials_stand_in_for_the_client_secret(tmp_path: Path) -> None:
    cert = tmp_path / "app.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    for grant in ("client_credentials", "authorization_code", "password"):
        assert problems(_cert_box(grant, client_certificate=str(cert))) == []
    assert problems(_cert_box("client_credentials")) == [
        "mailboxes[box].oauth.client_secret: required for grant_type client_credentials"
    ]
    assert problems(
        _cert_box("client_credentials", client_certificate=str(cert), client_secret="s")
    ) == [
        "mailboxes[box].oauth.client_certificate: give client_secret or client_certificate, "
        "not both"
    ]
    assert problems(_cert_box("device_code", client_certificate=str(cert))) == [
        "mailboxes[box].oauth.client_certificate: not applicable to grant_type device_code "
        "(a public client flow; remove it)"
    ]
    assert problems(_cert_box("client_credentials", client_certificate="app.pem")) == [
        "mailboxes[box].oauth.client_certificate: 'app.pem' must be an absolute path"
    ]
    missing = tmp_path / "missing.key"
    assert problems(
        _cert_box(
            "client_credentials", client_certificate=str(cert), client_certificate_key=str(missing)
        )
    ) == [f"mailboxes[box].oauth.client_certificate_key: no such file: {missing}"]
    assert problems(
        _cert_box("client_credentials", client_secret="s", client_certificate_password="p")
    ) == [
        "mailboxes[box].oauth.client_certificate_password: only used with client_certificate "
        "(remove it)"
    ]


def test_max_message_size_takes_units() -> None:
    from mailintake.config.resolve import parse_size

    assert parse_size("50MB") == 50 * 1024 * 1024
    assert parse_size("1 gb") == 1024**3
    assert parse_size(4096) == 4096
    assert parse_size("lots") is None
    box = {
        "name": "box",
        "protocol": "graph",
        "username": "a@b.c",
        "max_message_size": "lots",
        "oauth": {
            "grant_type": "client_credentials",
            "tenant_id": TENANT,
            "client_id": CLIENT,
            "client_secret": "s",
        },
    }
    assert problems({"mailboxes": [box]}) == [
        "mailboxes[box].max_message_size: 'lots' is not a size: give bytes or e.g. 50MB, 1GB"
    ]


def test_client_secret_expiry_date_and_google_publishing_status() -> None:
    assert problems(imap_box(client_secret="s", client_secret_expires="2027-06-30")) == []
    assert problems(imap_box(client_secret_expires="2027-06-30")) == [
        "mailboxes[a].oauth.client_secret_expires: only used with client_secret (remove it)"
    ]
    wrong = problems(imap_box(client_secret="s", client_secret_expires="30.06.2027"))
    assert len(wrong) == 1
    assert wrong[0].startswith("mailboxes[a].oauth.client_secret_expires: ")
    google = imap_box(authorization_server="GOOGLE", publishing_status="testing")
    del google["mailboxes"][0]["oauth"]["tenant_id"]
    assert problems(google) == []
    assert problems(imap_box(publishing_status="testing")) == [
        "mailboxes[a].oauth.publishing_status: only used with Google's authorization server "
        "(GOOGLE; remove it)"
    ]


def test_a_missing_field_is_required_and_a_refused_one_is_not_missing_too() -> None:
    found = problems(
        {
            "outputs": [
                {"name": "o"},
                {"name": "p", "type": "folder", "path": 3},
                {"name": "q", "type": "webhook", "url": ["https://x.example"]},
            ]
        }
    )
    assert found == [
        "outputs[o].type: required",
        "outputs[p].path: must be a valid string",
        "outputs[q].url: must be a valid string",
    ]
