"""Filling a server's endpoints from its issuer: OpenID Connect discovery, then RFC 8414.

OIDC appends ``/.well-known/openid-configuration`` to the issuer; RFC 8414 inserts
``/.well-known/oauth-authorization-server`` between the host and the issuer's path
(oauth-facts §5.5).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2

from mailintake.config.checks import check_endpoint
from mailintake.errors import ConfigError, NetworkError
from mailintake.net.http import translate

ENDPOINT_KEYS = ("authorization_endpoint", "token_endpoint", "device_authorization_endpoint")


def metadata_urls(issuer: str) -> list[str]:
    base = issuer.rstrip("/")
    parts = urlsplit(base)
    rfc8414 = urlunsplit(
        (parts.scheme, parts.netloc, "/.well-known/oauth-authorization-server" + parts.path, "", "")
    )
    return [base + "/.well-known/openid-configuration", rfc8414]


def _issuer_matches(expected: str, found: Any) -> bool:
    if not isinstance(found, str):
        return False
    # Microsoft's multi-tenant documents name a placeholder issuer (oauth-facts §1.1).
    return found.rstrip("/") == expected.rstrip("/") or "{tenantid}" in found


def discover(issuer: str, client: httpx2.Client) -> dict[str, str]:
    """The issuer and endpoints from the issuer's metadata; raises with the reason."""
    if msg := check_endpoint(issuer):
        raise ConfigError([f"issuer: {msg}"])
    tried: list[str] = []
    for url in metadata_urls(issuer):
        try:
            response = client.get(url, headers={"Accept": "application/json"})
        except httpx2.HTTPError as exc:
            raise translate(exc, f"discovery at {url}") from exc
        if response.status_code != 200:
            tried.append(f"{url} answered HTTP {response.status_code}")
            continue
        try:
            data = response.json()
        except ValueError:
            tried.append(f"{url} did not answer JSON")
            continue
        if not isinstance(data, dict) or not isinstance(data.get("token_endpoint"), str):
            tried.append(f"{url} has no token_endpoint")
            continue
        if not _issuer_matches(issuer, data.get("issuer")):
            raise ConfigError(
                [
                    f"issuer: the metadata at {url} names issuer {data.get('issuer')!r}, "
                    f"not {issuer!r} (RFC 8414 §3.3: refusing it)"
                ]
            )
        found = {"issuer": issuer}
        for key in ENDPOINT_KEYS:
            value = data.get(key)
            if isinstance(value, str) and not check_endpoint(value):
                found[key] = value
        return found
    raise NetworkError("no authorization server metadata found: " + "; ".join(tried))
