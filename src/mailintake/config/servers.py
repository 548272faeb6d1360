"""Authorization servers: the built-in MICROSOFT and GOOGLE, custom ones, and discovery.

A server's endpoints and default scopes populate a mailbox's OAuth settings. Endpoints may
contain ``{tenant}``, filled from the mailbox's ``tenant_id``. ``scopes`` are the delegated
(user-level) defaults per protocol; ``app_scopes`` the application-level defaults used by the
client-credentials grant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from mailintake.config import clouds
from mailintake.config.clouds import Cloud
from mailintake.config.matrix import Protocol

TENANT_PLACEHOLDER = "{tenant}"

ScopeMap = Mapping[Protocol, tuple[str, ...]]


def _scopes(**by_protocol: list[str]) -> ScopeMap:
    return MappingProxyType({Protocol(k): tuple(v) for k, v in by_protocol.items()})


@dataclass(frozen=True)
class ServerDefinition:
    name: str
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    device_authorization_endpoint: str | None = None
    issuer: str | None = None
    scopes: ScopeMap = field(default_factory=lambda: _scopes())
    app_scopes: ScopeMap = field(default_factory=lambda: _scopes())
    builtin: bool = False

    @property
    def uses_tenant(self) -> bool:
        return any(
            TENANT_PLACEHOLDER in (e or "")
            for e in (
                self.authorization_endpoint,
                self.token_endpoint,
                self.device_authorization_endpoint,
            )
        )

    def to_dict(self) -> dict[str, Any]:
        """The configuration-file form (CONTRACT §3), without empty keys."""
        out: dict[str, Any] = {"name": self.name}
        for key in (
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "device_authorization_endpoint",
        ):
            value = getattr(self, key)
            if value:
                out[key] = value
        for key in ("scopes", "app_scopes"):
            mapping: ScopeMap = getattr(self, key)
            if mapping:
                out[key] = {p.value: list(v) for p, v in mapping.items()}
        return out


def microsoft_server(cloud: Cloud) -> ServerDefinition:
    """The built-in server of one Microsoft cloud (``config.clouds``): the identity platform
    v2.0 endpoints on the cloud's sign-in host (oauth-facts §1.1; [N1]); Exchange scopes carry
    the cloud's Outlook resource prefix (§2.2), Graph scopes the cloud's Graph domain ([N3]),
    client credentials use <resource>/.default (§1.3, §2.5)."""
    user, app, graph = (
        cloud.exchange_user_resource,
        cloud.exchange_app_resource,
        cloud.graph_resource,
    )
    return ServerDefinition(
        name=cloud.server,
        issuer=cloud.endpoint("v2.0"),
        authorization_endpoint=cloud.endpoint("oauth2/v2.0/authorize"),
        token_endpoint=cloud.endpoint("oauth2/v2.0/token"),
        device_authorization_endpoint=cloud.endpoint("oauth2/v2.0/devicecode"),
        scopes=_scopes(
            imap=[f"{user}/IMAP.AccessAsUser.All", "offline_access"],
            pop3=[f"{user}/POP.AccessAsUser.All", "offline_access"],
            graph=[f"{graph}/Mail.ReadWrite", "offline_access"],
        ),
        app_scopes=_scopes(
            imap=[f"{app}/.default"], pop3=[f"{app}/.default"], graph=[f"{graph}/.default"]
        ),
        builtin=True,
    )


MICROSOFT = microsoft_server(clouds.GLOBAL)
NATIONAL_CLOUD_SERVERS = tuple(microsoft_server(c) for c in clouds.CLOUDS if c is not clouds.GLOBAL)
NATIONAL_SERVER_NAMES = tuple(s.name for s in NATIONAL_CLOUD_SERVERS)

# Google (oauth-facts §4.1, §4.2): IMAP and POP need the full https://mail.google.com/ scope.
GOOGLE = ServerDefinition(
    name="GOOGLE",
    issuer="https://accounts.google.com",
    authorization_endpoint="https://accounts.google.com/o/oauth2/v2/auth",
    token_endpoint="https://oauth2.googleapis.com/token",
    device_authorization_endpoint="https://oauth2.googleapis.com/device/code",
    scopes=_scopes(imap=["https://mail.google.com/"], pop3=["https://mail.google.com/"]),
    builtin=True,
)

BUILTIN_SERVERS: dict[str, ServerDefinition] = {
    s.name: s for s in (MICROSOFT, GOOGLE, *NATIONAL_CLOUD_SERVERS)
}


def graph_shared_scopes(cloud: Cloud) -> tuple[str, ...]:
    """Graph with a delegated token reading someone else's mailbox needs the .Shared
    permission (oauth-facts §3.2), on the cloud's Graph domain ([N3])."""
    return (f"{cloud.graph_resource}/Mail.ReadWrite.Shared", "offline_access")


MICROSOFT_LOGIN_HOSTS = clouds.LOGIN_HOSTS


# Google's token and sign-in hosts (oauth-facts §4.1).
GOOGLE_TOKEN_HOSTS = frozenset({"oauth2.googleapis.com", "accounts.google.com"})


def server_from_dict(data: Mapping[str, Any], *, builtin: bool = False) -> ServerDefinition:
    def scope_map(raw: Any) -> ScopeMap:
        return _scopes(**{k: list(v) for k, v in (raw or {}).items() if v is not None})

    return ServerDefinition(
        name=str(data["name"]),
        issuer=data.get("issuer"),
        authorization_endpoint=data.get("authorization_endpoint"),
        token_endpoint=data.get("token_endpoint"),
        device_authorization_endpoint=data.get("device_authorization_endpoint"),
        scopes=scope_map(data.get("scopes")),
        app_scopes=scope_map(data.get("app_scopes")),
        builtin=builtin,
    )


def with_builtin_flag(server: ServerDefinition) -> ServerDefinition:
    return replace(server, builtin=server.name in BUILTIN_SERVERS)


def fill_tenant(url: str | None, tenant: str) -> str | None:
    return url.replace(TENANT_PLACEHOLDER, tenant) if url else url
