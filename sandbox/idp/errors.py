"""Errors in Microsoft Entra's JSON shape (oauth-facts §1.9)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from authlib.oauth2 import OAuth2Error


class EntraError(OAuth2Error):  # type: ignore[misc]
    """An OAuth error carrying an AADSTS code, rendered as Entra renders it."""

    def __init__(self, error: str, code: int, text: str, status: int = 400) -> None:
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
    "access_denied": 90120,
    "slow_down": 70016,
}


def as_entra(error: OAuth2Error) -> EntraError:
    if isinstance(error, EntraError):
        return error
    name = str(error.error)
    text = str(error.description or name)
    if name == "access_denied":
        name = "authorization_declined"
    return EntraError(
        name, AUTHLIB_CODES.get(str(error.error), 900144), text, int(error.status_code or 400)
    )
