"""Every cell of the seed's grant-type table, both sides, for each protocol.

For each supported (grant, protocol): the minimal mailbox the table asks for is accepted;
leaving out each Mandatory field is refused with "required for grant_type …"; each Optional
field is accepted both with and without it; each NA field that is given is refused with
"not applicable to grant_type …". Unsupported (grant, protocol) pairs are refused at
grant_type. Mandatory fields the server fills in are refused only when the server has none.
"""

from __future__ import annotations

from typing import Any

import pytest

from mailintake.config.matrix import (
    FIELD_PATH,
    FIELDS,
    GRAPH_SERVER,
    RULES,
    SUPPORT,
    Grant,
    Need,
    Protocol,
)
from mailintake.config.validate import Context, validate_document
from mailintake.errors import ConfigError

TENANT = "0b6a6d2e-1234-4c1e-9b5e-123456789abc"
LOGIN = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0"

SAMPLES: dict[str, Any] = {
    "authorization_endpoint": f"{LOGIN}/authorize",
    "token_endpoint": f"{LOGIN}/token",
    "device_authorization_endpoint": f"{LOGIN}/devicecode",
    "tenant_id": TENANT,
    "client_id": "11111111-2222-3333-4444-555555555555",
    "client_secret": "client-secret-value",
    "redirect_uri": "http://localhost:8765/",
    "username": "invoices@contoso.com",
    "password": "mailbox-password",
}


def sample(f: str, grant: Grant, protocol: Protocol) -> Any:
    if f == "scopes":
        if grant is Grant.CLIENT_CREDENTIALS:
            if protocol is Protocol.GRAPH:
                return ["https://graph.microsoft.com/.default"]
            return ["https://outlook.office365.com/.default"]
        return {
            Protocol.GRAPH: ["https://graph.microsoft.com/Mail.ReadWrite", "offline_access"],
            Protocol.IMAP: ["https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"],
            Protocol.POP3: ["https://outlook.office.com/POP.AccessAsUser.All", "offline_access"],
        }[protocol]
    return SAMPLES[f]


def mailbox(protocol: Protocol, grant: Grant, fields: dict[str, Any]) -> dict[str, Any]:
    box: dict[str, Any] = {
        "name": "box",
        "protocol": protocol.value,
        "oauth": {"authorization_server": GRAPH_SERVER, "grant_type": grant.value},
    }
    for f, value in fields.items():
        if FIELD_PATH[f] == "username":
            box["username"] = value
        else:
            box["oauth"][f] = value
    return box


def minimal(grant: Grant, protocol: Protocol) -> dict[str, Any]:
    """The Mandatory fields the server cannot fill in."""
    return {
        f: sample(f, grant, protocol)
        for f in FIELDS
        if RULES[grant][f].need is Need.MANDATORY and not RULES[grant][f].populated
    }


def problems(doc: dict[str, Any]) -> list[str]:
    try:
        validate_document(doc, Context())
    except ConfigError as exc:
        return exc.problems
    return []


SUPPORTED = [(g, p) for (g, p), s in SUPPORT.items() if s.supported]
UNSUPPORTED = [(g, p) for (g, p), s in SUPPORT.items() if not s.supported]


def cells(need: Need) -> list[tuple[Grant, Protocol, str]]:
    return [(g, p, f) for g, p in SUPPORTED for f in FIELDS if RULES[g][f].need is need]


def test_the_seed_table_is_complete() -> None:
    assert set(SUPPORT) == {(g, p) for g in Grant for p in Protocol}
    for grant in Grant:
        assert set(RULES[grant]) == set(FIELDS)
    # The seed's own cells (not our extensions):
    assert SUPPORT[(Grant.PASSWORD, Protocol.GRAPH)].supported
    assert not SUPPORT[(Grant.PASSWORD, Protocol.IMAP)].supported
    assert not SUPPORT[(Grant.PASSWORD, Protocol.POP3)].supported
    assert not SUPPORT[(Grant.CLIENT_CREDENTIALS, Protocol.GRAPH)].extension
    assert SUPPORT[(Grant.CLIENT_CREDENTIALS, Protocol.IMAP)].extension
    assert RULES[Grant.AUTHORIZATION_CODE]["redirect_uri"].need is Need.MANDATORY
    assert RULES[Grant.CLIENT_CREDENTIALS]["authorization_endpoint"].need is Need.NOT_APPLICABLE
    assert RULES[Grant.PASSWORD]["tenant_id"].need is Need.OPTIONAL
    assert RULES[Grant.PASSWORD]["password"].need is Need.MANDATORY
    assert RULES[Grant.AUTHORIZATION_CODE]["client_secret"].need is Need.OPTIONAL


@pytest.mark.parametrize(("grant", "protocol"), SUPPORTED)
def test_minimal_mailbox_is_accepted(grant: Grant, protocol: Protocol) -> None:
    doc = {"mailboxes": [mailbox(protocol, grant, minimal(grant, protocol))]}
    assert problems(doc) == []


@pytest.mark.parametrize(("grant", "protocol"), UNSUPPORTED)
def test_unsupported_grant_is_refused(grant: Grant, protocol: Protocol) -> None:
    doc = {"mailboxes": [mailbox(protocol, grant, minimal(grant, protocol))]}
    found = problems(doc)
    assert len(found) == 1
    assert found[0].startswith(
        f"mailboxes[box].oauth.grant_type: {grant.value} is not supported for protocol "
        f"{protocol.value}"
    )
    assert "authorization_code" in found[0]  # it says which grants work instead


@pytest.mark.parametrize(("grant", "protocol", "field"), cells(Need.MANDATORY))
def test_mandatory_field_left_out(grant: Grant, protocol: Protocol, field: str) -> None:
    fields = minimal(grant, protocol)
    if RULES[grant][field].populated:
        # Filled in from the server: accepted without it, and accepted given explicitly.
        assert field not in fields
        doc = {"mailboxes": [mailbox(protocol, grant, fields)]}
        assert problems(doc) == []
        fields[field] = sample(field, grant, protocol)
        assert problems({"mailboxes": [mailbox(protocol, grant, fields)]}) == []
        return
    del fields[field]
    found = problems({"mailboxes": [mailbox(protocol, grant, fields)]})
    path = f"mailboxes[box].{FIELD_PATH[field]}"
    if field == "username":
        assert found == [f"{path}: required (the mailbox address, or the account that signs in)"]
    else:
        assert found == [f"{path}: required for grant_type {grant.value}"]


@pytest.mark.parametrize(("grant", "protocol", "field"), cells(Need.OPTIONAL))
def test_optional_field_with_and_without(grant: Grant, protocol: Protocol, field: str) -> None:
    fields = minimal(grant, protocol)
    assert field not in fields
    assert problems({"mailboxes": [mailbox(protocol, grant, fields)]}) == []
    fields[field] = sample(field, grant, protocol)
    assert problems({"mailboxes": [mailbox(protocol, grant, fields)]}) == []


@pytest.mark.parametrize(("grant", "protocol", "field"), cells(Need.NOT_APPLICABLE))
def test_not_applicable_field_given(grant: Grant, protocol: Protocol, field: str) -> None:
    fields = minimal(grant, protocol)
    fields[field] = sample(field, grant, protocol)
    found = problems({"mailboxes": [mailbox(protocol, grant, fields)]})
    assert found == [
        f"mailboxes[box].{FIELD_PATH[field]}: not applicable to grant_type {grant.value} "
        "(remove it)"
    ]


POPULATED_ON_BARE_SERVER = [
    (g, p, f)
    for g, p in SUPPORTED
    if p is not Protocol.GRAPH
    for f in FIELDS
    if RULES[g][f].need is Need.MANDATORY and RULES[g][f].populated
]


@pytest.mark.parametrize(("grant", "protocol", "field"), POPULATED_ON_BARE_SERVER)
def test_populated_field_needs_the_server_to_have_it(
    grant: Grant, protocol: Protocol, field: str
) -> None:
    """A server with only a token endpoint cannot fill the other fields in."""
    bare = {"name": "bare", "token_endpoint": "https://idp.example.com/token"}
    fields = minimal(grant, protocol)
    box = mailbox(protocol, grant, fields)
    box["host"] = "mail.example.com"
    box["oauth"]["authorization_server"] = "bare"
    box["oauth"].pop("tenant_id", None)
    doc = {"authorization_servers": [bare], "mailboxes": [box]}
    found = problems(doc)
    path = f"mailboxes[box].{FIELD_PATH[field]}"
    if field == "token_endpoint":
        assert not any(line.startswith(path) for line in found)
        return
    assert (
        f"{path}: required for grant_type {grant.value} (authorization server bare has none "
        "to fill it in)"
    ) in found
    # Given on the mailbox, the same field is accepted.
    box["oauth"][field] = ["mail.read"] if field == "scopes" else f"https://idp.example.com/{field}"
    assert not any(line.startswith(path) for line in problems(doc))


def test_graph_always_uses_microsoft() -> None:
    fields = minimal(Grant.CLIENT_CREDENTIALS, Protocol.GRAPH)
    box = mailbox(Protocol.GRAPH, Grant.CLIENT_CREDENTIALS, fields)
    box["oauth"]["authorization_server"] = "GOOGLE"
    assert problems({"mailboxes": [box]}) == [
        "mailboxes[box].oauth.authorization_server: Microsoft Graph always uses the MICROSOFT "
        "authorization server, or that of a national cloud (MICROSOFT_US_GCC_HIGH, "
        "MICROSOFT_US_DOD, MICROSOFT_CHINA)"
    ]
    del box["oauth"]["authorization_server"]  # left out: MICROSOFT
    assert problems({"mailboxes": [box]}) == []


def test_tenant_is_optional_and_unused_for_servers_without_placeholder() -> None:
    fields = minimal(Grant.AUTHORIZATION_CODE, Protocol.IMAP)
    del fields["tenant_id"]
    box = mailbox(Protocol.IMAP, Grant.AUTHORIZATION_CODE, fields)
    box["oauth"]["authorization_server"] = "GOOGLE"
    box["oauth"]["scopes"] = ["https://mail.google.com/"]
    assert problems({"mailboxes": [box]}) == []
