"""A Microsoft Entra ID v2.0 stand-in built on Authlib's authorization server: the grants are
Authlib's (authorization code + PKCE, refresh token, client credentials, password, device
code, introspection); what is Entra's own — tenants, public vs confidential clients by
platform, certificate assertions, users that need MFA or are federated, consent, the AADSTS
error shapes, refresh-token revocation on a password change — is layered around them.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint, DeviceCodeGrant
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import Flask, Response, g, make_response, redirect, request
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Response as BaseResponse

from sandbox.idp.errors import EntraError, as_entra
from sandbox.idp.model import (
    GRAPH,
    OIDC_SCOPES,
    AccessRecord,
    App,
    AuthorizationCode,
    DeviceRecord,
    RefreshRecord,
    User,
    resource_of,
)

ALIASES = ("organizations", "common", "consumers")
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SESSION_COOKIE = "sandbox_session"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _Client(ClientMixin):  # type: ignore[misc]
    def __init__(self, app: App) -> None:
        self.app = app
        self.client_id = app.client_id

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return next(iter(self.app.redirect_uris), None)

    def get_allowed_scope(self, scope: str) -> str:
        return scope

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return self.app.platform_of(redirect_uri) is not None

    def check_client_secret(self, client_secret: str) -> bool:
        return client_secret in self.app.secrets

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return True

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return True


class IdentityProvider:
    """The directory of one tenant, served over HTTP on 127.0.0.1."""

    def __init__(
        self,
        tenant_id: str = "0b6a6d2e-1234-4c1e-9b5e-123456789abc",
        domain: str = "contoso.onmicrosoft.com",
        *,
        access_token_lifetime: int = 3599,
        device_interval: int = 5,
        introspection_open: bool = False,
        token_delay: float = 0.0,
    ) -> None:
        self.tenant_id = tenant_id
        self.domain = domain
        self.access_token_lifetime = access_token_lifetime
        self.device_interval = device_interval
        self.introspection_open = introspection_open
        self.token_delay = token_delay
        self.apps: dict[str, App] = {}
        self.users: dict[str, User] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.refresh_tokens: dict[str, RefreshRecord] = {}
        self.access_tokens: dict[str, AccessRecord] = {}
        self.devices: dict[str, DeviceRecord] = {}
        self.sessions: dict[str, str] = {}
        self.token_requests: list[dict[str, Any]] = []
        self.lock = threading.RLock()
        self.base_url = ""
        self._signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.flask = self._build()

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

    def expire_refresh_tokens(self, username: str) -> None:
        with self.lock:
            for record in self.refresh_tokens.values():
                if record.username.lower() == username.lower():
                    record.inactive = True

    def lock_user(self, username: str) -> None:
        self.users[username.lower()].locked = True

    def reset_counters(self) -> None:
        with self.lock:
            self.token_requests.clear()

    # --- serving ------------------------------------------------------------------------

    def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        self._server = make_server(host, port, self.flask, threaded=True)
        self.base_url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @contextmanager
    def serve(self, port: int = 0) -> Iterator[str]:
        url = self.start(port)
        try:
            yield url
        finally:
            self.stop()

    # --- Entra's rules around Authlib ---------------------------------------------------

    def _tenant_ok(self, tenant: str) -> bool:
        return tenant.lower() in (self.tenant_id.lower(), self.domain.lower(), *ALIASES)

    def _token_endpoint(self) -> str:
        return f"{self.base_url}/{g.tenant}/oauth2/v2.0/token"

    def _is_public_flow(self, app: App, form: dict[str, str]) -> bool:
        grant_type = form.get("grant_type", "")
        if grant_type == "authorization_code":
            code = self.codes.get(form.get("code", ""))
            if code is not None:
                return code.public
            return app.platform_of(form.get("redirect_uri", "")) == "public"
        if grant_type == "refresh_token":
            record = self.refresh_tokens.get(form.get("refresh_token", ""))
            return record.public if record is not None else app.allow_public_client
        if grant_type == "client_credentials":
            return False
        return app.allow_public_client  # password, device code, device authorization

    def authenticate_client(self, query_client: Any, oauth_request: Any) -> _Client:
        """Entra's client authentication: public flows must not present credentials,
        confidential ones must, and secrets and certificates are checked as Entra does."""
        form = {k: str(v) for k, v in oauth_request.form.items()}
        client_id = form.get("client_id", "")
        secret = form.get("client_secret")
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            client_id = client_id or (auth.username or "")
            secret = secret or auth.password
        app = self.apps.get(client_id)
        if app is None:
            raise EntraError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.domain}'. This can happen if the application has not been installed "
                "by the administrator of the tenant or consented to by any user in the tenant.",
            )
        assertion = form.get("client_assertion")
        public = self._is_public_flow(app, form)
        if public and (secret or assertion):
            raise EntraError(
                "invalid_client",
                700025,
                "Client is public so neither 'client_assertion' nor 'client_secret' should be "
                "presented.",
                401,
            )
        if not public and not (secret or assertion):
            raise EntraError(
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' "
                "or 'client_secret'.",
                401,
            )
        if secret:
            self._check_secret(app, secret)
        elif assertion:
            self._check_assertion(app, assertion, form.get("client_assertion_type", ""))
        return _Client(app)

    def _check_secret(self, app: App, secret: str) -> None:
        if secret in app.secrets:
            expiry = app.secrets[secret]
            if expiry is not None and expiry < datetime.now(UTC):
                raise EntraError(
                    "invalid_client",
                    7000222,
                    f"The provided client secret keys for app '{app.client_id}' are expired. "
                    "Visit the Azure portal to create new keys for your app.",
                    401,
                )
            return
        raise EntraError(
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is "
            "the client secret value, not the client secret ID, for a secret added to app "
            f"'{app.client_id}'.",
            401,
        )

    def _check_assertion(self, app: App, assertion: str, kind: str) -> None:
        if kind != JWT_BEARER:
            raise EntraError(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_assertion_type'.",
            )
        try:
            head_b64, claims_b64, signature_b64 = assertion.split(".")
            header = _json(_b64url_decode(head_b64))
            claims = _json(_b64url_decode(claims_b64))
            signature = _b64url_decode(signature_b64)
        except ValueError:
            raise EntraError(
                "invalid_client", 50012, "Client assertion is malformed.", 401
            ) from None
        cert = self._certificate_for(app, header)
        if cert is None:
            raise EntraError(
                "invalid_client",
                700027,
                "The certificate with identifier used to sign the client assertion is not "
                f"registered on application '{app.client_id}'.",
                401,
            )
        public_key = cert.public_key()
        assert isinstance(public_key, rsa.RSAPublicKey)
        signed = f"{head_b64}.{claims_b64}".encode()
        try:
            if header.get("alg") == "PS256":
                public_key.verify(
                    signature,
                    signed,
                    padding.PSS(
                        mgf=padding.MGF1(hashes.SHA256()), salt_length=hashes.SHA256.digest_size
                    ),
                    hashes.SHA256(),
                )
            elif header.get("alg") == "RS256":
                public_key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
            else:
                raise InvalidSignature
        except InvalidSignature:
            raise EntraError(
                "invalid_client", 700027, "Client assertion failed signature validation.", 401
            ) from None
        if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
            raise EntraError(
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
                401,
            )
        if claims.get("aud") != self._token_endpoint():
            raise EntraError(
                "invalid_client",
                700023,
                "Client assertion audience claim does not match Realm issuer.",
                401,
            )
        now = time.time()
        nbf, exp = claims.get("nbf", 0), claims.get("exp", 0)
        if (
            not isinstance(nbf, int | float)
            or not isinstance(exp, int | float)
            or not (nbf - 300 <= now <= exp)
        ):
            raise EntraError(
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range.",
                401,
            )

    def _certificate_for(self, app: App, header: dict[str, Any]) -> x509.Certificate | None:
        for pem in app.certificates:
            cert = x509.load_pem_x509_certificate(pem.encode())
            if header.get("x5t#S256") == _b64url(cert.fingerprint(hashes.SHA256())):
                return cert
            sha1 = cert.fingerprint(hashes.SHA1())  # noqa: S303 - the thumbprint's name
            if header.get("x5t") == _b64url(sha1):
                return cert
        return None

    def check_user(self, username: str, password: str, *, interactive: bool) -> User:
        user = self.user(username)
        if user is None:
            raise EntraError(
                "invalid_grant",
                50034,
                f"The user account {{EmailHidden}} does not exist in the "
                f"{self.domain} directory. To sign into this application, the "
                "account must be added to the directory.",
            )
        if user.locked:
            raise EntraError(
                "invalid_grant",
                50053,
                "Your account is locked because you've tried to sign in too many "
                "times with an incorrect user ID or password.",
            )
        if user.federated and not interactive:
            raise EntraError(
                "invalid_grant",
                50126,
                "Error validating credentials due to invalid username or password.",
            )
        if user.password != password:
            raise EntraError(
                "invalid_grant",
                50126,
                "Error validating credentials due to invalid username or password.",
            )
        if user.password_expired:
            raise EntraError(
                "invalid_grant",
                50055,
                "The password is expired. The user's password is expired, and "
                "therefore their login or session was ended.",
            )
        if user.blocked_by_conditional_access:
            raise EntraError(
                "invalid_grant",
                53003,
                "Access has been blocked by Conditional Access policies. The "
                "access policy does not allow token issuance.",
            )
        if user.mfa and not interactive:
            raise EntraError(
                "invalid_grant",
                50076,
                "Due to a configuration change made by your administrator, or "
                "because you moved to a new location, you must use multi-factor "
                "authentication to access '00000003-0000-0000-c000-000000000000'.",
            )
        return user

    # --- tokens -------------------------------------------------------------------------

    def generate_token(
        self,
        grant_type: str,
        client: _Client,
        user: User | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        requested = getattr(g, "requested_scope", None)
        granted = (scope or "").split()
        scopes = requested.split() if requested and grant_type != DEVICE_GRANT else granted
        resources = {r for r in (resource_of(s) for s in scopes) if r is not None}
        if len(resources) > 1:
            raise EntraError(
                "invalid_scope",
                70011,
                "The provided value for the input parameter 'scope' is not valid. "
                "The scope requested is not valid: scopes for more than one "
                "resource were requested.",
            )
        roles: list[str] = []
        if grant_type == "client_credentials":
            if len(scopes) != 1 or not scopes[0].endswith("/.default"):
                raise EntraError(
                    "invalid_scope",
                    1002012,
                    f"The provided value for scope {' '.join(scopes)} is not "
                    "valid. Client credential flows must have a scope value with "
                    "/.default suffixed to the resource identifier "
                    "(application ID URI).",
                )
            roles = list(client.app.application_permissions.get(next(iter(resources)), []))
        resource = next(iter(resources), GRAPH)
        now = int(time.time())
        token = secrets.token_urlsafe(48)
        resource_scopes = [s for s in scopes if s not in OIDC_SCOPES]
        record = AccessRecord(
            token,
            client.client_id,
            user.username if user else None,
            resource,
            " ".join(resource_scopes),
            roles,
            now,
            now + self.access_token_lifetime,
        )
        with self.lock:
            self.access_tokens[token] = record
        answer: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(resource_scopes) if grant_type != "client_credentials" else scopes[0],
            "expires_in": self.access_token_lifetime,
            "ext_expires_in": self.access_token_lifetime,
            "access_token": token,
        }
        if user is not None and "offline_access" in scopes and include_refresh_token:
            refresh = secrets.token_urlsafe(64)
            public = bool(getattr(g, "public_flow", False))
            with self.lock:
                self.refresh_tokens[refresh] = RefreshRecord(
                    refresh, client.client_id, user.username, " ".join(granted), public
                )
            answer["refresh_token"] = refresh
        if user is not None and "openid" in scopes:
            answer["id_token"] = self._id_token(client.client_id, user, now)
        return answer

    def _id_token(self, client_id: str, user: User, now: int) -> str:
        claims = {
            "iss": f"{self.base_url}/{self.tenant_id}/v2.0",
            "aud": client_id,
            "sub": hashlib.sha256(user.username.encode()).hexdigest()[:43],
            "tid": self.tenant_id,
            "preferred_username": user.username,
            "name": user.display_name or user.username.split("@")[0],
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
        }
        header = {"alg": "RS256", "typ": "JWT", "kid": "sandbox"}
        signing_input = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        signature = self._signing_key.sign(
            signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{_b64url(signature)}"

    # --- the HTTP application -----------------------------------------------------------

    def _build(self) -> Flask:
        provider = self
        app = Flask("sandbox.idp")
        server = AuthorizationServer(
            app,
            query_client=lambda cid: _Client(self.apps[cid]) if cid in self.apps else None,
            save_token=lambda t, r: None,
        )
        server.register_token_generator("default", self.generate_token)
        server.register_client_auth_method("entra", self.authenticate_client)

        class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS = ["entra"]

            def save_authorization_code(self, code: str, req: Any) -> None:
                data = req.payload.data
                platform = provider.apps[req.client.client_id].platform_of(req.payload.redirect_uri)
                provider.codes[code] = AuthorizationCode(
                    code=code,
                    client_id=req.client.client_id,
                    redirect_uri=req.payload.redirect_uri,
                    scope=req.payload.scope or "",
                    username=req.user.username,
                    tenant=g.tenant,
                    public=platform == "public",
                    code_challenge=data.get("code_challenge"),
                    code_challenge_method=data.get("code_challenge_method"),
                )

            def query_authorization_code(self, code: str, client: _Client) -> Any:
                found = provider.codes.get(code)
                if found is None or found.client_id != client.client_id:
                    raise EntraError(
                        "invalid_grant",
                        54005,
                        "OAuth2 Authorization code was already redeemed, please "
                        "retry with a new valid code or use an existing refresh "
                        "token.",
                    )
                if found.is_expired():
                    raise EntraError(
                        "invalid_grant",
                        70008,
                        "The provided authorization code or refresh token has "
                        "expired due to inactivity.",
                    )
                return found

            def delete_authorization_code(self, code: AuthorizationCode) -> None:
                provider.codes.pop(code.code, None)

            def authenticate_user(self, code: AuthorizationCode) -> User | None:
                g.public_flow = code.public
                return provider.user(code.username)

        class Challenge(CodeChallenge):  # type: ignore[misc]
            def validate_code_verifier(self, grant: Any, result: Any = None) -> None:
                try:
                    super().validate_code_verifier(grant, result)
                except OAuth2Error:
                    raise EntraError(
                        "invalid_grant",
                        501481,
                        "The Code_Verifier does not match the code_challenge "
                        "supplied in the authorization request.",
                    ) from None

        class RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS = ["entra"]
            INCLUDE_NEW_REFRESH_TOKEN = True  # rotation (oauth-facts §1.7)

            def authenticate_refresh_token(self, refresh_token: str) -> RefreshRecord:
                record = provider.refresh_tokens.get(refresh_token)
                if record is None:
                    raise EntraError(
                        "invalid_grant",
                        9002313,
                        "Invalid request. Request is malformed or invalid.",
                    )
                if record.revoked:
                    raise EntraError(
                        "invalid_grant",
                        50173,
                        "The provided grant has expired due to it being revoked, "
                        "a fresh auth token is needed. The user might have changed "
                        "or reset their password.",
                    )
                if record.inactive:
                    raise EntraError(
                        "invalid_grant",
                        700082,
                        "The refresh token has expired due to inactivity. The "
                        "token was issued on a date and was inactive for 90 days.",
                    )
                g.public_flow = record.public
                return record

            def authenticate_user(self, record: RefreshRecord) -> User | None:
                return provider.user(record.username)

            def revoke_old_credential(self, record: RefreshRecord) -> None:
                return None  # Entra does not revoke the used refresh token

        class PasswordGrant(grants.ResourceOwnerPasswordCredentialsGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS = ["entra"]

            def authenticate_user(self, username: str, password: str) -> User:
                user = provider.check_user(username, password, interactive=False)
                client_id = self.request.payload.client_id or request.form.get("client_id", "")
                if client_id not in user.consented_apps:
                    raise EntraError(
                        "invalid_grant",
                        65001,
                        f"The user or administrator has not consented to use the "
                        f"application with ID '{client_id}'. Send an interactive "
                        "authorization request for this user and resource.",
                    )
                g.public_flow = provider.apps[client_id].allow_public_client
                return user

        class AppGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS = ["entra"]

        class DeviceGrant(DeviceCodeGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS = ["entra"]

            def query_device_credential(self, device_code: str) -> DeviceRecord:
                found = provider.devices.get(device_code)
                if found is None:
                    raise EntraError(
                        "bad_verification_code", 70018, "Invalid verification code entered."
                    )
                return found

            def query_user_grant(self, user_code: str) -> tuple[User, bool] | None:
                found = next(
                    (d for d in provider.devices.values() if d.user_code == user_code), None
                )
                if found is None or found.approved is None or found.username is None:
                    return None
                user = provider.user(found.username)
                return None if user is None else (user, found.approved)

            def should_slow_down(self, credential: DeviceRecord) -> bool:
                return False

            def validate_device_credential(self, credential: DeviceRecord) -> User:
                if credential.is_expired():
                    raise EntraError("expired_token", 70019, "Verification code expired.")
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

        class DeviceEndpoint(DeviceAuthorizationEndpoint):  # type: ignore[misc]
            CLIENT_AUTH_METHODS = ["entra"]
            EXPIRES_IN = 900

            def get_verification_uri(self) -> str:
                return f"{provider.base_url}/devicelogin"

            def save_device_credential(
                self, client_id: str, scope: str, data: dict[str, Any]
            ) -> None:
                provider.devices[data["device_code"]] = DeviceRecord(
                    device_code=data["device_code"],
                    user_code=data["user_code"],
                    client_id=client_id,
                    scope=scope or "",
                    expires_at=time.time() + self.EXPIRES_IN,
                )

            def create_endpoint_response(self, req: Any) -> tuple[int, dict[str, Any], Any]:
                self.INTERVAL = provider.device_interval
                status, data, headers = super().create_endpoint_response(req)
                data.pop("verification_uri_complete", None)  # Entra does not offer it
                data["interval"] = provider.device_interval
                data["message"] = (
                    f"To sign in, use a web browser to open the page {data['verification_uri']} "
                    f"and enter the code {data['user_code']} to authenticate."
                )
                return status, data, headers

        class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
            CLIENT_AUTH_METHODS = ["client_secret_basic"]

            def query_token(self, token: str, hint: str | None) -> AccessRecord | None:
                return provider.access_tokens.get(token)

            def introspect_token(self, token: AccessRecord) -> dict[str, Any]:
                return provider.introspection(token)

            def check_permission(self, token: Any, client: Any, req: Any) -> bool:
                return True

        server.register_grant(CodeGrant, [Challenge(required=False)])
        server.register_grant(RefreshGrant)
        server.register_grant(PasswordGrant)
        server.register_grant(AppGrant)
        server.register_grant(DeviceGrant)
        server.register_endpoint(DeviceEndpoint)
        server.register_endpoint(Introspection)
        original_error = server.handle_error_response

        def handle_error(req: Any, error: OAuth2Error) -> Any:
            return original_error(req, as_entra(error))

        server.handle_error_response = handle_error

        def tenant_error(tenant: str) -> Response:
            status, body, _headers = EntraError(
                "invalid_request",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant "
                "ID and are signing into the correct cloud.",
            )()
            return _json_response(body, status)

        @app.before_request
        def tenant_segment() -> Response | None:
            args = request.view_args or {}
            tenant = args.get("tenant")
            if tenant is not None:
                g.tenant = tenant
                if not provider._tenant_ok(tenant):
                    return tenant_error(tenant)
            return None

        @app.get("/<tenant>/v2.0/.well-known/openid-configuration")
        def discovery(tenant: str) -> Response:
            base = f"{provider.base_url}/{tenant}/oauth2/v2.0"
            return _json_response(
                {
                    "issuer": f"{provider.base_url}/{provider.tenant_id}/v2.0",
                    "authorization_endpoint": f"{base}/authorize",
                    "token_endpoint": f"{base}/token",
                    "device_authorization_endpoint": f"{base}/devicecode",
                    "introspection_endpoint": f"{provider.base_url}/introspect",
                    "jwks_uri": f"{provider.base_url}/{tenant}/discovery/v2.0/keys",
                    "response_types_supported": ["code"],
                    "grant_types_supported": [
                        "authorization_code",
                        "refresh_token",
                        "client_credentials",
                        "password",
                        DEVICE_GRANT,
                    ],
                    "code_challenge_methods_supported": ["S256", "plain"],
                    "token_endpoint_auth_methods_supported": [
                        "client_secret_post",
                        "client_secret_basic",
                        "private_key_jwt",
                    ],
                }
            )

        @app.post("/<tenant>/oauth2/v2.0/token")
        def token(tenant: str) -> Any:
            grant_type = request.form.get("grant_type", "")
            entry: dict[str, Any] = {
                "grant_type": grant_type,
                "client_id": request.form.get("client_id")
                or (request.authorization.username if request.authorization else None),
                "tenant": tenant,
                "username": request.form.get("username"),
                "via": request.headers.get("Via"),
            }
            with provider.lock:
                provider.token_requests.append(entry)
            if provider.token_delay:
                time.sleep(provider.token_delay)
            g.requested_scope = request.form.get("scope")
            if grant_type == "password" and tenant.lower() in ("common", "consumers"):
                error = EntraError(
                    "invalid_request",
                    9001023,
                    "The grant type isn't supported over the /common or "
                    "/consumers endpoints. Please use the /organizations or "
                    "tenant-specific endpoint.",
                )
                status, body, _ = error()
                entry["status"] = status
                return _json_response(body, status)
            answer = server.create_token_response()
            entry["status"] = answer.status_code
            return answer

        @app.post("/<tenant>/oauth2/v2.0/devicecode")
        def devicecode(tenant: str) -> Any:
            return server.create_endpoint_response(DeviceEndpoint.ENDPOINT_NAME)

        @app.route("/<tenant>/oauth2/v2.0/authorize", methods=["GET", "POST"])
        def authorize(tenant: str) -> Any:
            return provider._authorize_page(server)

        @app.route("/devicelogin", methods=["GET", "POST"])
        def devicelogin() -> Any:
            return provider._device_page()

        @app.get("/common/userrealm/<path:username>")
        def userrealm(username: str) -> Response:
            user = provider.user(username)
            domain = username.split("@")[-1]
            if user is None:
                return _json_response(
                    {"ver": "1.0", "account_type": "Unknown", "domain_name": domain}
                )
            body: dict[str, Any] = {
                "ver": "1.0",
                "account_type": "Federated" if user.federated else "Managed",
                "domain_name": domain,
                "cloud_instance_name": "microsoftonline.com",
                "cloud_audience_urn": "urn:federation:MicrosoftOnline",
            }
            if user.federated:
                body["federation_protocol"] = "WSTrust"
                body["federation_metadata_url"] = f"https://adfs.{domain}/adfs/services/trust/mex"
            return _json_response(body)

        @app.post("/introspect")
        def introspect() -> Any:
            if provider.introspection_open:
                record = provider.access_tokens.get(request.form.get("token", ""))
                return _json_response(
                    provider.introspection(record) if record else {"active": False}
                )
            return server.create_endpoint_response(Introspection.ENDPOINT_NAME)

        @app.post("/_sandbox/users/<path:username>/password")
        def set_password(username: str) -> Response:
            data = request.get_json(silent=True) or {}
            provider.change_password(username, str(data.get("password", "")))
            return _json_response({"changed": username})

        @app.get("/_sandbox/token-requests")
        def token_requests() -> Response:
            return _json_response({"token_requests": provider.token_requests})

        return app

    def introspection(self, record: AccessRecord) -> dict[str, Any]:
        active = record.expires_at > time.time()
        if not active:
            return {"active": False}
        return {
            "active": True,
            "token_type": "Bearer",
            "client_id": record.client_id,
            "username": record.username,
            "sub": record.username or record.client_id,
            "aud": record.resource,
            "scope": record.scope,
            "roles": record.roles,
            "iat": record.issued_at,
            "exp": record.expires_at,
        }

    # --- the pages ----------------------------------------------------------------------

    def _session_user(self) -> User | None:
        username = self.sessions.get(request.cookies.get(SESSION_COOKIE, ""))
        return self.user(username) if username else None

    def _sign_in(self, target: str) -> BaseResponse | User:
        """The login form, or the signed-in user when the form was posted right."""
        error = ""
        if request.method == "POST" and "password" in request.form:
            try:
                found = self.check_user(
                    request.form.get("username", ""),
                    request.form.get("password", ""),
                    interactive=True,
                )
            except EntraError as exc:
                error = f"AADSTS{exc.code}: {exc.text}"
            else:
                session = secrets.token_urlsafe(24)
                self.sessions[session] = found.username
                response = redirect(target, code=302)
                response.set_cookie(SESSION_COOKIE, session, httponly=True)
                return response
        user = self._session_user()
        if user is not None and not error:
            return user
        hint = request.args.get("login_hint", request.form.get("username", ""))
        return _page(
            "Sign in",
            (
                (f"<p id='error' role='alert'>{html.escape(error)}</p>" if error else "")
                + f"<form id='login' method='post' action='{html.escape(target)}'>"
                f"<label>Email <input name='username' value='{html.escape(hint)}'></label>"
                "<label>Password <input name='password' type='password' value=''></label>"
                "<button type='submit'>Sign in</button></form>"
            ),
            200 if not error else 400,
        )

    def _consent(self, user: User, app: App, target: str) -> BaseResponse | bool:
        """The consent page; True once the user accepted for this app."""
        if app.client_id in user.consented_apps:
            return True
        if request.method == "POST" and request.form.get("consent") == "accept":
            user.consented_apps.add(app.client_id)
            return True
        if request.method == "POST" and request.form.get("consent") == "decline":
            return False
        scopes = html.escape(request.args.get("scope", ""))
        return _page(
            "Permissions requested",
            (
                f"<p>{html.escape(app.name)} wants to: {scopes}</p>"
                f"<form id='consent' method='post' action='{html.escape(target)}'>"
                "<button name='consent' value='accept'>Accept</button>"
                "<button name='consent' value='decline'>Cancel</button></form>"
            ),
        )

    def _authorize_page(self, server: AuthorizationServer) -> Any:
        client_id = request.args.get("client_id", "")
        app = self.apps.get(client_id)
        if app is None:
            return _page(
                "Sign in",
                "<p id='error'>AADSTS700016: Application with identifier "
                f"'{html.escape(client_id)}' was not found in the directory "
                f"'{html.escape(self.domain)}'.</p>",
                400,
            )
        redirect_uri = request.args.get("redirect_uri", "")
        if app.platform_of(redirect_uri) is None:
            return _page(
                "Sign in",
                "<p id='error'>AADSTS50011: The redirect URI "
                f"'{html.escape(redirect_uri)}' specified in the request does not "
                "match the redirect URIs configured for the application "
                f"'{html.escape(client_id)}'.</p>",
                400,
            )
        target = request.full_path
        signed_in = self._sign_in(target)
        if isinstance(signed_in, BaseResponse):
            return signed_in
        user = signed_in
        consent = self._consent(user, app, target)
        if isinstance(consent, BaseResponse):
            return consent
        if consent is False:
            query = urlencode(
                {
                    "error": "access_denied",
                    "error_description": "AADSTS65004: User declined to consent to access the app.",
                    "state": request.args.get("state", ""),
                }
            )
            return redirect(f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{query}", 302)
        if user.blocked_by_conditional_access:
            query = urlencode(
                {
                    "error": "access_denied",
                    "error_description": "AADSTS53003: Access has been blocked by Conditional "
                    "Access policies.",
                    "state": request.args.get("state", ""),
                }
            )
            return redirect(f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{query}", 302)
        try:
            grant = server.get_consent_grant(end_user=user)
        except OAuth2Error as exc:
            status, body, _headers = as_entra(exc)()
            return _json_response(body, status)
        return server.create_authorization_response(grant=grant, grant_user=user)

    def _device_page(self) -> Any:
        user_code = request.values.get("user_code", "").strip().upper()
        device = next((d for d in self.devices.values() if d.user_code == user_code), None)
        if device is None or device.is_expired():
            error = "<p id='error'>AADSTS70018: That code didn't work.</p>" if user_code else ""
            return _page(
                "Enter code",
                error
                + (
                    "<form id='devicelogin' method='post' action='/devicelogin'>"
                    "<label>Code <input name='user_code' value=''></label>"
                    "<button type='submit'>Next</button></form>"
                ),
                400 if user_code else 200,
            )
        target = f"/devicelogin?user_code={user_code}"
        signed_in = self._sign_in(target)
        if isinstance(signed_in, BaseResponse):
            return signed_in
        app = self.apps[device.client_id]
        consent = self._consent(signed_in, app, target)
        if isinstance(consent, BaseResponse):
            return consent
        device.username = signed_in.username
        device.approved = consent
        if not consent:
            return _page("Sign-in declined", "<p id='done'>You declined to sign in.</p>")
        return _page(
            "You have signed in",
            (
                f"<p id='done'>You have signed in to {html.escape(app.name)} on your device. You "
                "may now close this window.</p>"
            ),
        )


def _json(data: bytes) -> dict[str, Any]:
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value


def _json_response(body: dict[str, Any], status: int = 200) -> Response:
    response = make_response(json.dumps(body), status)
    response.headers["Content-Type"] = "application/json; charset=utf-8"
    response.headers["Cache-Control"] = "no-store"
    return response


def _page(title: str, content: str, status: int = 200) -> Response:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>"
        f"{content}</body></html>"
    )
    response = make_response(body, status)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    return response


__all__ = ["App", "IdentityProvider", "User", "uuid"]
