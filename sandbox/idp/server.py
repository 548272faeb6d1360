"""A Microsoft Entra ID v2.0 stand-in built on Authlib's authorization server.

The grants are Authlib's (authorization code + PKCE, refresh token, client credentials,
password, device code, introspection; see ``sandbox.idp.grants``); what is Entra's own —
tenants, public vs confidential clients by platform, certificate assertions, users that need
MFA or are federated, consent, the AADSTS error shapes, refresh-token revocation on a
password change — is layered around them (``clients``, ``tokens``, ``pages``, ``routes``).
This module is the directory of one tenant and the server thread.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, Response, make_response

from sandbox.idp.errors import EntraError
from sandbox.idp.model import (
    AccessRecord,
    App,
    AuthorizationCode,
    DeviceRecord,
    RefreshRecord,
    User,
)
from sandbox.idp.routes import ALIASES, create_app
from sandbox.serving import ServedInThread

DEFAULT_TENANT = "0b6a6d2e-1234-4c1e-9b5e-123456789abc"
_INVALID_CREDENTIALS = "Error validating credentials due to invalid username or password."
# What Entra says with AADSTS70000 for a refresh token it accepts again on the next try
# (https://github.com/BingAds/BingAds-Python-SDK/issues/279).
GLITCH_TEXT = (
    "The provided value for the input parameter 'refresh_token' or 'assertion' is not valid."
)


@dataclass
class RefreshRefusal:
    """The next ``times`` refresh requests (of one app and/or user, or any) are refused with
    ``error`` and AADSTS ``code``, whatever the refresh token's own state."""

    error: str
    code: int
    text: str
    times: int
    client_id: str | None = None
    username: str | None = None

    def matches(self, client_id: str, username: str) -> bool:
        return (self.client_id is None or self.client_id == client_id) and (
            self.username is None or self.username.lower() == username.lower()
        )


class IdentityProvider(ServedInThread):
    """The directory of one tenant, served over HTTP on 127.0.0.1."""

    def __init__(
        self,
        tenant_id: str = DEFAULT_TENANT,
        domain: str = "contoso.onmicrosoft.com",
        *,
        access_token_lifetime: int = 3599,
        device_interval: int = 5,
        device_code_lifetime: int = 900,
        introspection_open: bool = False,
        token_delay: float = 0.0,
    ) -> None:
        self.tenant_id = tenant_id
        self.domain = domain
        self.access_token_lifetime = access_token_lifetime
        self.device_interval = device_interval
        self.device_code_lifetime = device_code_lifetime
        self.introspection_open = introspection_open
        self.token_delay = token_delay  # seconds each token request waits (concurrency tests)
        self.apps: dict[str, App] = {}
        self.users: dict[str, User] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.refresh_tokens: dict[str, RefreshRecord] = {}
        self.access_tokens: dict[str, AccessRecord] = {}
        self.devices: dict[str, DeviceRecord] = {}
        self.sessions: dict[str, str] = {}
        self.token_requests: list[dict[str, Any]] = []
        self.refresh_refusals: list[RefreshRefusal] = []
        self.lock = threading.RLock()
        self.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.flask: Flask = create_app(self)

    # --- the directory ------------------------------------------------------------------

    def add_app(self, app: App) -> None:
        self.apps[app.client_id] = app

    def add_user(self, user: User) -> None:
        self.users[user.username.lower()] = user

    def user(self, username: str) -> User | None:
        return self.users.get(username.lower())

    def change_password(self, username: str, password: str) -> None:
        """A password change: the user's refresh tokens are revoked (oauth-facts §1.7)."""
        with self.lock:
            user = self.users[username.lower()]
            user.password = password
            user.password_expired = False
            for record in self.refresh_tokens.values():
                if record.username.lower() == username.lower():
                    record.revoked = True

    def expire_access_tokens(self, username: str) -> None:
        """The user's access tokens end now, before the expiry they were issued with, as
        with a token revoked early (Entra's continuous access evaluation: a password
        change, an account disabled): introspection answers inactive, so servers refuse
        them; whoever holds one learns it only from that refusal."""
        now = int(time.time())
        with self.lock:
            for record in self.access_tokens.values():
                if (record.username or "").lower() == username.lower():
                    record.expires_at = min(record.expires_at, now)

    def expire_refresh_tokens(self, username: str) -> None:
        """The user's refresh tokens expire by inactivity (AADSTS700082 on use)."""
        with self.lock:
            for record in self.refresh_tokens.values():
                if record.username.lower() == username.lower():
                    record.inactive = True

    def refuse_next_refresh(
        self,
        error: str = "invalid_grant",
        code: int = 70000,
        *,
        times: int = 1,
        client_id: str | None = None,
        username: str | None = None,
        text: str | None = None,
    ) -> None:
        """The next ``times`` refresh requests for this client and/or user are refused with
        ``error`` / AADSTS``code``; the refresh token itself stays valid. Default: the
        momentary AADSTS70000 Entra is reported to give for a good refresh token
        (https://github.com/BingAds/BingAds-Python-SDK/issues/279)."""
        with self.lock:
            self.refresh_refusals.append(
                RefreshRefusal(error, code, text or GLITCH_TEXT, times, client_id, username)
            )

    def take_refresh_refusal(self, client_id: str, username: str) -> EntraError | None:
        """The refusal due for this refresh request, if one was asked for (counted down)."""
        with self.lock:
            for refusal in self.refresh_refusals:
                if refusal.times > 0 and refusal.matches(client_id, username):
                    refusal.times -= 1
                    return EntraError(refusal.error, refusal.code, refusal.text)
            self.refresh_refusals = [r for r in self.refresh_refusals if r.times > 0]
        return None

    def lock_user(self, username: str) -> None:
        """Smart lockout: sign-in fails with AADSTS50053."""
        self.users[username.lower()].locked = True

    def reset_counters(self) -> None:
        with self.lock:
            self.token_requests.clear()

    def device_by_user_code(self, user_code: str) -> DeviceRecord | None:
        wanted = user_code.strip().upper().replace("-", "")
        with self.lock:
            for device in self.devices.values():
                if device.user_code.upper().replace("-", "") == wanted:
                    return device
        return None

    # --- tenants ------------------------------------------------------------------------

    def tenant_ok(self, tenant: str) -> bool:
        return tenant.lower() in (self.tenant_id.lower(), self.domain.lower(), *ALIASES)

    def canonical_tenant(self, tenant: str) -> str:
        """The tenant GUID for the GUID or the domain; an alias stays itself."""
        lowered = tenant.lower()
        return self.tenant_id.lower() if lowered == self.domain.lower() else lowered

    def token_endpoints(self, tenant: str) -> set[str]:
        """The audiences a client assertion may name: this token endpoint, by the tenant
        segment called, the tenant GUID or the domain (oauth-facts §1.4)."""
        return {
            f"{self.base_url}/{segment}/oauth2/v2.0/token"
            for segment in (tenant, self.tenant_id, self.domain)
        }

    # --- signing in (interactive or ROPC) -----------------------------------------------

    def check_user(self, username: str, password: str, *, interactive: bool) -> User:
        """The user, or the AADSTS error Entra gives (oauth-facts §1.5, §1.10). Interactive
        sign-in satisfies MFA; ROPC cannot (50076) and cannot validate federated users'
        passwords (50126)."""
        user = self.user(username)
        if user is None:
            raise EntraError(
                "invalid_grant",
                50034,
                f"The user account {{EmailHidden}} does not exist in the {self.domain} "
                "directory. To sign into this application, the account must be added to the "
                "directory.",
            )
        if user.locked:
            raise EntraError(
                "invalid_grant",
                50053,
                "Your account is locked because you've tried to sign in too many times with "
                "an incorrect user ID or password.",
            )
        if user.federated and not interactive:
            raise EntraError("invalid_grant", 50126, _INVALID_CREDENTIALS)
        if user.password != password:
            raise EntraError("invalid_grant", 50126, _INVALID_CREDENTIALS)
        if user.password_expired:
            raise EntraError(
                "invalid_grant",
                50055,
                "The password is expired. The user's password is expired, and therefore their "
                "login or session was ended. They will be offered the opportunity to reset it.",
            )
        if user.blocked_by_conditional_access:
            raise EntraError(
                "invalid_grant",
                53003,
                "Access has been blocked by Conditional Access policies. The access policy "
                "does not allow token issuance.",
            )
        if user.mfa and not interactive:
            raise EntraError(
                "invalid_grant",
                50076,
                "Due to a configuration change made by your administrator, or because you "
                "moved to a new location, you must use multi-factor authentication to access "
                "'00000003-0000-0000-c000-000000000000'.",
            )
        return user

    @staticmethod
    def json_response(body: dict[str, Any], status: int = 200) -> Response:
        response = make_response(json.dumps(body), status)
        response.headers["Content-Type"] = "application/json; charset=utf-8"
        response.headers["Cache-Control"] = "no-store"
        return response
