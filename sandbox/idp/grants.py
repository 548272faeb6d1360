"""Authlib's authorization server with its own grants — authorization code (+ PKCE, RFC 7636),
refresh token, client credentials, password (RFC 6749), device code (RFC 8628) — and its
device-authorization and introspection (RFC 7662) endpoints. The subclasses only tell
Authlib where the sandbox keeps things and which AADSTS error Entra gives at each step."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint, DeviceCodeGrant
from flask import Flask, g, request

from sandbox.idp.clients import SandboxClient, authenticate_client
from sandbox.idp.errors import EntraError, as_entra
from sandbox.idp.model import AccessRecord, AuthorizationCode, DeviceRecord, RefreshRecord, User
from sandbox.idp.tokens import introspection, issue_token

if TYPE_CHECKING:
    from sandbox.idp.server import IdentityProvider

AUTH = ["entra"]  # the client authentication method registered below (sandbox.idp.clients)


def build_server(provider: IdentityProvider, app: Flask) -> AuthorizationServer:
    """Authlib's server for ``app``, with every grant and endpoint registered."""
    server = AuthorizationServer(
        app,
        query_client=lambda cid: (
            SandboxClient(provider.apps[cid]) if cid in provider.apps else None
        ),
        save_token=lambda token, req: None,
    )

    def generate(
        grant_type: str,
        client: SandboxClient,
        user: User | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        return issue_token(
            provider,
            grant_type,
            client,
            user,
            scope,
            requested=request.form.get("scope"),
            public=bool(getattr(g, "public_flow", False)),
            include_refresh_token=include_refresh_token,
            refreshed=getattr(g, "refreshed", None),
        )

    def entra_auth(query_client: Any, oauth_request: Any) -> SandboxClient:
        form = {k: str(v) for k, v in oauth_request.form.items()}
        auth = request.authorization
        basic = None
        if auth is not None and auth.type == "basic":
            basic = (auth.username or "", auth.password or "")
        client = authenticate_client(provider, form, basic, provider.token_endpoints(g.tenant))
        g.client = client
        return client

    server.register_token_generator("default", generate)
    server.register_client_auth_method("entra", entra_auth)
    server.register_grant(_code_grant(provider), [_Challenge(required=False)])
    server.register_grant(_refresh_grant(provider))
    server.register_grant(_password_grant(provider))
    server.register_grant(_AppGrant)
    server.register_grant(_device_grant(provider))
    server.register_endpoint(_device_endpoint(provider))
    server.register_endpoint(_introspection(provider))
    original_error = server.handle_error_response

    def handle_error(req: Any, error: OAuth2Error) -> Any:
        return original_error(req, as_entra(error))

    server.handle_error_response = handle_error
    return server


class _Challenge(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256 and plain, as Entra; a missing or wrong verifier is AADSTS501481."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256", "plain"]

    def validate_code_verifier(self, grant: Any, result: Any = None) -> None:
        try:
            super().validate_code_verifier(grant, result)
        except OAuth2Error:
            raise EntraError(
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the "
                "authorization request.",
            ) from None


class _AppGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH


def _code_grant(provider: IdentityProvider) -> type[grants.AuthorizationCodeGrant]:
    class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS = AUTH

        def save_authorization_code(self, code: str, req: Any) -> None:
            data = req.payload.data
            platform = provider.apps[req.client.client_id].platform_of(req.payload.redirect_uri)
            provider.codes[code] = AuthorizationCode(
                code=code,
                client_id=req.client.client_id,
                redirect_uri=req.payload.redirect_uri,
                scope=req.payload.scope or "",
                username=req.user.username,
                tenant=provider.canonical_tenant(g.tenant),
                public=platform == "public",
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
            )

        def query_authorization_code(self, code: str, client: SandboxClient) -> Any:
            found = provider.codes.get(code)
            if found is None or found.client_id != client.client_id:
                raise EntraError(
                    "invalid_grant",
                    54005,
                    "OAuth2 Authorization code was already redeemed, please retry with a new "
                    "valid code or use an existing refresh token.",
                )
            if found.is_expired():
                raise EntraError(
                    "invalid_grant",
                    70008,
                    "The provided authorization code or refresh token has expired due to "
                    "inactivity. Send a new interactive authorization request for this user "
                    "and resource.",
                )
            if found.tenant != provider.canonical_tenant(g.tenant):
                raise EntraError(
                    "invalid_grant",
                    700005,
                    "Provided Authorization Code is intended to use against other tenant, "
                    "thus rejected.",
                )
            return found

        def delete_authorization_code(self, code: AuthorizationCode) -> None:
            provider.codes.pop(code.code, None)

        def authenticate_user(self, code: AuthorizationCode) -> User | None:
            g.public_flow = code.public
            return provider.user(code.username)

    return CodeGrant


def _refresh_grant(provider: IdentityProvider) -> type[grants.RefreshTokenGrant]:
    class RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS = AUTH
        INCLUDE_NEW_REFRESH_TOKEN = True  # rotation (oauth-facts §1.7)

        def authenticate_refresh_token(self, refresh_token: str) -> RefreshRecord:
            record = provider.refresh_tokens.get(refresh_token)
            if record is None:
                raise EntraError(
                    "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
                )
            refusal = provider.take_refresh_refusal(record.client_id, record.username)
            if refusal is not None:
                raise refusal
            if record.revoked:
                raise EntraError(
                    "invalid_grant",
                    50173,
                    "The provided grant has expired due to it being revoked, a fresh auth "
                    "token is needed. The user might have changed or reset their password. "
                    "The grant was issued on '{issued}' and the TokensValidFrom date "
                    "(before which tokens are not valid) for this user is '{valid_from}'.",
                )
            if record.inactive:
                raise EntraError(
                    "invalid_grant",
                    700082,
                    "The refresh token has expired due to inactivity. The token was issued "
                    "on '{issued}' and was inactive for 90.00:00:00.",
                )
            g.public_flow = record.public
            g.refreshed = record
            return record

        def _validate_token_scope(self, token: RefreshRecord) -> None:
            # A refresh token is bound to user and client, not to a resource: it may mint a
            # token for any resource the app was consented to (oauth-facts §1.7).
            return None

        def authenticate_user(self, record: RefreshRecord) -> User | None:
            return provider.user(record.username)

        def revoke_old_credential(self, record: RefreshRecord) -> None:
            return None  # Entra does not revoke the used refresh token (§1.7)

    return RefreshGrant


def _password_grant(
    provider: IdentityProvider,
) -> type[grants.ResourceOwnerPasswordCredentialsGrant]:
    class PasswordGrant(grants.ResourceOwnerPasswordCredentialsGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS = AUTH

        def authenticate_user(self, username: str, password: str) -> User:
            user = provider.check_user(username, password, interactive=False)
            client_id = g.client.client_id  # Authlib sets request.client only afterwards
            if client_id not in user.consented_apps:
                raise EntraError(
                    "invalid_grant",
                    65001,
                    "The user or administrator has not consented to use the application with "
                    f"ID '{client_id}' named '{provider.apps[client_id].name}'. Send an "
                    "interactive authorization request for this user and resource.",
                )
            g.public_flow = provider.apps[client_id].allow_public_client
            return user

    return PasswordGrant


def _device_grant(provider: IdentityProvider) -> type[DeviceCodeGrant]:
    class DeviceGrant(DeviceCodeGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS = AUTH

        def query_device_credential(self, device_code: str) -> DeviceRecord:
            found = provider.devices.get(device_code)
            if found is None:
                raise EntraError(
                    "bad_verification_code", 70018, "Invalid verification code entered."
                )
            return found

        def query_user_grant(self, user_code: str) -> tuple[User, bool] | None:
            found = provider.device_by_user_code(user_code)
            if found is None or found.approved is None or found.username is None:
                return None
            user = provider.user(found.username)
            return None if user is None else (user, found.approved)

        def should_slow_down(self, credential: DeviceRecord) -> bool:
            return False

        def validate_device_credential(self, credential: DeviceRecord) -> User:
            # Entra's polling errors (oauth-facts §1.6), not RFC 8628's.
            if credential.is_expired():
                raise EntraError(
                    "expired_token", 70019, "Verification code expired. Restart the sign-in."
                )
            if credential.approved is False:
                raise EntraError(
                    "authorization_declined", 70020, "The user declined the sign-in request."
                )
            if credential.approved is None:
                raise EntraError(
                    "authorization_pending",
                    70016,
                    "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                )
            g.public_flow = True
            user: User = super().validate_device_credential(credential)
            return user

    return DeviceGrant


def _device_endpoint(provider: IdentityProvider) -> type[DeviceAuthorizationEndpoint]:
    class DeviceEndpoint(DeviceAuthorizationEndpoint):  # type: ignore[misc]
        CLIENT_AUTH_METHODS = AUTH

        def get_verification_uri(self) -> str:
            return f"{provider.base_url}/devicelogin"

        def save_device_credential(self, client_id: str, scope: str, data: dict[str, Any]) -> None:
            provider.devices[data["device_code"]] = DeviceRecord(
                device_code=data["device_code"],
                user_code=data["user_code"],
                client_id=client_id,
                scope=scope or "",
                expires_at=time.time() + provider.device_code_lifetime,
            )

        def create_endpoint_response(self, req: Any) -> tuple[int, dict[str, Any], Any]:
            self.INTERVAL = provider.device_interval
            self.EXPIRES_IN = provider.device_code_lifetime
            status, data, headers = super().create_endpoint_response(req)
            data.pop("verification_uri_complete", None)  # Entra does not offer it (§1.6)
            data["message"] = (
                f"To sign in, use a web browser to open the page {data['verification_uri']} "
                f"and enter the code {data['user_code']} to authenticate."
            )
            return status, data, headers

    return DeviceEndpoint


def _introspection(provider: IdentityProvider) -> type[IntrospectionEndpoint]:
    class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
        # A registered app's client_id and secret, by HTTP Basic or in the body (Dovecot's
        # introspection_mode = post sends them in the body when configured).
        CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

        def query_token(self, token: str, hint: str | None) -> AccessRecord | None:
            return provider.access_tokens.get(token)

        def introspect_token(self, token: AccessRecord) -> dict[str, Any]:
            return introspection(token, request.args.get("resource"))

        def check_permission(self, token: Any, client: Any, req: Any) -> bool:
            return True

    return Introspection
