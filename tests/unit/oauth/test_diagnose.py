"""Every refusal a mail connector meets, from the provider's real response shape to the
authorization state and the fix the administrator reads."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailintake.config.matrix import Grant
from mailintake.errors import (
    AuthError,
    AuthorizationRequired,
    NetworkError,
    PasswordUpdateRequired,
    RateLimited,
)
from mailintake.oauth.diagnose import Context, diagnose, parse_token_error, to_exception

CC, AC, ROPC, DEV = (
    Grant.CLIENT_CREDENTIALS,
    Grant.AUTHORIZATION_CODE,
    Grant.PASSWORD,
    Grant.DEVICE_CODE,
)


def entra(error: str, code: int, text: str) -> bytes:
    """Entra's error JSON (oauth-facts §1.9)."""
    return json.dumps(
        {
            "error": error,
            "error_description": f"AADSTS{code}: {text}\r\nTrace ID: 0a1b2c3d-0000-4000-8000-"
            "000000000001\r\nCorrelation ID: 9f8e7d6c-0000-4000-8000-000000000002\r\n"
            "Timestamp: 2026-11-24 08:00:00Z",
            "error_codes": [code],
            "timestamp": "2026-11-24 08:00:00Z",
            "trace_id": "0a1b2c3d-0000-4000-8000-000000000001",
            "correlation_id": "9f8e7d6c-0000-4000-8000-000000000002",
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        }
    ).encode()


CASES: list[tuple[str, bytes, Grant, str, str, str, str]] = [
    # (id, body, grant, phase, state, code, a word of the fix)
    (
        "wrong password ROPC",
        entra(
            "invalid_grant",
            50126,
            "Error validating credentials due to invalid username or password.",
        ),
        ROPC,
        "token",
        "password_update_required",
        "AADSTS50126",
        "--ask oauth.password",
    ),
    (
        "MFA ROPC",
        entra(
            "invalid_grant",
            50076,
            "Due to a configuration change made by your "
            "administrator, or because you moved to a new location, you must use multi-factor "
            "authentication to access '00000003-0000-0000-c000-000000000000'.",
        ),
        ROPC,
        "token",
        "error",
        "AADSTS50076",
        "authorization_code",
    ),
    (
        "MFA enrollment ROPC",
        entra(
            "interaction_required",
            50079,
            "The user is required to use multi-factor authentication.",
        ),
        ROPC,
        "token",
        "error",
        "AADSTS50079",
        "multi-factor",
    ),
    (
        "revoked after password change",
        entra(
            "invalid_grant",
            50173,
            "The provided grant has expired due to it being revoked, a fresh auth token is needed.",
        ),
        AC,
        "refresh",
        "reauthorization_required",
        "AADSTS50173",
        "mailintake authorize box",
    ),
    (
        "inactive refresh token",
        entra("invalid_grant", 700082, "The refresh token has expired due to inactivity."),
        DEV,
        "refresh",
        "reauthorization_required",
        "AADSTS700082",
        "mailintake authorize box",
    ),
    (
        "conditional access",
        entra("invalid_grant", 53003, "Access has been blocked by Conditional Access policies."),
        AC,
        "refresh",
        "error",
        "AADSTS53003",
        "9f8e7d6c-0000-4000-8000-000000000002",
    ),
    (
        "no consent",
        entra(
            "invalid_grant",
            65001,
            "The user or administrator has not consented to use the application.",
        ),
        ROPC,
        "token",
        "error",
        "AADSTS65001",
        "adminconsent",
    ),
    (
        "mixed resources",
        entra(
            "invalid_scope",
            70011,
            "The provided value for the input parameter 'scope' is not valid.",
        ),
        AC,
        "authorize",
        "error",
        "AADSTS70011",
        "oauth.scopes",
    ),
    (
        "unknown app",
        entra(
            "unauthorized_client",
            700016,
            "Application with identifier 'x' was not found in the directory 'contoso'.",
        ),
        CC,
        "token",
        "error",
        "AADSTS700016",
        "oauth.client_id",
    ),
    (
        "secret id not value",
        entra(
            "invalid_client",
            7000215,
            "Invalid client secret provided. "
            "Ensure the secret being sent in the request is the client secret value, "
            "not the client secret ID.",
        ),
        CC,
        "token",
        "error",
        "AADSTS7000215",
        "Secret ID",
    ),
    (
        "expired secret",
        entra(
            "invalid_client", 7000222, "The provided client secret keys for app 'x' are expired."
        ),
        CC,
        "token",
        "error",
        "AADSTS7000222",
        "new client secret",
    ),
    (
        "confidential without secret, ROPC",
        entra(
            "invalid_client",
            7000218,
            "The request body "
            "must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ),
        ROPC,
        "token",
        "error",
        "AADSTS7000218",
        "Allow public client flows",
    ),
    (
        "confidential without secret, web redirect",
        entra(
            "invalid_client",
            7000218,
            "The "
            "request body must contain the following parameter: 'client_assertion' or "
            "'client_secret'.",
        ),
        AC,
        "authorize",
        "error",
        "AADSTS7000218",
        "Web platform",
    ),
    (
        "public client with secret",
        entra(
            "invalid_client",
            700025,
            "Client is public so neither "
            "'client_assertion' nor 'client_secret' should be presented.",
        ),
        AC,
        "authorize",
        "error",
        "AADSTS700025",
        "remove oauth.client_secret",
    ),
    (
        "unknown tenant",
        entra("invalid_request", 90002, "Tenant 'nope' not found."),
        CC,
        "token",
        "error",
        "AADSTS90002",
        "oauth.tenant_id",
    ),
    (
        "ROPC on common",
        entra(
            "invalid_request",
            9001023,
            "The grant type isn't supported over the /common or /consumers endpoints.",
        ),
        ROPC,
        "token",
        "error",
        "AADSTS9001023",
        "oauth.tenant_id",
    ),
    (
        "redirect mismatch",
        entra(
            "invalid_request",
            50011,
            "The redirect URI 'x' specified in "
            "the request does not match the redirect URIs configured for the application.",
        ),
        AC,
        "authorize",
        "error",
        "AADSTS50011",
        "oauth.redirect_uri",
    ),
    (
        "assertion clock",
        entra("invalid_client", 700024, "Client assertion is not within its valid time range."),
        CC,
        "token",
        "error",
        "AADSTS700024",
        "clock",
    ),
    (
        "no such user",
        entra("invalid_grant", 50034, "The user account does not exist in the directory."),
        ROPC,
        "token",
        "error",
        "AADSTS50034",
        "username",
    ),
    (
        "locked",
        entra("invalid_grant", 50053, "The account is locked."),
        ROPC,
        "token",
        "error",
        "AADSTS50053",
        "locked",
    ),
    (
        "expired password",
        entra("invalid_grant", 50055, "The password is expired."),
        ROPC,
        "token",
        "password_update_required",
        "AADSTS50055",
        "--ask oauth.password",
    ),
    (
        "google revoked",
        json.dumps(
            {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
        ).encode(),
        AC,
        "refresh",
        "reauthorization_required",
        "invalid_grant",
        "Testing",
    ),
    (
        "google unknown client",
        json.dumps(
            {"error": "invalid_client", "error_description": "The OAuth client was not found."}
        ).encode(),
        AC,
        "authorize",
        "error",
        "invalid_client",
        "Google Cloud console",
    ),
    (
        "google policy",
        json.dumps({"error": "admin_policy_enforced"}).encode(),
        AC,
        "authorize",
        "error",
        "admin_policy_enforced",
        "Admin console",
    ),
]


@pytest.mark.parametrize(
    ("body", "grant", "phase", "state", "code", "fix"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_refusal_to_state_and_fix(
    body: bytes, grant: Grant, phase: str, state: str, code: str, fix: str
) -> None:
    server = "GOOGLE" if b"AADSTS" not in body else "MICROSOFT"
    error = parse_token_error(400, body, {})
    found = diagnose(
        error,
        Context(
            grant=grant,
            phase=phase,
            server=server,
            username="anna@contoso.com",
            client_id="app-1",
            tenant="contoso.onmicrosoft.com",
        ),
    )
    assert (found.state, found.code) == (state, code)
    message = to_exception(found, "box")
    assert fix in str(message)
    assert str(message).startswith("box: ")
    assert "Trace ID" not in str(message)


def test_the_seed_password_change_rule_for_both_grants() -> None:
    revoked = parse_token_error(400, entra("invalid_grant", 50173, "revoked"), {})
    wrong = parse_token_error(400, entra("invalid_grant", 50126, "bad password"), {})
    code_grant = to_exception(diagnose(revoked, Context(grant=AC, phase="refresh")), "box")
    password_grant = to_exception(diagnose(wrong, Context(grant=ROPC, phase="token")), "box")
    assert isinstance(code_grant, AuthorizationRequired)
    assert code_grant.state == "reauthorization_required"
    assert isinstance(password_grant, PasswordUpdateRequired)
    assert password_grant.state == "password_update_required"


def test_federated_account_with_ropc_says_it_cannot_work() -> None:
    wrong = parse_token_error(400, entra("invalid_grant", 50126, "bad password"), {})
    found = diagnose(
        wrong, Context(grant=ROPC, phase="token", username="fed@contoso.com", federated=True)
    )
    assert found.state == "error"
    assert "federated" in found.message
    assert "authorization_code" in found.message


def test_error_field_first_when_the_number_is_unknown_or_the_text_changed() -> None:
    unknown = parse_token_error(401, entra("invalid_client", 7999999, "Something new."), {})
    found = diagnose(unknown, Context(grant=CC, phase="token"))
    assert found.state == "error"
    assert "oauth.client_secret" in found.message
    assert "Something new." in found.message
    reworded = parse_token_error(400, entra("invalid_grant", 50173, "Totally new wording"), {})
    assert diagnose(reworded, Context(grant=AC, phase="refresh")).state == (
        "reauthorization_required"
    )
    bare: dict[str, Any] = {"error": "invalid_grant"}
    generic = parse_token_error(400, json.dumps(bare).encode(), {})
    assert diagnose(generic, Context(grant=DEV, phase="refresh")).state == (
        "reauthorization_required"
    )


def test_a_proxy_page_and_throttling() -> None:
    page = parse_token_error(502, b"<html><body>Bad Gateway</body></html>", {})
    assert page.error == "http_502"
    assert isinstance(
        to_exception(diagnose(page, Context(grant=CC, phase="token")), "box"), NetworkError
    )
    throttled = parse_token_error(429, b"", {"Retry-After": "30"})
    error = to_exception(diagnose(throttled, Context(grant=CC, phase="token")), "box")
    assert isinstance(error, RateLimited)
    assert error.retry_after == 30.0
    not_found = parse_token_error(404, b"Not Found", {})
    error404 = to_exception(diagnose(not_found, Context(grant=CC, phase="token")), "box")
    assert isinstance(error404, AuthError)
    assert "oauth.token_endpoint" in str(error404)
