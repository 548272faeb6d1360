"""The seed's grant-type table as data: the single source of every matrix rule.

The CLI, the REST API (``GET /api/v1/matrix``), the web UI and docs/configuration.md all
read this module; no rule is written down twice. Cells taken from the seed's table are marked
``extension=False``; what mailintake adds beyond it (device code, client credentials for
IMAP/POP3) is marked ``extension=True`` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Protocol(StrEnum):
    IMAP = "imap"
    POP3 = "pop3"
    GRAPH = "graph"


class Grant(StrEnum):
    CLIENT_CREDENTIALS = "client_credentials"
    AUTHORIZATION_CODE = "authorization_code"
    PASSWORD = "password"
    DEVICE_CODE = "device_code"


# Grants a person signs in with (the others need no person to get a token).
USER_GRANTS = frozenset({Grant.AUTHORIZATION_CODE, Grant.DEVICE_CODE})


class Need(StrEnum):
    MANDATORY = "mandatory"
    OPTIONAL = "optional"
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True)
class Support:
    supported: bool
    extension: bool = False
    note: str = ""


@dataclass(frozen=True)
class Rule:
    need: Need
    populated: bool = False  # left out, it is filled in from the authorization server
    note: str = ""


@dataclass(frozen=True)
class GrantInfo:
    label: str
    level: str
    password_change: str
    login_popup: str
    federation: str
    extension: bool = False


GRANTS: dict[Grant, GrantInfo] = {
    Grant.CLIENT_CREDENTIALS: GrantInfo(
        label="Client Credentials",
        level="application",
        password_change="not applicable",
        login_popup="not applicable",
        federation="supported only with Microsoft Graph",
    ),
    Grant.AUTHORIZATION_CODE: GrantInfo(
        label="Authorization Code",
        level="user",
        password_change="authorize again",
        login_popup="mandatory",
        federation="supported with Microsoft Graph, IMAP and POP3",
    ),
    Grant.PASSWORD: GrantInfo(
        label="Resource Owner Password Credentials",
        level="user",
        password_change="update the stored password",
        login_popup="not applicable",
        federation="not supported",
    ),
    Grant.DEVICE_CODE: GrantInfo(
        label="Device Code",
        level="user",
        password_change="authorize again",
        login_popup="not applicable (a code is entered on another device)",
        federation="supported",
        extension=True,
    ),
}

_CC_EXCHANGE = (
    "mailintake extension: Exchange Online accepts app-only tokens for IMAP/POP since 2022 "
    "(scope https://outlook.office365.com/.default, IMAP.AccessAsApp/POP.AccessAsApp, "
    "New-ServicePrincipal and Add-MailboxPermission in Exchange)"
)
_DEVICE = "mailintake extension: RFC 8628 device authorization, for machines without a browser"
_NO_ROPC = (
    "the Resource Owner Password Credentials grant is only available for Microsoft Graph; "
    "for {protocol} use authorization_code, device_code or client_credentials"
)

SUPPORT: dict[tuple[Grant, Protocol], Support] = {
    (Grant.CLIENT_CREDENTIALS, Protocol.GRAPH): Support(True),
    (Grant.CLIENT_CREDENTIALS, Protocol.IMAP): Support(True, extension=True, note=_CC_EXCHANGE),
    (Grant.CLIENT_CREDENTIALS, Protocol.POP3): Support(True, extension=True, note=_CC_EXCHANGE),
    (Grant.AUTHORIZATION_CODE, Protocol.GRAPH): Support(True),
    (Grant.AUTHORIZATION_CODE, Protocol.IMAP): Support(True),
    (Grant.AUTHORIZATION_CODE, Protocol.POP3): Support(True),
    (Grant.PASSWORD, Protocol.GRAPH): Support(True),
    (Grant.PASSWORD, Protocol.IMAP): Support(False, note=_NO_ROPC.format(protocol="imap")),
    (Grant.PASSWORD, Protocol.POP3): Support(False, note=_NO_ROPC.format(protocol="pop3")),
    (Grant.DEVICE_CODE, Protocol.GRAPH): Support(True, extension=True, note=_DEVICE),
    (Grant.DEVICE_CODE, Protocol.IMAP): Support(True, extension=True, note=_DEVICE),
    (Grant.DEVICE_CODE, Protocol.POP3): Support(True, extension=True, note=_DEVICE),
}

# The fields of the seed's table, in its order, and where each lives in a mailbox.
FIELDS: tuple[str, ...] = (
    "authorization_endpoint",
    "token_endpoint",
    "device_authorization_endpoint",
    "scopes",
    "tenant_id",
    "client_id",
    "client_secret",
    "redirect_uri",
    "username",
    "password",
)

FIELD_PATH: dict[str, str] = {f: ("username" if f == "username" else f"oauth.{f}") for f in FIELDS}

M, OPT, NA = Need.MANDATORY, Need.OPTIONAL, Need.NOT_APPLICABLE

_TENANT_NOTE = (
    "fills {tenant} in the server's endpoints (MICROSOFT); a GUID, a verified domain, or "
    "organizations/common/consumers; ignored for servers without {tenant}"
)
_SECRET_AC = (
    "depends on the redirect URI's platform in the app registration: Web needs the client "
    "secret; Mobile and desktop applications must leave it blank"
)
_SECRET_ROPC = (
    "if 'Allow public client flows' (formerly 'Default client type') is Yes, leave it blank; "
    "otherwise it is required"
)
_SECRET_DEVICE = (
    "Microsoft: leave blank ('Allow public client flows' must be Yes); Google: the client "
    "secret of the 'TVs and Limited Input devices' client"
)

RULES: dict[Grant, dict[str, Rule]] = {
    Grant.CLIENT_CREDENTIALS: {
        "authorization_endpoint": Rule(NA),
        "token_endpoint": Rule(M, populated=True),
        "device_authorization_endpoint": Rule(NA),
        "scopes": Rule(M, populated=True, note="one <resource>/.default scope"),
        "tenant_id": Rule(M, note=_TENANT_NOTE + "; must name your tenant, not a shared alias"),
        "client_id": Rule(M),
        "client_secret": Rule(M),
        "redirect_uri": Rule(NA),
        "username": Rule(M, note="the mailbox the application reads"),
        "password": Rule(NA),
    },
    Grant.AUTHORIZATION_CODE: {
        "authorization_endpoint": Rule(M, populated=True),
        "token_endpoint": Rule(M, populated=True),
        "device_authorization_endpoint": Rule(NA),
        "scopes": Rule(M, populated=True),
        "tenant_id": Rule(M, note=_TENANT_NOTE),
        "client_id": Rule(M),
        "client_secret": Rule(OPT, note=_SECRET_AC),
        "redirect_uri": Rule(M, note="exactly as registered for the application"),
        "username": Rule(M, note="the account that signs in (sent as login_hint)"),
        "password": Rule(NA),
    },
    Grant.PASSWORD: {
        # The seed: endpoints and scopes are not set on the mailbox for this grant; the
        # authorization server's values are always used.
        "authorization_endpoint": Rule(NA),
        "token_endpoint": Rule(NA, populated=True),
        "device_authorization_endpoint": Rule(NA),
        "scopes": Rule(NA, populated=True),
        "tenant_id": Rule(OPT, note=_TENANT_NOTE + "; organizations when left out"),
        "client_id": Rule(M),
        "client_secret": Rule(OPT, note=_SECRET_ROPC),
        "redirect_uri": Rule(NA),
        "username": Rule(M),
        "password": Rule(M, note="the mailbox user's password; update it after a change"),
    },
    Grant.DEVICE_CODE: {
        "authorization_endpoint": Rule(NA),
        "token_endpoint": Rule(M, populated=True),
        "device_authorization_endpoint": Rule(M, populated=True),
        "scopes": Rule(M, populated=True),
        "tenant_id": Rule(OPT, note=_TENANT_NOTE + "; organizations when left out"),
        "client_id": Rule(M),
        "client_secret": Rule(OPT, note=_SECRET_DEVICE),
        "redirect_uri": Rule(NA),
        "username": Rule(M),
        "password": Rule(NA),
    },
}

# Tenant aliases Microsoft accepts in place of a tenant ID (oauth-facts §1.1).
TENANT_ALIASES = ("organizations", "common", "consumers")
DEFAULT_TENANT = "organizations"
# Grants that cannot use a multi-tenant alias (oauth-facts §1.1, §1.3, §1.5).
REFUSED_TENANT_ALIASES: dict[Grant, tuple[str, ...]] = {
    Grant.PASSWORD: ("common", "consumers"),
    Grant.CLIENT_CREDENTIALS: ("common", "consumers", "organizations"),
}

# Graph always uses this authorization server (the seed).
GRAPH_SERVER = "MICROSOFT"


def supported_grants(protocol: Protocol) -> list[Grant]:
    return [g for g in Grant if SUPPORT[(g, protocol)].supported]


def rule(grant: Grant, field: str) -> Rule:
    return RULES[grant][field]


def as_data() -> dict[str, object]:
    """The whole matrix as JSON-ready data (served to the web UI and printed in the docs)."""
    return {
        "protocols": [p.value for p in Protocol],
        "grants": {
            g.value: {
                "label": info.label,
                "level": info.level,
                "password_change": info.password_change,
                "login_popup": info.login_popup,
                "federation": info.federation,
                "extension": info.extension,
                "protocols": {
                    p.value: {
                        "supported": SUPPORT[(g, p)].supported,
                        "extension": SUPPORT[(g, p)].extension,
                        "note": SUPPORT[(g, p)].note,
                    }
                    for p in Protocol
                },
                "fields": {
                    f: {
                        "path": FIELD_PATH[f],
                        "need": RULES[g][f].need.value,
                        "populated": RULES[g][f].populated,
                        "note": RULES[g][f].note,
                    }
                    for f in FIELDS
                },
            }
            for g, info in GRANTS.items()
        },
        "graph_server": GRAPH_SERVER,
        "tenant_aliases": list(TENANT_ALIASES),
    }
