"""Every refusal a mail connector meets, from the provider's real response shape to the
authorization state and the fix the administrator reads."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import Any

import pytest

from mailintake.config.matrix import Grant
from mailintake.errors import (
    AuthError,
    AuthorizationRequired,
    MailintakeError,
    NetworkError,
    PasswordUpdateRequired,
    RateLimited,
)
from mailintake.oauth.diagnose import (
    CODES,
    CODES_BY_GRANT,
    ERRORS,
    GOOGLE,
    Context,
    Diagnosis,
    ProviderError,
    UnconfirmedRefusal,
    diagnose,
    parse_redirect_error,
    parse_token_error,
    to_exception,
)

CC, AC, ROPC, DEV = (
    Grant.CLIENT_CREDENTIALS,
    Grant.AUTHORIZATION_CODE,
    Grant.PASSWORD,
    Grant.DEVICE_CODE,
)
TRACE = "0a1b2c3d-0000-4000-8000-000000000001"
CORRELATION = "9f8e7d6c-0000-4000-8000-000000000002"


def entra_description(code: int, text: str) -> str:
    return (
        f"AADSTS{code}: {text}\r\nTrace ID: {TRACE}\r\nCorrelation ID: {CORRELATION}\r\n"
        "Timestamp: 2026-11-24 08:00:00Z"
    )


def entra(error: str, code: int, text: str) -> bytes:
    """Entra's error JSON, exactly as oauth-facts §1.9 shows it."""
    return json.dumps(
        {
            "error": error,
            "error_description": entra_description(code, text),
            "error_codes": [code],
            "timestamp": "2026-11-24 08:00:00Z",
            "trace_id": TRACE,
            "correlation_id": CORRELATION,
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        }
    ).encode()


def google(error: str, description: str | None = None, **extra: str) -> bytes:
    body: dict[str, str] = {"error": error}
    if description is not None:
        body["error_description"] = description
    return json.dumps({**body, **extra}).encode()


@dataclass(frozen=True)
class Case:
    id: str
    body: bytes
    grant: Grant
    phase: str
    state: str
    code: str
    words: tuple[str, ...]  # the fix: each must appear in the message
    transient: bool = False
    status: int = 400
    server: str = "MICROSOFT"
    headers: dict[str, str] = field(default_factory=dict)
    ctx: dict[str, Any] = field(default_factory=dict)
    absent: tuple[str, ...] = ()  # words that must not appear


AUTHORIZE = "mailintake authorize invoices"
ASK_PASSWORD = "mailintake mailboxes edit invoices --ask oauth.password"
ASK_SECRET = "mailintake mailboxes edit invoices --ask oauth.client_secret"
R, P, A, E, N = (
    "reauthorization_required",
    "password_update_required",
    "authorized",
    "error",
    "not_authorized",
)

CASES: list[Case] = [
    # --- the seed's password-change rule -------------------------------------------------
    Case(
        "ROPC wrong or changed password",
        entra(
            "invalid_grant",
            50126,
            "Error validating credentials due to invalid username or password.",
        ),
        ROPC,
        "token",
        P,
        "AADSTS50126",
        (ASK_PASSWORD, "anna@contoso.com", "lock"),
    ),
    Case(
        "ROPC federated account",
        entra(
            "invalid_grant",
            50126,
            "Error validating credentials due to invalid username or password.",
        ),
        ROPC,
        "token",
        E,
        "AADSTS50126",
        ("federated", "password grant (ROPC) can never", "authorization_code", "device_code"),
        ctx={"federated": True},
        absent=("--ask oauth.password",),
    ),
    Case(
        "ROPC needs MFA",
        entra(
            "invalid_grant",
            50076,
            "Due to a configuration change made by your administrator, or because you moved to "
            "a new location, you must use multi-factor authentication to access "
            "'00000003-0000-0000-c000-000000000000'.",
        ),
        ROPC,
        "token",
        E,
        "AADSTS50076",
        ("multi-factor", "can never", "oauth.grant_type=authorization_code", "client_credentials"),
    ),
    Case(
        "ROPC MFA registration",
        entra(
            "interaction_required",
            50079,
            "Due to a configuration change made by your administrator, or because you moved to "
            "a new location, you must enroll in multi-factor authentication.",
        ),
        ROPC,
        "token",
        E,
        "AADSTS50079",
        ("multi-factor", "can never", "device_code"),
    ),
    Case(
        "ROPC MFA challenge",
        entra("invalid_grant", 50074, "Strong Authentication is required."),
        ROPC,
        "token",
        E,
        "AADSTS50074",
        ("multi-factor", "can never"),
    ),
    Case(
        "ROPC expired password",
        entra("invalid_grant", 50055, "The password is expired."),
        ROPC,
        "token",
        P,
        "AADSTS50055",
        ("expired", ASK_PASSWORD),
    ),
    Case(
        "code grant: revoked after a password change",
        entra(
            "invalid_grant",
            50173,
            "The provided grant has expired due to it being revoked, a fresh auth token is "
            "needed. The user might have changed or reset their password. The grant was issued "
            "on '2026-09-01T10:00:00Z' and the TokensValidFrom date (before which tokens are "
            "not valid) for this user is '2026-11-20T09:00:00Z'.",
        ),
        AC,
        "refresh",
        R,
        "AADSTS50173",
        ("password", "changed", AUTHORIZE),
    ),
    Case(
        "device code grant: revoked after a password change",
        entra(
            "invalid_grant",
            50173,
            "The provided grant has expired due to it being revoked, a fresh auth token is needed.",
        ),
        DEV,
        "refresh",
        R,
        "AADSTS50173",
        (AUTHORIZE,),
    ),
    Case(
        "refresh token unused 90 days",
        entra(
            "invalid_grant",
            700082,
            "The refresh token has expired due to inactivity. The token was issued on "
            "2026-06-01T10:00:00Z and was inactive for 90.00:00:00.",
        ),
        AC,
        "refresh",
        R,
        "AADSTS700082",
        ("90 days", AUTHORIZE),
    ),
    Case(
        "refresh token expired (older code)",
        entra(
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity.",
        ),
        DEV,
        "refresh",
        R,
        "AADSTS70008",
        ("inactivity", AUTHORIZE),
    ),
    Case(
        "sign-in frequency",
        entra(
            "invalid_grant",
            70043,
            "The refresh token has expired or is invalid due to sign-in frequency checks by "
            "conditional access.",
        ),
        AC,
        "refresh",
        R,
        "AADSTS70043",
        ("sign-in frequency", AUTHORIZE),
    ),
    Case(
        "MFA now required on refresh: sign in again, not a password-grant message",
        entra(
            "interaction_required",
            50076,
            "Due to a configuration change made by your administrator, or because you moved to "
            "a new location, you must use multi-factor authentication.",
        ),
        AC,
        "refresh",
        R,
        "AADSTS50076",
        ("multi-factor", AUTHORIZE),
        absent=("ROPC",),
    ),
    # --- policies ----------------------------------------------------------------------
    Case(
        "conditional access",
        entra(
            "invalid_grant",
            53003,
            "Access has been blocked by Conditional Access policies. "
            "The access policy does not allow token issuance.",
        ),
        AC,
        "refresh",
        E,
        "AADSTS53003",
        ("Conditional Access", "Sign-in logs", CORRELATION),
    ),
    Case(
        "security defaults",
        entra("invalid_grant", 530035, "Access has been blocked by security defaults."),
        ROPC,
        "token",
        E,
        "AADSTS530035",
        ("Security Defaults", "authorization_code"),
    ),
    *(
        Case(
            f"device requirement {code}",
            entra("invalid_grant", code, text),
            AC,
            "refresh",
            E,
            f"AADSTS{code}",
            ("Conditional Access", words, "exclude this application"),
        )
        for code, text, words in (
            (53000, "Device is not in required device state: compliant.", "compliant"),
            (53001, "Device is not in required device state: domain_joined.", "domain-joined"),
            (53002, "Application used is not an approved application.", "approved"),
        )
    ),
    # --- consent and permissions -------------------------------------------------------
    Case(
        "no consent",
        entra(
            "invalid_grant",
            65001,
            "The user or administrator has not consented to use the application with ID "
            "'app-1' named 'Mail import'. Send an interactive authorization request for this "
            "user and resource.",
        ),
        ROPC,
        "token",
        E,
        "AADSTS65001",
        (
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/adminconsent?client_id=app-1",
            "Grant admin consent",
            AUTHORIZE,
        ),
    ),
    Case(
        "admin consent required",
        entra(
            "invalid_grant",
            90094,
            "Admin consent is required for the permissions requested by this application.",
        ),
        DEV,
        "authorize",
        E,
        "AADSTS90094",
        ("administrator", "adminconsent?client_id=app-1"),
    ),
    Case(
        "admin consent workflow",
        entra(
            "invalid_grant",
            90095,
            "Admin consent is required for the permissions requested "
            "in this request. An admin consent request may be sent to the admin.",
        ),
        AC,
        "authorize",
        E,
        "AADSTS90095",
        ("Admin consent requests", AUTHORIZE),
    ),
    Case(
        "no Exchange subscription",
        entra(
            "invalid_request",
            650052,
            "The app is trying to access a service that your "
            "organization lacks a service principal for.",
        ),
        AC,
        "authorize",
        E,
        "AADSTS650052",
        ("Exchange Online", "oauth.tenant_id"),
    ),
    Case(
        "permission not listed",
        entra("invalid_client", 650056, "Misconfigured application."),
        CC,
        "token",
        E,
        "AADSTS650056",
        ("API permissions", "admin consent"),
    ),
    Case(
        "resource not in required permissions",
        entra(
            "invalid_client",
            650057,
            "Invalid resource. The client has requested access to a "
            "resource which isn't listed in the requested permissions.",
        ),
        AC,
        "authorize",
        E,
        "AADSTS650057",
        ("API permissions", "IMAP.AccessAsUser.All", "oauth.scopes"),
    ),
    # --- scopes, tenant, redirect ------------------------------------------------------
    Case(
        "bad scope",
        entra(
            "invalid_scope",
            70011,
            "The provided request must include a 'scope' input "
            "parameter. The provided value for the input parameter 'scope' is not valid.",
        ),
        AC,
        "authorize",
        E,
        "AADSTS70011",
        ("oauth.scopes", "https://outlook.office.com/IMAP.AccessAsUser.All"),
    ),
    Case(
        "mixed resources",
        entra(
            "invalid_scope",
            700022,
            "The provided value for the input parameter scope is "
            "not valid because it contains more than one resource.",
        ),
        AC,
        "refresh",
        E,
        "AADSTS700022",
        ("one resource", "oauth.scopes"),
    ),
    Case(
        "unknown tenant",
        entra(
            "invalid_request",
            90002,
            "Tenant 'contoso-typo.com' not found. Check to make "
            "sure you have the correct tenant ID.",
        ),
        CC,
        "token",
        E,
        "AADSTS90002",
        ("'contoso-typo.com'", "oauth.tenant_id"),
        ctx={"tenant": "contoso-typo.com"},
    ),
    *(
        Case(
            f"shared endpoint {code}",
            entra(
                "invalid_request",
                code,
                "The grant type isn't supported over the /common or /consumers endpoints.",
            ),
            ROPC,
            "token",
            E,
            f"AADSTS{code}",
            ("/common", "'common'", "--set oauth.tenant_id="),
            ctx={"tenant": "common"},
        )
        for code in (9001023, 90009, 90130, 90124)
    ),
    Case(
        "single-tenant app on /common",
        entra(
            "invalid_request",
            50194,
            "Application 'app-1' is not configured as a multi-tenant application.",
        ),
        AC,
        "authorize",
        E,
        "AADSTS50194",
        ("single-tenant", "oauth.tenant_id"),
        ctx={"tenant": "common"},
    ),
    Case(
        "redirect URI mismatch",
        entra(
            "invalid_request",
            50011,
            "The redirect URI 'http://localhost:8400/' specified in "
            "the request does not match the redirect URIs configured for the application "
            "'app-1'.",
        ),
        AC,
        "authorize",
        E,
        "AADSTS50011",
        ("oauth.redirect_uri", "Authentication"),
    ),
    Case(
        "resource not provisioned",
        entra(
            "invalid_resource",
            500011,
            "The resource principal named "
            "https://outlook.office365.com was not found in the tenant named contoso.",
        ),
        CC,
        "token",
        E,
        "AADSTS500011",
        ("Exchange Online", "oauth.tenant_id"),
    ),
    Case(
        "code for another tenant",
        entra(
            "invalid_grant",
            700005,
            "Provided Authorization Code is intended to use against other tenant, thus rejected.",
        ),
        AC,
        "authorize",
        E,
        "AADSTS700005",
        ("same tenant", "oauth.token_endpoint"),
    ),
    # --- the application's credentials -------------------------------------------------
    Case(
        "app not found",
        entra(
            "unauthorized_client",
            700016,
            "Application with identifier 'app-1' was not found in the directory 'Contoso'.",
        ),
        CC,
        "token",
        E,
        "AADSTS700016",
        ("oauth.client_id", "oauth.tenant_id", "app-1", "contoso.onmicrosoft.com"),
    ),
    Case(
        "secret ID instead of value",
        entra(
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret "
            "being sent in the request is the client secret value, not the client secret ID, "
            "for a secret added to app 'app-1'.",
        ),
        CC,
        "token",
        E,
        "AADSTS7000215",
        ("Value", "Secret ID", "Certificates & secrets", ASK_SECRET),
        status=401,
    ),
    Case(
        "expired secret",
        entra(
            "invalid_client",
            7000222,
            "The provided client secret keys for app 'app-1' are expired.",
        ),
        CC,
        "token",
        E,
        "AADSTS7000222",
        ("new client secret", "Certificates & secrets", ASK_SECRET),
        status=401,
    ),
    *(
        Case(
            f"confidential app without secret, {grant.value}",
            entra(
                "invalid_client",
                7000218,
                "The request body must contain the following "
                "parameter: 'client_assertion' or 'client_secret'.",
            ),
            grant,
            phase,
            E,
            "AADSTS7000218",
            ("Allow public client flows", "Authentication > Advanced settings", ASK_SECRET),
            status=401,
            absent=("Web platform",),
        )
        for grant, phase in ((ROPC, "token"), (DEV, "authorize"), (DEV, "refresh"))
    ),
    Case(
        "web redirect URI without secret",
        entra(
            "invalid_client",
            7000218,
            "The request body must contain the following "
            "parameter: 'client_assertion' or 'client_secret'.",
        ),
        AC,
        "authorize",
        E,
        "AADSTS7000218",
        ("Web platform", ASK_SECRET, "Mobile and desktop applications"),
        status=401,
        absent=("Allow public client flows",),
    ),
    Case(
        "public client sends a secret",
        entra(
            "invalid_client",
            700025,
            "Client is public so neither 'client_assertion' nor "
            "'client_secret' should be presented.",
        ),
        AC,
        "authorize",
        E,
        "AADSTS700025",
        ("public client", "remove oauth.client_secret", "--unset oauth.client_secret"),
        status=401,
    ),
    Case(
        "assertion clock skew",
        entra(
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range. "
            "Current time: 2026-11-24T08:00:00Z, assertion valid from 2026-11-24T08:10:00Z.",
        ),
        CC,
        "token",
        E,
        "AADSTS700024",
        ("clock", "NTP"),
        status=401,
    ),
    Case(
        "assertion signature",
        entra("invalid_client", 700027, "Client assertion failed signature validation."),
        CC,
        "token",
        E,
        "AADSTS700027",
        ("certificate", "Certificates & secrets"),
        status=401,
    ),
    # --- the account -------------------------------------------------------------------
    Case(
        "no such user",
        entra(
            "invalid_grant",
            50034,
            "The user account {EUII Hidden} does not exist in the "
            "contoso.onmicrosoft.com directory.",
        ),
        ROPC,
        "token",
        E,
        "AADSTS50034",
        ("does not exist", "username", "oauth.tenant_id"),
    ),
    Case(
        "account disabled",
        entra("invalid_grant", 50057, "The user account is disabled."),
        ROPC,
        "token",
        E,
        "AADSTS50057",
        ("disabled", "Account enabled"),
    ),
    Case(
        "account locked: wait, and store a changed password",
        entra(
            "invalid_grant",
            50053,
            "Your account is locked because you've tried to sign in "
            "too many times with an incorrect user ID or password.",
        ),
        ROPC,
        "token",
        A,
        "AADSTS50053",
        ("locked", "retry later", ASK_PASSWORD),
        transient=True,
    ),
    # --- codes that cannot be redeemed -------------------------------------------------
    Case(
        "code replayed",
        entra(
            "invalid_grant",
            54005,
            "OAuth2 Authorization code was already redeemed, please "
            "retry with a new valid code or use an existing refresh token.",
        ),
        AC,
        "authorize",
        N,
        "AADSTS54005",
        ("already used", AUTHORIZE),
    ),
    Case(
        "PKCE mismatch",
        entra(
            "invalid_grant",
            501481,
            "The Code_Verifier does not match the code_challenge "
            "supplied in the authorization request.",
        ),
        AC,
        "authorize",
        N,
        "AADSTS501481",
        ("PKCE", AUTHORIZE),
    ),
    # --- throttling --------------------------------------------------------------------
    Case(
        "loop detected",
        entra(
            "invalid_request",
            50196,
            "The server terminated an operation because it encountered a client request loop.",
        ),
        AC,
        "refresh",
        A,
        "AADSTS50196",
        ("retry later",),
        transient=True,
    ),
    Case(
        "tenant throttled, Retry-After",
        entra(
            "temporarily_unavailable",
            90055,
            "The number of requests has exceeded the throttling limit.",
        ),
        CC,
        "token",
        A,
        "AADSTS90055",
        ("throttling", "retry later"),
        transient=True,
        status=429,
        headers={"Retry-After": "120"},
    ),
    # --- device code polling -----------------------------------------------------------
    Case(
        "device sign-in declined (Entra)",
        entra("authorization_declined", 70000, "The user has declined the authorization request."),
        DEV,
        "authorize",
        N,
        "AADSTS70000",
        ("declined", AUTHORIZE),
    ),
    Case(
        "device code expired (Entra)",
        entra("expired_token", 70019, "Verification code expired."),
        DEV,
        "authorize",
        N,
        "AADSTS70019",
        ("expired", AUTHORIZE),
    ),
    Case(
        "device code unknown (Entra)",
        entra("bad_verification_code", 70018, "Invalid verification code entered."),
        DEV,
        "authorize",
        N,
        "AADSTS70018",
        (AUTHORIZE,),
    ),
    Case(
        "device sign-in denied (RFC 8628, Google)",
        google("access_denied", "Forbidden"),
        DEV,
        "authorize",
        N,
        "access_denied",
        ("declined", "Test users", AUTHORIZE),
        server="GOOGLE",
        status=403,
    ),
    Case(
        "device code expired (RFC 8628, Google)",
        google("expired_token", "Expired"),
        DEV,
        "authorize",
        N,
        "expired_token",
        ("expired", AUTHORIZE),
        server="GOOGLE",
        status=428,
    ),
    # --- Google ------------------------------------------------------------------------
    Case(
        "Google: expired or revoked (Testing, password change)",
        google("invalid_grant", "Token has been expired or revoked."),
        AC,
        "refresh",
        R,
        "invalid_grant",
        ("Testing", "7 days", "password", "six months", AUTHORIZE),
        server="GOOGLE",
    ),
    Case(
        "Google: device code grant refresh revoked",
        google("invalid_grant", "Token has been expired or revoked."),
        DEV,
        "refresh",
        R,
        "invalid_grant",
        ("Testing", AUTHORIZE),
        server="GOOGLE",
    ),
    Case(
        "Google: bare invalid_grant on refresh still names the causes",
        google("invalid_grant"),
        AC,
        "refresh",
        R,
        "invalid_grant",
        ("Testing", "7 days", AUTHORIZE),
        server="GOOGLE",
    ),
    Case(
        "Google: Bad Request when redeeming a code",
        google("invalid_grant", "Bad Request"),
        AC,
        "authorize",
        N,
        "invalid_grant",
        ("already used", AUTHORIZE),
        server="GOOGLE",
    ),
    Case(
        "Google: Bad Request on refresh",
        google("invalid_grant", "Bad Request"),
        AC,
        "refresh",
        R,
        "invalid_grant",
        ("another OAuth client", AUTHORIZE),
        server="GOOGLE",
    ),
    Case(
        "Google: Workspace reauthentication policy",
        google(
            "invalid_grant", "reauth related error (invalid_rapt)", error_subtype="invalid_rapt"
        ),
        AC,
        "refresh",
        R,
        "invalid_grant",
        ("session control", AUTHORIZE),
        server="GOOGLE",
    ),
    Case(
        "Google: client not found",
        google("invalid_client", "The OAuth client was not found."),
        AC,
        "authorize",
        E,
        "invalid_client",
        ("oauth.client_id", "APIs & Services > Credentials"),
        server="GOOGLE",
        status=401,
    ),
    Case(
        "Google: wrong client secret",
        google("invalid_client", "Unauthorized"),
        AC,
        "refresh",
        E,
        "invalid_client",
        ("client secret", ASK_SECRET),
        server="GOOGLE",
        status=401,
    ),
    Case(
        "Google: unauthorized client",
        google("unauthorized_client", "Unauthorized"),
        DEV,
        "authorize",
        E,
        "unauthorized_client",
        ("TVs and Limited Input devices",),
        server="GOOGLE",
        status=401,
    ),
    Case(
        "Google: Workspace API controls",
        google("admin_policy_enforced", "Access blocked by the administrator's policy."),
        AC,
        "authorize",
        E,
        "admin_policy_enforced",
        ("Admin console", "API controls", "Trusted"),
        server="GOOGLE",
    ),
    Case(
        "Google: internal consent screen",
        google("org_internal"),
        AC,
        "authorize",
        E,
        "org_internal",
        ("Internal", "External", "OAuth consent screen"),
        server="GOOGLE",
    ),
    Case(
        "Google: scope",
        google("invalid_scope", "Some requested scopes were invalid."),
        AC,
        "authorize",
        E,
        "invalid_scope",
        ("oauth.scopes", "https://mail.google.com/"),
        server="GOOGLE",
    ),
    # --- the error field first ----------------------------------------------------------
    Case(
        "unknown number with invalid_client: still a client-credential fix",
        entra("invalid_client", 7999999, "Something new about the client."),
        CC,
        "token",
        E,
        "AADSTS7999999",
        ("oauth.client_secret", "Something new about the client.", CORRELATION),
        status=401,
    ),
    Case(
        "unknown number with invalid_grant on refresh: authorize again",
        entra("invalid_grant", 9999901, "A brand new reason."),
        AC,
        "refresh",
        R,
        "AADSTS9999901",
        (AUTHORIZE, "A brand new reason."),
    ),
    Case(
        "unknown number with invalid_grant, password grant: store the new password",
        entra("invalid_grant", 9999902, "A brand new credential reason."),
        ROPC,
        "token",
        P,
        "AADSTS9999902",
        (ASK_PASSWORD, "A brand new credential reason."),
    ),
    Case(
        "known number, changed text",
        entra("invalid_grant", 50173, "Completely reworded by Microsoft."),
        AC,
        "refresh",
        R,
        "AADSTS50173",
        ("revoked", AUTHORIZE),
        absent=("Completely reworded",),
    ),
    Case(
        "bare invalid_grant on a device code refresh",
        google("invalid_grant"),
        DEV,
        "refresh",
        R,
        "invalid_grant",
        ("90 days", AUTHORIZE),
    ),
    Case(
        "bare interaction_required, password grant",
        google("interaction_required"),
        ROPC,
        "token",
        E,
        "interaction_required",
        ("can never", "authorization_code"),
    ),
    Case(
        "bare consent_required, client credentials",
        google("consent_required"),
        CC,
        "token",
        E,
        "consent_required",
        ("Grant admin consent", "adminconsent?client_id=app-1"),
    ),
    Case(
        "bare unsupported_grant_type",
        google("unsupported_grant_type"),
        ROPC,
        "token",
        E,
        "unsupported_grant_type",
        ("password", "--set oauth.grant_type="),
        server="KEYCLOAK",
    ),
    Case(
        "bare temporarily_unavailable",
        google("temporarily_unavailable"),
        AC,
        "refresh",
        A,
        "temporarily_unavailable",
        ("retry later",),
        transient=True,
        status=503,
    ),
    Case(
        "a custom server's unknown error keeps its description",
        google("account_suspended", "The account was suspended by policy 7."),
        AC,
        "refresh",
        E,
        "account_suspended",
        ("KEYCLOAK", "suspended by policy 7", "(account_suspended)"),
        server="KEYCLOAK",
    ),
    # --- not OAuth JSON --------------------------------------------------------------------
    Case(
        "a proxy's 502 page",
        b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>"
        b"<script>var session='abc123-not-for-messages';</script><h1>Bad Gateway</h1>"
        b"</body></html>",
        AC,
        "refresh",
        A,
        "http_502",
        ("HTTP 502 Bad Gateway", "HTML page", "retry later"),
        transient=True,
        status=502,
        absent=("abc123", "<script"),
    ),
    Case(
        "an empty 429 with Retry-After",
        b"",
        CC,
        "token",
        A,
        "http_429",
        ("HTTP 429", "retry later"),
        transient=True,
        status=429,
        headers={"retry-after": "30"},
    ),
    Case(
        "a 404: wrong token endpoint",
        b"Not Found",
        CC,
        "token",
        E,
        "http_404",
        ("HTTP 404 Not Found", "oauth.token_endpoint"),
        status=404,
    ),
    Case(
        "a proxy asking for authentication",
        b"<html><head><title>Proxy Authentication Required</title></head></html>",
        ROPC,
        "token",
        E,
        "http_407",
        ("HTTP 407", "proxy"),
        status=407,
    ),
    Case(
        "JSON that is not an OAuth error",
        json.dumps({"error": {"code": "InvalidRequest", "message": "nope"}}).encode(),
        CC,
        "token",
        E,
        "http_400",
        ("HTTP 400 Bad Request", "JSON that is not an OAuth error", "oauth.token_endpoint"),
    ),
]


def context(case: Case) -> Context:
    values: dict[str, Any] = {
        "grant": case.grant,
        "phase": case.phase,
        "server": case.server,
        "username": "anna@contoso.com",
        "client_id": "app-1",
        "tenant": "contoso.onmicrosoft.com",
    }
    return Context(**{**values, **case.ctx})


EXCEPTION_FOR_STATE: dict[str, type[MailintakeError]] = {
    R: AuthorizationRequired,
    P: PasswordUpdateRequired,
    E: AuthError,
    N: AuthError,
}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_refusal_to_state_and_fix(case: Case) -> None:
    error = parse_token_error(case.status, case.body, case.headers)
    found = diagnose(error, context(case))
    assert (found.state, found.code, found.transient) == (case.state, case.code, case.transient)
    raised = to_exception(found, "invoices")
    text = str(raised)
    assert text.startswith("invoices: ")
    for word in case.words:
        assert word in text, f"{word!r} missing from {text!r}"
    for word in (*case.absent, "<mailbox>", "{", "Trace ID", "Timestamp", TRACE):
        assert word not in text, f"{word!r} in {text!r}"
    assert found.code in text
    if case.transient:
        assert isinstance(raised, NetworkError | RateLimited)
    else:
        expected = EXCEPTION_FOR_STATE[case.state]
        # Not final: kept and retried first; a person is asked only if it repeats.
        if case.state == "reauthorization_required" and not found.final:
            expected = UnconfirmedRefusal
        assert type(raised) is expected
        assert isinstance(raised, AuthError)
        assert (raised.state, raised.code) == (case.state, case.code)


def test_the_seed_password_change_rule_for_both_grants() -> None:
    revoked = parse_token_error(
        400, entra("invalid_grant", 50173, "The provided grant has expired."), {}
    )
    wrong = parse_token_error(400, entra("invalid_grant", 50126, "Invalid password."), {})
    for grant in (AC, DEV):
        code_grant = to_exception(diagnose(revoked, Context(grant=grant, phase="refresh")), "box")
        assert isinstance(code_grant, AuthorizationRequired)
        assert code_grant.state == "reauthorization_required"
        assert "mailintake authorize box" in str(code_grant)
    password_grant = to_exception(diagnose(wrong, Context(grant=ROPC, phase="token")), "box")
    assert isinstance(password_grant, PasswordUpdateRequired)
    assert password_grant.state == "password_update_required"
    assert "mailintake mailboxes edit box --ask oauth.password" in str(password_grant)


@pytest.mark.parametrize(
    ("error", "code", "final"),
    [
        ("invalid_grant", 50173, True),  # revoked: password changed or reset
        ("invalid_grant", 50132, True),  # session ended by a password change
        ("invalid_grant", 50133, True),
        ("invalid_grant", 700082, True),  # expired for inactivity
        ("invalid_grant", 70008, True),
        ("invalid_grant", 70043, True),  # sign-in frequency
        ("invalid_grant", 700084, True),  # SPA refresh token after 24 hours
        ("invalid_grant", 50076, True),  # multi-factor authentication now required
        ("invalid_grant", 50078, True),
        ("interaction_required", 50079, True),
        ("invalid_grant", 65001, True),  # consent withdrawn
        ("invalid_grant", 50055, True),  # password expired
        ("interaction_required", 12345, True),  # the error field itself says sign in
        ("consent_required", 12345, True),
        ("invalid_grant", 70000, False),  # reported to pass on the next try
        ("invalid_grant", 9002313, False),
        ("invalid_grant", 12345, False),  # a number mailintake does not know
    ],
)
def test_which_refresh_refusals_are_final(error: str, code: int, final: bool) -> None:
    found = diagnose(
        parse_token_error(400, entra(error, code, "Refused."), {}),
        Context(grant=AC, phase="refresh", username="anna@contoso.com"),
    )
    assert found.final is final
    raised = to_exception(found, "box")
    if found.state == "reauthorization_required":
        assert isinstance(raised, UnconfirmedRefusal) is not final
        assert isinstance(raised, AuthorizationRequired)
    else:
        assert final  # e.g. 65001 is an error for a person to fix, never retried


def test_federated_or_mfa_accounts_never_work_with_the_password_grant() -> None:
    for body, federated in (
        (entra("invalid_grant", 50126, "Invalid password."), True),
        (entra("invalid_grant", 50076, "You must use multi-factor authentication."), None),
        (entra("interaction_required", 50079, "Enroll in multi-factor authentication."), False),
    ):
        found = diagnose(
            parse_token_error(400, body, {}),
            Context(grant=ROPC, phase="token", username="fed@contoso.com", federated=federated),
        )
        assert found.state == "error"
        assert "can never" in found.message
        assert "authorization_code" in found.message
        assert "client_credentials" in found.message
        assert isinstance(to_exception(found, "box"), AuthError)
        assert not isinstance(to_exception(found, "box"), PasswordUpdateRequired)


def test_parse_takes_the_first_line_and_the_ids() -> None:
    error = parse_token_error(
        400, entra("invalid_grant", 50173, "The provided grant has expired."), {}
    )
    assert error == ProviderError(
        error="invalid_grant",
        description="AADSTS50173: The provided grant has expired.",
        codes=(50173,),
        status=400,
        correlation_id=CORRELATION,
        trace_id=TRACE,
    )


def test_parse_finds_codes_and_ids_in_the_description_when_the_fields_are_missing() -> None:
    body = json.dumps(
        {"error": "invalid_client", "error_description": entra_description(7000222, "Expired.")}
    ).encode()
    error = parse_token_error(401, body, {})
    assert error.codes == (7000222,)
    assert (error.correlation_id, error.trace_id) == (CORRELATION, TRACE)
    assert error.description == "AADSTS7000222: Expired."
    one_line = json.dumps(
        {"error": "invalid_grant", "error_description": f"Bad. Trace ID: {TRACE} Timestamp: x"}
    ).encode()
    assert parse_token_error(400, one_line, {}).description == "Bad."


def test_parse_never_raises() -> None:
    for body in (
        b"",
        b"\xff\xfe\x00garbage",
        b"[" * 100_000,
        b"null",
        b'"a string"',
        b'{"error": 5}',
        b'{"error": ""}',
        b'{"error": "invalid_grant", "error_description": 7, "error_codes": ["x", true, 5]}',
    ):
        error = parse_token_error(400, body, {"Retry-After": "soon"})
        assert error.error in ("http_400", "invalid_grant")
        assert error.retry_after is None
        assert len(error.description) < 300
        diagnose(error, Context(grant=CC, phase="token"))
    odd = parse_token_error(
        400, b'{"error": "invalid_grant", "error_codes": ["50126", true, 7]}', {}
    )
    assert odd.codes == (50126, 7)


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert parse_token_error(429, b"", {"Retry-After": "7"}).retry_after == 7.0
    assert parse_token_error(429, b"", {"RETRY-AFTER": "-3"}).retry_after == 0.0
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=90)
    error = parse_token_error(503, b"", {"Retry-After": format_datetime(later, usegmt=True)})
    assert error.retry_after is not None
    assert 80 <= error.retry_after <= 91
    raised = to_exception(diagnose(error, Context(grant=AC, phase="refresh")), "box")
    assert isinstance(raised, RateLimited)
    assert raised.retry_after == error.retry_after


def test_transient_errors_become_network_or_rate_limit_errors() -> None:
    down = parse_token_error(503, b"<html><title>Service Unavailable</title></html>", {})
    assert isinstance(
        to_exception(diagnose(down, Context(grant=CC, phase="token")), "b"), NetworkError
    )
    throttled = parse_token_error(429, b"", {})
    limited = to_exception(diagnose(throttled, Context(grant=CC, phase="token")), "b")
    assert isinstance(limited, RateLimited)
    assert limited.retry_after is None
    loop = parse_token_error(400, entra("invalid_request", 50196, "Loop."), {})
    assert isinstance(
        to_exception(diagnose(loop, Context(grant=AC, phase="refresh")), "b"), RateLimited
    )
    # a transient refusal while signing in leaves the mailbox not authorized
    pending = diagnose(down, Context(grant=DEV, phase="authorize"))
    assert (pending.state, pending.transient) == ("not_authorized", True)


def test_device_polling_values_are_parsed_for_the_caller() -> None:
    for error in ("authorization_pending", "slow_down"):
        body = entra(error, 70016, "OAuth 2.0 device flow error. Authorization is pending.")
        parsed = parse_token_error(400, body, {})
        assert parsed.error == error
        assert diagnose(parsed, Context(grant=DEV, phase="authorize")).transient


def test_redirect_errors() -> None:
    assert parse_redirect_error({}) is None
    assert parse_redirect_error({"code": "0.AXE", "state": "s"}) is None
    declined = parse_redirect_error(
        {
            "error": "access_denied",
            "error_subcode": "cancel",
            "error_description": entra_description(
                65004, "User declined to consent to access the app."
            ),
            "state": "s",
        }
    )
    assert declined is not None
    assert declined.codes == (65004,)
    assert declined.correlation_id == CORRELATION
    assert declined.description == "AADSTS65004: User declined to consent to access the app."
    found = diagnose(declined, Context(grant=AC, phase="authorize", username="carla@contoso.com"))
    assert (found.state, found.code) == ("not_authorized", "AADSTS65004")
    assert "consent" in found.message
    blocked = parse_redirect_error(
        {
            "error": "access_denied",
            "error_description": entra_description(53003, "Access has been blocked by CA."),
        }
    )
    assert blocked is not None
    found = diagnose(blocked, Context(grant=AC, phase="authorize"))
    assert (found.state, found.code) == ("error", "AADSTS53003")
    assert CORRELATION in found.message
    google_denied = parse_redirect_error({"error": "access_denied"})
    assert google_denied is not None
    found = diagnose(google_denied, Context(grant=AC, phase="authorize", server="GOOGLE"))
    assert found.state == "not_authorized"
    assert "Test users" in found.message


def test_unknown_descriptions_are_clipped() -> None:
    long_text = "x" * 1000
    error = parse_token_error(400, entra("invalid_grant", 9999903, long_text), {})
    message = diagnose(error, Context(grant=AC, phase="refresh")).message
    assert "x" * 180 in message
    assert "x" * 201 not in message
    assert len(message) < 600


def test_without_context_details_the_messages_still_read() -> None:
    error = parse_token_error(400, entra("invalid_grant", 65001, "No consent."), {})
    found = diagnose(error, Context(grant=ROPC, phase="token"))
    assert "organizations/adminconsent?client_id=<oauth.client_id>" in found.message
    mfa = diagnose(
        parse_token_error(400, entra("invalid_grant", 50076, "MFA."), {}),
        Context(grant=AC, phase="refresh"),
    )
    assert mfa.message.startswith("The account must complete multi-factor")


def test_to_exception_maps_each_state() -> None:
    def made(state: str, transient: bool = False, retry: float | None = None) -> Exception:
        return to_exception(
            Diagnosis(state, "run mailintake authorize <mailbox>.", "c", transient, retry), "box"
        )

    assert type(made("reauthorization_required")) is AuthorizationRequired
    assert type(made("password_update_required")) is PasswordUpdateRequired
    plain = made("error")
    assert type(plain) is AuthError
    assert (plain.state, plain.code) == ("error", "c")
    assert str(plain) == "box: run mailintake authorize box."
    assert type(made("authorized", transient=True)) is NetworkError
    limited = made("authorized", transient=True, retry=5.0)
    assert isinstance(limited, RateLimited)
    assert limited.retry_after == 5.0


REQUIRED_CODES = {
    50126, 50076, 50079, 50074, 50173, 700082, 70008, 70043, 53003, 530035, 53000, 53001,
    53002, 65001, 65004, 90094, 90095, 650052, 650056, 650057, 70011, 700022, 700016, 7000215,
    7000222, 7000218, 700025, 700024, 700027, 90002, 9001023, 90009, 90130, 90124, 50011,
    50034, 50053, 50055, 50057, 50194, 54005, 501481, 500011, 700005, 50196, 90055,
}  # fmt: skip


def test_the_required_codes_are_in_the_table() -> None:
    assert set(CODES) >= REQUIRED_CODES
    assert {n for n, _ in CODES_BY_GRANT} <= set(CODES)


@pytest.mark.parametrize("server", ["MICROSOFT", "GOOGLE", "KEYCLOAK"])
@pytest.mark.parametrize("grant", list(Grant))
@pytest.mark.parametrize("phase", ["authorize", "refresh", "token"])
def test_every_template_renders(server: str, grant: Grant, phase: str) -> None:
    """No fix in any table refers to a value the diagnosis does not have."""
    errors = [ProviderError(error=name) for name in ERRORS if name != "*"]
    errors += [ProviderError(error=f"http_{s}", status=s) for s in (401, 404, 429, 500)]
    errors += [ProviderError(error="invalid_grant", codes=(code,)) for code in CODES]
    errors += [ProviderError(error=name, description=text) for name, text, _ in GOOGLE]
    errors.append(ProviderError(error="mystery", description="Why?", correlation_id="c-1"))
    for bare in (True, False):
        ctx = Context(
            grant=grant,
            phase=phase,
            server=server,
            username=None if bare else "u@example.com",
            client_id=None if bare else "client-1",
            tenant=None if bare else "example.com",
        )
        for error in errors:
            found = diagnose(error, ctx)
            assert found.state in (
                "not_authorized",
                "authorized",
                "reauthorization_required",
                "password_update_required",
                "error",
            )
            text = str(to_exception(found, "box"))
            assert "{" not in text
            assert "}" not in text
            assert "<mailbox>" not in text
            assert text[5].isupper()
