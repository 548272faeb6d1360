"""Issuing tokens as Entra does (oauth-facts §1.2, §1.3, §1.7, §1.8): one resource per access
token (bare scope names mean Microsoft Graph), a refresh token only with ``offline_access``
and a fresh one on every refresh (rotation), an ID token only with ``openid``. Access tokens
are opaque random strings, as Microsoft's for Graph and Exchange are to a client; the
provider remembers what each one stands for, for introspection and the Graph emulator."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sandbox.idp.clients import SandboxClient, b64url
from sandbox.idp.errors import EntraError, multiple_resources
from sandbox.idp.model import GRAPH, OIDC_SCOPES, AccessRecord, RefreshRecord, User, resource_of

if TYPE_CHECKING:
    from sandbox.idp.server import IdentityProvider

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SIGNING_KEY_ID = "sandbox"


def _resources(scopes: list[str]) -> list[str]:
    found: list[str] = []
    for scope in scopes:
        resource = resource_of(scope)
        if resource is not None and resource not in found:
            found.append(resource)
    return found


def choose_scopes(grant_type: str, requested: str | None, granted: str | None) -> list[str]:
    """The scopes of this token. Scopes sent in the token request must name one resource
    (AADSTS70011); without them the grant's scopes are used, and when those span several
    resources (allowed at /authorize) the token is for the first one's resource (§1.7)."""
    if requested and grant_type != DEVICE_GRANT:
        scopes = requested.split()
        resources = _resources(scopes)
        if len(resources) > 1:
            raise multiple_resources()
        default = [s for s in scopes if s.endswith("/.default")]
        if default and len([s for s in scopes if s not in OIDC_SCOPES]) > 1:
            raise EntraError(  # .default cannot be mixed with named scopes (§1.8)
                "invalid_scope",
                70011,
                f"The provided value for the input parameter 'scope' is not valid. The scope "
                f"'{requested}' is not valid. static scope limit exceeded.",
            )
        return scopes
    scopes = (granted or "").split()
    resources = _resources(scopes)
    if len(resources) > 1:
        return [s for s in scopes if resource_of(s) in (None, resources[0])]
    return scopes


def issue_token(
    provider: IdentityProvider,
    grant_type: str,
    client: SandboxClient,
    user: User | None,
    scope: str | None,
    *,
    requested: str | None,
    public: bool,
    include_refresh_token: bool,
    refreshed: RefreshRecord | None = None,
) -> dict[str, Any]:
    """The token response for one grant (Authlib calls this as its token generator)."""
    scopes = choose_scopes(grant_type, requested, scope)
    roles: list[str] = []
    if grant_type == "client_credentials":
        resources = _resources(scopes)
        if len(resources) > 1:
            raise multiple_resources()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            raise EntraError(
                "invalid_scope",
                1002012,
                f"The provided value for scope {' '.join(scopes)} is not valid. Client "
                "credential flows must have a scope value with /.default suffixed to the "
                "resource identifier (application ID URI).",
            )
        resource = resources[0]
        granted_roles = client.app.application_permissions
        roles = list(granted_roles.get(resource, granted_roles.get(resource + "/", [])))
    resource = next(iter(_resources(scopes)), GRAPH)
    now = int(time.time())
    lifetime = provider.access_token_lifetime
    if user is not None and user.token_lifetime is not None:
        lifetime = user.token_lifetime
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
        now + lifetime,
    )
    with provider.lock:
        provider.access_tokens[token] = record
    answer: dict[str, Any] = {
        "token_type": "Bearer",
        "scope": " ".join(resource_scopes),
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": token,
    }
    wants_refresh = "offline_access" in scopes or refreshed is not None
    if user is not None and include_refresh_token and wants_refresh:
        # The new refresh token stands for everything the old one did (rotation, §1.7).
        kept = refreshed.scope.split() if refreshed else (scope or "").split()
        rt_scope = " ".join(dict.fromkeys([*kept, *scopes]))
        refresh = secrets.token_urlsafe(64)
        with provider.lock:
            provider.refresh_tokens[refresh] = RefreshRecord(
                refresh, client.client_id, user.username, rt_scope, public
            )
        answer["refresh_token"] = refresh
    if user is not None and "openid" in scopes:
        answer["id_token"] = id_token(provider, client.client_id, user, now)
    return answer


def id_token(provider: IdentityProvider, client_id: str, user: User, now: int) -> str:
    """An ID token signed RS256 with the provider's key (published at the JWKS URI)."""
    claims = {
        "ver": "2.0",
        "iss": f"{provider.base_url}/{provider.tenant_id}/v2.0",
        "aud": client_id,
        "sub": hashlib.sha256(f"{client_id}:{user.username}".encode()).hexdigest()[:43],
        "oid": object_id(user.username),
        "tid": provider.tenant_id,
        "preferred_username": user.username,
        "name": user.display_name or user.username.split("@")[0],
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
    }
    header = {"alg": "RS256", "typ": "JWT", "kid": SIGNING_KEY_ID}
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = provider.signing_key.sign(
        signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    return f"{signing_input}.{b64url(signature)}"


def object_id(username: str) -> str:
    digest = hashlib.sha256(username.lower().encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def jwks(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    numbers = key.public_key().public_numbers()

    def encode(value: int) -> str:
        return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    jwk = {"kty": "RSA", "use": "sig", "kid": SIGNING_KEY_ID, "alg": "RS256"}
    return {"keys": [{**jwk, "n": encode(numbers.n), "e": encode(numbers.e)}]}


# Resources known under several identifiers: Exchange Online answers to both host names.
EXCHANGE = frozenset({"https://outlook.office.com", "https://outlook.office365.com"})
MAIL_SCOPE_NAMES = frozenset({"IMAP.AccessAsUser.All", "POP.AccessAsUser.All", ".default"})
MAIL_ROLES = frozenset({"IMAP.AccessAsApp", "POP.AccessAsApp"})


def _same_resource(one: str, other: str) -> bool:
    one, other = one.rstrip("/").lower(), other.rstrip("/").lower()
    return one == other or (one in EXCHANGE and other in EXCHANGE)


def for_resource(record: AccessRecord, resource: str) -> bool:
    """Whether the token is meant for ``resource``: its audience, and for Exchange a mail
    scope (IMAP/POP delegated scopes or ``.default``) or, app-only, a mail role."""
    if not _same_resource(record.resource, resource):
        return False
    if resource.rstrip("/").lower() not in EXCHANGE:
        return True
    names = {scope.rsplit("/", 1)[-1] for scope in record.scope.split()}
    if record.username is None:  # app-only: the roles decide
        return bool(MAIL_ROLES & set(record.roles))
    return bool(names & MAIL_SCOPE_NAMES)


def introspection(record: AccessRecord | None, resource: str | None = None) -> dict[str, Any]:
    """RFC 7662's answer. Dovecot's oauth2 passdb compares ``username`` with the login name
    (``username_attribute = username``) and needs ``active`` true. A resource server that
    names itself (``resource``) gets active=false for a token meant for another resource
    (RFC 7662 §2.2: the token is not one it may use)."""
    if record is None or record.expires_at <= time.time():
        return {"active": False}
    if resource and not for_resource(record, resource):
        return {"active": False}
    return {
        "active": True,
        "token_type": "Bearer",
        "client_id": record.client_id,
        "username": record.username,
        # The owner: the user's UPN, or the app's client ID for app-only tokens (the Dovecot
        # delegate check keys on it: sandbox/dovecot/launch.py).
        "sub": record.username or record.client_id,
        "oid": object_id(record.username) if record.username else None,
        "aud": record.resource,
        "scope": record.scope,
        "roles": record.roles,
        "iat": record.issued_at,
        "exp": record.expires_at,
    }
