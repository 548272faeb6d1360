"""Errors in Microsoft Entra's JSON shape (oauth-facts §1.9) and the AADSTS texts the sandbox
uses (oauth-facts §1.10; texts follow Microsoft's error-code reference).

HTTP status: 400 for every error, except ``invalid_client`` (a client that failed to
authenticate), which Entra answers with 401 — the sandbox does the same, consistently.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from authlib.oauth2 import OAuth2Error


class EntraError(OAuth2Error):  # type: ignore[misc]
    """An OAuth error carrying an AADSTS code, rendered as Entra renders it."""

    def __init__(self, error: str, code: int, text: str, status: int | None = None) -> None:
        if status is None:
            status = 401 if error == "invalid_client" else 400
        super().__init__(description=text, status_code=status, error=error)
        self.error = error
        self.code = code
        self.text = text

    def body(self) -> dict[str, Any]:
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return {
            "error": self.error,
            "error_description": f"AADSTS{self.code}: {self.text}\r\nTrace ID: {trace}\r\n"
            f"Correlation ID: {correlation}\r\nTimestamp: {now}",
            "error_codes": [self.code],
            "timestamp": now,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }

    def __call__(self, uri: str | None = None) -> tuple[int, dict[str, Any], list[Any]]:
        headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
        return int(self.status_code), self.body(), headers


# Authlib's own errors, as Entra would number them.
AUTHLIB_CODES = {
    "invalid_grant": 9002313,
    "invalid_request": 900144,
    "invalid_scope": 70011,
    "unsupported_grant_type": 70003,
    "unauthorized_client": 700016,
    "invalid_client": 7000215,
    "authorization_pending": 70016,
    "expired_token": 70019,
    "access_denied": 70020,
    "slow_down": 70016,
}


def as_entra(error: OAuth2Error) -> EntraError:
    """Any Authlib error in Entra's shape (Entra's device flow says ``authorization_declined``
    where RFC 8628 says ``access_denied``, oauth-facts §1.6)."""
    if isinstance(error, EntraError):
        return error
    name = str(error.error)
    text = str(error.description or name)
    if name == "access_denied":
        name = "authorization_declined"
    return EntraError(name, AUTHLIB_CODES.get(str(error.error), 900144), text)


def unknown_client(client_id: str, domain: str) -> EntraError:
    return EntraError(
        "unauthorized_client",
        700016,
        f"Application with identifier '{client_id}' was not found in the directory "
        f"'{domain}'. This can happen if the application has not been installed "
        "by the administrator of the tenant or consented to by any user in the tenant. "
        "You may have sent your authentication request to the wrong tenant.",
    )


def unknown_tenant(tenant: str) -> EntraError:
    return EntraError(
        "invalid_request",
        90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and "
        "are signing into the correct cloud. Check with your subscription administrator, "
        "this may happen if there are no active subscriptions for the tenant.",
    )


def multiple_resources() -> EntraError:
    return EntraError(
        "invalid_scope",
        70011,
        "The provided request must include a 'scope' input parameter. The provided value for "
        "the input parameter 'scope' is not valid. The scope requested is not valid: scopes "
        "for more than one resource were requested (AADSTS700022 "
        "InvalidMultipleResourcesScope).",
    )
