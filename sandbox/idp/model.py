"""What the sandbox directory holds: app registrations, users, and the tokens it issued."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
GRAPH = "https://graph.microsoft.com"
LOOPBACK = ("localhost", "127.0.0.1")


@dataclass
class App:
    """An app registration (Entra admin center > App registrations)."""

    client_id: str
    name: str = "application"
    secrets: dict[str, datetime | None] = field(default_factory=dict)  # value -> expiry
    secret_ids: dict[str, str] = field(default_factory=dict)  # Secret ID -> value
    certificates: list[str] = field(default_factory=list)  # PEM
    redirect_uris: dict[str, str] = field(default_factory=dict)  # uri -> "public" | "web"
    allow_public_client: bool = False
    application_permissions: dict[str, list[str]] = field(default_factory=dict)
    # The client assertion forms the tenant accepts for this app ("PS256+x5t#S256",
    # "RS256+x5t"); None: both. Microsoft engineers report AADSTS700027 for the documented
    # PS256 form where RS256 + x5t works (https://github.com/MicrosoftDocs/entra-docs/pull/1301).
    assertion_forms: list[str] | None = None

    def platform_of(self, redirect_uri: str) -> str | None:
        """The platform of the registered URI this one matches; the port of a loopback URI
        is ignored (oauth-facts §1.2)."""
        for registered, platform in self.redirect_uris.items():
            if same_redirect(registered, redirect_uri):
                return platform
        return None


def desktop_app(client_id: str, name: str) -> App:
    """A public client (Mobile and desktop applications): loopback redirect, device code."""
    return App(
        client_id=client_id,
        name=name,
        redirect_uris={"http://localhost/": "public"},
        allow_public_client=True,
    )


def daemon_app(client_id: str, name: str, secret: str, permissions: dict[str, list[str]]) -> App:
    """A confidential app with a client secret and application permissions (app-only)."""
    return App(
        client_id=client_id,
        name=name,
        secrets={secret: None},
        application_permissions=permissions,
    )


def same_redirect(registered: str, given: str) -> bool:
    if registered == given:
        return True
    a, b = urlsplit(registered), urlsplit(given)
    if a.scheme == b.scheme == "http" and a.hostname == b.hostname and a.hostname in LOOPBACK:
        return (a.path or "/") == (b.path or "/") and a.query == b.query
    return False


@dataclass
class User:
    username: str
    password: str
    mfa: bool = False
    federated: bool = False
    password_expired: bool = False
    blocked_by_conditional_access: bool = False
    locked: bool = False
    consented_apps: set[str] = field(default_factory=set)
    display_name: str = ""
    # Seconds this user's access tokens last (None: the provider's access_token_lifetime);
    # a test of token expiry shortens them for its own user only.
    token_lifetime: int | None = None

    def get_user_id(self) -> str:
        return self.username


def resource_of(scope: str) -> str | None:
    """The resource a scope belongs to; bare names mean Microsoft Graph (oauth-facts §1.8)."""
    if scope in OIDC_SCOPES:
        return None
    if "://" in scope:
        parts = urlsplit(scope)
        return f"{parts.scheme}://{parts.netloc}"
    return GRAPH


@dataclass
class AuthorizationCode:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    username: str
    tenant: str
    public: bool
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float = field(default_factory=lambda: time.time() + 600)

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def is_expired(self) -> bool:
        return time.time() > self.expires_at


@dataclass
class RefreshRecord:
    token: str
    client_id: str
    username: str
    scope: str
    public: bool
    issued_at: float = field(default_factory=time.time)
    revoked: bool = False  # password change / revocation -> AADSTS50173
    inactive: bool = False  # unused too long -> AADSTS700082

    def get_scope(self) -> str:
        return self.scope

    def is_revoked(self) -> bool:
        return self.revoked

    def is_expired(self) -> bool:
        return self.inactive

    def check_client(self, client: object) -> bool:
        return getattr(client, "client_id", None) == self.client_id


@dataclass
class AccessRecord:
    token: str
    client_id: str
    username: str | None
    resource: str
    scope: str
    roles: list[str]
    issued_at: int
    expires_at: int

    def is_expired(self) -> bool:
        return self.expires_at <= time.time()

    def is_revoked(self) -> bool:
        return False


@dataclass
class DeviceRecord:
    device_code: str
    user_code: str
    client_id: str
    scope: str
    expires_at: float
    username: str | None = None
    approved: bool | None = None

    def get_client_id(self) -> str:
        return self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_user_code(self) -> str:
        return self.user_code

    def is_expired(self) -> bool:
        return time.time() > self.expires_at
