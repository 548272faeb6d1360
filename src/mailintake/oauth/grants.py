"""Token requests, one function per grant (RFC 6749, RFC 7636 PKCE, RFC 8628 device code),
built on Authlib's request helpers and sent with httpx2 through the mailbox's proxy.

Every refusal is parsed once here (``diagnose.parse_token_error``) and becomes the error that
says what to fix (``diagnose.diagnose`` → ``diagnose.to_exception``).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import httpx2
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from mailintake.config.matrix import Grant
from mailintake.errors import AuthError, AuthorizationPending, NetworkError
from mailintake.net.http import proxy_of, translate
from mailintake.oauth import assertion_forms, diagnose
from mailintake.observability import metrics
from mailintake.observability.logging import get_logger

log = get_logger(__name__)

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
GRAPH_RESOURCE = "https://graph.microsoft.com"


@dataclass(frozen=True)
class ClientCredentials:
    """How the client authenticates at the token endpoint: nothing (a public client), a
    client secret, or a certificate (``assertion(audience, form)`` makes a private_key_jwt for
    an audience, in one of ``assertion.ASSERTION_FORMS``)."""

    client_id: str
    secret: str | None = field(default=None, repr=False)
    assertion: Callable[[str, str], str] | None = field(default=None, repr=False)

    def params(self, token_endpoint: str, form: str | None = None) -> dict[str, str]:
        params = {"client_id": self.client_id}
        if self.assertion is not None:
            params["client_assertion_type"] = JWT_BEARER
            params["client_assertion"] = self.assertion(
                token_endpoint, form or assertion_forms.preferred(token_endpoint, self.client_id)
            )
        elif self.secret:
            params["client_secret"] = self.secret
        return params


@dataclass(frozen=True)
class TokenResponse:
    access_token: str = field(repr=False)
    expires_at: datetime
    obtained_at: datetime
    refresh_token: str | None = field(repr=False)
    scopes: tuple[str, ...]
    account: str | None


@dataclass(frozen=True)
class Endpoint:
    """A token endpoint with what is needed to explain its refusals."""

    url: str
    client: ClientCredentials
    context: diagnose.Context
    mailbox: str
    http: httpx2.Client


def resource_of(scopes: tuple[str, ...] | list[str]) -> str:
    """The resource a set of scopes is for: the scheme and host of the first URI scope; bare
    names mean Microsoft Graph on Microsoft's platform (oauth-facts §1.8)."""
    for scope in scopes:
        if scope in OIDC_SCOPES:
            continue
        if "://" in scope:
            parts = urlsplit(scope)
            return f"{parts.scheme}://{parts.netloc}"
        return GRAPH_RESOURCE
    return GRAPH_RESOURCE


def _account_from_id_token(id_token: Any) -> str | None:
    """The signed-in account shown to the administrator (not used for any decision)."""
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        return None
    try:
        payload = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, json.JSONDecodeError):
        return None
    for claim in ("preferred_username", "email", "upn", "unique_name"):
        value = claims.get(claim) if isinstance(claims, dict) else None
        if isinstance(value, str) and value:
            return value
    return None


def _parse_success(
    endpoint: Endpoint, body: Mapping[str, Any], requested: tuple[str, ...], started: float
) -> TokenResponse:
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        # The server broke the protocol: asking again will not help, signing in again may
        # not either; a person must check the endpoint (the grant is kept).
        raise AuthError(
            f"{endpoint.mailbox}: the token server {endpoint.url} answered without a token "
            "(HTTP 200 with no access_token): check that the token endpoint is the server's "
            "and what its server logs say"
        )
    obtained = datetime.fromtimestamp(started, UTC)
    expires_in = body.get("expires_in")
    try:
        lifetime = float(expires_in) if expires_in is not None else 0.0
    except (TypeError, ValueError):
        lifetime = 0.0  # unknown: never assumed, so it is renewed before its next use
    scope = body.get("scope")
    scopes = tuple(scope.split()) if isinstance(scope, str) and scope else requested
    refresh = body.get("refresh_token")
    return TokenResponse(
        access_token=token,
        expires_at=obtained + timedelta(seconds=lifetime),
        obtained_at=obtained,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        scopes=scopes,
        account=_account_from_id_token(body.get("id_token")),
    )


def _user_realm_federated(endpoint: Endpoint, username: str) -> bool | None:
    """Microsoft's user realm lookup (what MSAL uses): is the account federated (AD FS)?"""
    parts = urlsplit(endpoint.url)
    url = f"{parts.scheme}://{parts.netloc}/common/userrealm/{quote(username)}"
    try:
        answer = endpoint.http.get(url, params={"api-version": "1.0"})
        kind = answer.json().get("account_type") if answer.status_code == 200 else None
    except (httpx2.HTTPError, ValueError, AttributeError):
        return None
    return kind == "Federated" if isinstance(kind, str) else None


def post_token(
    endpoint: Endpoint, params: Mapping[str, str], requested: tuple[str, ...]
) -> TokenResponse:
    """POST to the token endpoint; the answer or the error that says what to fix. A
    certificate's assertion is sent in the other form once if its signature is refused."""
    if endpoint.client.assertion is None:
        return _post_token(endpoint, params, requested, None)
    return assertion_forms.with_fallback(
        endpoint.url,
        endpoint.client.client_id,
        endpoint.mailbox,
        lambda form: _post_token(endpoint, params, requested, form),
    )


def _post_token(
    endpoint: Endpoint, params: Mapping[str, str], requested: tuple[str, ...], form: str | None
) -> TokenResponse:
    data = {**endpoint.client.params(endpoint.url, form), **params}
    started = time.time()
    try:
        answer = endpoint.http.post(endpoint.url, data=data, headers={"Accept": "application/json"})
    except httpx2.HTTPError as exc:
        raise translate(
            exc, f"{endpoint.mailbox}: token request to {endpoint.url}", proxy_of(endpoint.http)
        ) from exc
    metrics.TOKENS.labels(
        endpoint.mailbox,
        str(endpoint.context.grant),
        "ok" if answer.status_code == 200 else "refused",
    ).inc()
    if answer.status_code == 200:
        try:
            body = answer.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise NetworkError(
                f"{endpoint.mailbox}: the token endpoint {endpoint.url} did not answer JSON"
            )
        return _parse_success(endpoint, body, requested, started)
    error = diagnose.parse_token_error(answer.status_code, answer.content, answer.headers)
    if error.error in ("authorization_pending", "slow_down"):
        raise AuthorizationPending(slow_down=error.error == "slow_down")
    context = endpoint.context
    if (
        context.grant is Grant.PASSWORD
        and context.username
        and context.cloud is not None
        and error.error == "invalid_grant"
    ):
        context = replace(context, federated=_user_realm_federated(endpoint, context.username))
    found = diagnose.diagnose(error, context)
    log.warning(
        "oauth.refused",
        mailbox=endpoint.mailbox,
        grant=str(context.grant),
        phase=context.phase,
        code=found.code,
        state=found.state,
    )
    raise diagnose.to_exception(found, endpoint.mailbox)


def client_credentials(endpoint: Endpoint, scopes: tuple[str, ...]) -> TokenResponse:
    return post_token(
        endpoint, {"grant_type": "client_credentials", "scope": " ".join(scopes)}, scopes
    )


def password(
    endpoint: Endpoint, username: str, secret: str, scopes: tuple[str, ...]
) -> TokenResponse:
    params = {
        "grant_type": "password",
        "username": username,
        "password": secret,
        "scope": " ".join(scopes),
    }
    return post_token(endpoint, params, scopes)


def refresh(endpoint: Endpoint, refresh_token: str, scopes: tuple[str, ...]) -> TokenResponse:
    params = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "scope": " ".join(scopes),
    }
    return post_token(endpoint, params, scopes)


@dataclass(frozen=True)
class CodeRequest:
    """One authorization-code attempt: what goes to the login page and what must come back."""

    url: str
    state: str
    code_verifier: str = field(repr=False)
    redirect_uri: str
    scopes: tuple[str, ...]


def code_request(
    authorization_endpoint: str,
    client_id: str,
    redirect_uri: str,
    scopes: tuple[str, ...],
    login_hint: str | None,
    extra_params: Mapping[str, str] | None = None,
) -> CodeRequest:
    """The login page URL: PKCE S256 always, a fresh ``state``, ``login_hint`` = username."""
    state = generate_token(32)
    verifier = generate_token(64)
    extra: dict[str, str] = {
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
        "response_mode": "query",
    }
    if login_hint:
        extra["login_hint"] = login_hint
    extra.update(extra_params or {})
    url = prepare_grant_uri(
        authorization_endpoint,
        client_id,
        "code",
        redirect_uri=redirect_uri,
        scope=" ".join(scopes),
        state=state,
        **extra,
    )
    return CodeRequest(url, state, verifier, redirect_uri, scopes)


def redeem_code(endpoint: Endpoint, request: CodeRequest, code: str) -> TokenResponse:
    params = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": request.redirect_uri,
        "code_verifier": request.code_verifier,
        "scope": " ".join(request.scopes),
    }
    return post_token(endpoint, params, request.scopes)


__all__ = [
    "AuthorizationPending",
    "ClientCredentials",
    "CodeRequest",
    "Endpoint",
    "TokenResponse",
    "client_credentials",
    "code_request",
    "password",
    "redeem_code",
    "refresh",
    "resource_of",
]
