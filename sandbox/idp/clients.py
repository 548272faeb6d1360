"""Client authentication as Entra does it (oauth-facts §1.2, §1.4, §1.5, §1.6): whether a
request comes from a public or a confidential flow decides whether a credential is
forbidden (AADSTS700025) or required (AADSTS7000218); secrets are checked by value and
expiry, certificate assertions (``private_key_jwt``) by thumbprint, signature, audience and
time window. Registered with Authlib as the client authentication method ``entra``."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import ClientMixin
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sandbox.idp.errors import EntraError, unknown_client
from sandbox.idp.model import App

if TYPE_CHECKING:
    from sandbox.idp.server import IdentityProvider

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SandboxClient(ClientMixin):  # type: ignore[misc]
    """An app registration as Authlib's server sees it."""

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
        expiry = self.app.secrets.get(client_secret, _MISSING)
        return expiry is not _MISSING and not _expired(expiry)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return True

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return True


_MISSING: Any = object()


def _expired(expiry: datetime | None) -> bool:
    if expiry is None:
        return False
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=UTC)
    return expiry < datetime.now(UTC)


def is_public_flow(provider: IdentityProvider, app: App, form: Mapping[str, str]) -> bool:
    """Public or confidential, as Entra decides for this request: by the redirect URI's
    platform for the code grant, by "Allow public client flows" for ROPC and device code."""
    grant_type = form.get("grant_type", "")
    if grant_type == "authorization_code":
        code = provider.codes.get(form.get("code", ""))
        if code is not None:
            return code.public
        return app.platform_of(form.get("redirect_uri", "")) == "public"
    if grant_type == "refresh_token":
        record = provider.refresh_tokens.get(form.get("refresh_token", ""))
        return record.public if record is not None else app.allow_public_client
    if grant_type == "client_credentials":
        return False
    return app.allow_public_client  # password, device code, device authorization


def authenticate_client(
    provider: IdentityProvider,
    form: Mapping[str, str],
    basic: tuple[str, str] | None,
    token_endpoints: set[str],
) -> SandboxClient:
    """The client of a token request, or an ``EntraError``. ``basic`` is HTTP Basic's
    (client_id, secret); ``token_endpoints`` are the audiences an assertion may name."""
    client_id = form.get("client_id", "")
    secret = form.get("client_secret")
    if basic is not None:
        client_id = client_id or basic[0]
        secret = secret or basic[1]
    app = provider.apps.get(client_id)
    if app is None:
        raise unknown_client(client_id, provider.domain)
    assertion = form.get("client_assertion")
    public = is_public_flow(provider, app, form)
    if public and (secret or assertion):
        raise EntraError(
            "invalid_client",
            700025,
            "Client is public so neither 'client_assertion' nor 'client_secret' should be "
            "presented.",
        )
    if not public and not (secret or assertion):
        raise EntraError(
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' "
            "or 'client_secret'.",
        )
    if secret:
        check_secret(app, secret)
    elif assertion:
        check_assertion(app, assertion, form.get("client_assertion_type", ""), token_endpoints)
    return SandboxClient(app)


def check_secret(app: App, secret: str) -> None:
    if secret in app.secrets:
        if _expired(app.secrets[secret]):
            raise EntraError(
                "invalid_client",
                7000222,
                f"The provided client secret keys for app '{app.client_id}' are expired. "
                "Visit the Azure portal to create new keys for your app: "
                "https://aka.ms/NewClientSecret, or consider using certificate credentials "
                "for added security: https://aka.ms/certCreds.",
            )
        return
    # Sending the secret's ID instead of its value is the classic mistake (oauth-facts §1.10).
    raise EntraError(
        "invalid_client",
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the "
        "client secret value, not the client secret ID, for a secret added to app "
        f"'{app.client_id}'.",
    )


def check_assertion(app: App, assertion: str, kind: str, audiences: set[str]) -> None:
    """A ``private_key_jwt`` client assertion (oauth-facts §1.4): PS256 + ``x5t#S256`` (current
    documentation) or RS256 + SHA-1 ``x5t`` (older documentation, MSAL's fallback)."""
    if kind != JWT_BEARER:
        raise EntraError(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_assertion_type'.",
        )
    try:
        head_b64, claims_b64, signature_b64 = assertion.split(".")
        header = _json(b64url_decode(head_b64))
        claims = _json(b64url_decode(claims_b64))
        signature = b64url_decode(signature_b64)
    except ValueError:
        raise EntraError("invalid_client", 50027, "JWT token is invalid or malformed.") from None
    cert = _certificate_for(app, header)
    if cert is None:
        raise EntraError(
            "invalid_client",
            700027,
            "Client assertion failed signature validation. The certificate with the "
            f"thumbprint in the assertion is not registered on application '{app.client_id}'.",
        )
    _verify(cert, header, f"{head_b64}.{claims_b64}".encode(), signature)
    form = "PS256+x5t#S256" if header.get("alg") == "PS256" else "RS256+x5t"
    if app.assertion_forms is not None and form not in app.assertion_forms:
        raise EntraError(
            "invalid_client",
            700027,
            "The certificate with identifier used to sign the client assertion is not "
            f"registered on application. [Reason - The key was not found.] (app "
            f"'{app.client_id}')",
        )
    if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
        raise EntraError(
            "invalid_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        )
    if _audience(claims.get("aud")) not in audiences:
        raise EntraError(
            "invalid_client",
            700023,
            "Client assertion audience claim does not match Realm issuer.",
        )
    now = time.time()
    nbf, exp = claims.get("nbf", 0), claims.get("exp", 0)
    valid = isinstance(nbf, int | float) and isinstance(exp, int | float)
    if not valid or not (nbf - 300 <= now <= exp):  # five minutes of clock skew allowed
        raise EntraError(
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range. Ensure that the "
            "'nbf' and 'exp' claims are correct.",
        )


def _audience(aud: object) -> str | None:
    """The one audience of an assertion. Entra refuses several with AADSTS5002741
    (https://github.com/zitadel/oidc/issues/887); a list of one is taken as that one."""
    if isinstance(aud, list):
        if len(aud) > 1:
            raise EntraError(
                "invalid_client",
                5002741,
                "Number of audience values in the provided client credential exceed maximum "
                f"allowed. {len(aud)} audience values provided, maximum allowed is 1.",
            )
        aud = aud[0] if aud else None
    return aud if isinstance(aud, str) else None


def _verify(cert: x509.Certificate, header: dict[str, Any], signed: bytes, sig: bytes) -> None:
    public_key = cert.public_key()
    try:
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise InvalidSignature
        if header.get("alg") == "PS256":
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            public_key.verify(sig, signed, pss, hashes.SHA256())
        elif header.get("alg") == "RS256":
            public_key.verify(sig, signed, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise InvalidSignature
    except InvalidSignature:
        raise EntraError(
            "invalid_client", 700027, "Client assertion failed signature validation."
        ) from None


def _certificate_for(app: App, header: dict[str, Any]) -> x509.Certificate | None:
    for pem in app.certificates:
        cert = x509.load_pem_x509_certificate(pem.encode())
        if header.get("x5t#S256") == b64url(cert.fingerprint(hashes.SHA256())):
            return cert
        sha1 = cert.fingerprint(hashes.SHA1())  # noqa: S303 - the thumbprint's name
        if header.get("x5t") == b64url(sha1):
            return cert
    return None


def _json(data: bytes) -> dict[str, Any]:
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value
