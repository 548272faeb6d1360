"""A provider's refusal → the mailbox's authorization state and a sentence naming the fix.

Classified by the OAuth ``error`` field first and by Microsoft's AADSTS numbers second:
Microsoft says both the texts and the numbers may change (oauth-facts §1.9), so every standard
``error`` value has a useful diagnosis of its own, and known AADSTS codes refine it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from mailintake.config.matrix import Grant
from mailintake.errors import (
    AuthError,
    AuthorizationRequired,
    MailintakeError,
    NetworkError,
    PasswordUpdateRequired,
    RateLimited,
)

NOT_AUTHORIZED = "not_authorized"
REAUTHORIZE = "reauthorization_required"
UPDATE_PASSWORD = "password_update_required"
ERROR = "error"
USER_GRANTS = frozenset({Grant.AUTHORIZATION_CODE, Grant.DEVICE_CODE})
_AADSTS = re.compile(r"AADSTS(\d+)")


@dataclass(frozen=True)
class ProviderError:
    """What the token or authorize endpoint answered, without secrets."""

    error: str
    description: str = ""
    codes: tuple[int, ...] = ()
    status: int | None = None
    correlation_id: str | None = None
    trace_id: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class Context:
    grant: Grant
    phase: str  # "authorize" | "refresh" | "token"
    server: str = "MICROSOFT"
    username: str | None = None
    client_id: str | None = None
    tenant: str | None = None
    federated: bool | None = None


@dataclass(frozen=True)
class Diagnosis:
    state: str
    message: str
    code: str
    transient: bool = False
    retry_after: float | None = None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0].strip() if text.strip() else ""


def parse_token_error(status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
    """Never raises: a body that is not OAuth JSON (a proxy page) becomes ``http_<status>``."""
    retry = _retry_after(headers)
    try:
        data = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("error"), str):
        return ProviderError(error=f"http_{status}", status=status, retry_after=retry)
    description = data.get("error_description")
    description = description if isinstance(description, str) else ""
    raw_codes = data.get("error_codes")
    codes: tuple[int, ...] = ()
    if isinstance(raw_codes, list):
        codes = tuple(c for c in raw_codes if isinstance(c, int))
    if not codes:
        codes = tuple(int(c) for c in _AADSTS.findall(description))
    correlation = data.get("correlation_id")
    trace = data.get("trace_id")
    return ProviderError(
        error=data["error"],
        description=_first_line(description),
        codes=codes,
        status=status,
        correlation_id=correlation if isinstance(correlation, str) else None,
        trace_id=trace if isinstance(trace, str) else None,
        retry_after=retry,
    )


def parse_redirect_error(params: Mapping[str, str]) -> ProviderError | None:
    """An error the authorize endpoint sent back on the redirect URI, if any."""
    error = params.get("error")
    if not error:
        return None
    description = params.get("error_description", "")
    return ProviderError(
        error=error,
        description=_first_line(description),
        codes=tuple(int(c) for c in _AADSTS.findall(description)),
    )


# --- the fixes ----------------------------------------------------------------------------
# Templates may use {name} (the mailbox), {username}, {client_id}, {tenant}, {correlation}.

AUTHORIZE_AGAIN = "authorize it again: mailintake authorize {name}"
STORE_PASSWORD = "store the new password: mailintake mailboxes edit {name} --ask oauth.password"
APP_SECRETS = "Entra admin center > App registrations > your application > Certificates & secrets"
PUBLIC_FLOWS = (
    "in Entra admin center > App registrations > your application > Authentication > "
    "Advanced settings, set 'Allow public client flows' to Yes"
)


@dataclass(frozen=True)
class Rule:
    state: str
    message: str
    transient: bool = False


def _ropc_impossible(why: str) -> Rule:
    return Rule(
        ERROR,
        f"{why}, so the password grant (ROPC) can never sign it in. Use grant_type "
        "authorization_code or device_code (a person signs in once), or client_credentials "
        "for application access, then run mailintake authorize {name}.",
    )


MFA = _ropc_impossible("the account {username} must complete multi-factor authentication")
FEDERATED = _ropc_impossible(
    "the account {username} is federated (its password is checked by another identity "
    "provider such as AD FS, which Microsoft cannot do for this grant)"
)

# Rules by AADSTS number (oauth-facts §1.10).
CODES: dict[int, Rule] = {
    50126: Rule(
        UPDATE_PASSWORD,
        "Microsoft rejected the user name or password of {username}. If the password "
        "changed, " + STORE_PASSWORD + ". Do not retry with the old one: repeated failures "
        "lock the account.",
    ),
    50076: MFA,
    50079: MFA,
    50074: MFA,
    50173: Rule(
        REAUTHORIZE,
        "Microsoft revoked the sign-in: the password of {username} was changed or reset, or "
        "an administrator revoked its sessions. A person must sign in again: " + AUTHORIZE_AGAIN,
    ),
    700082: Rule(
        REAUTHORIZE,
        "the refresh token expired because it was not used for too long (90 days). "
        + AUTHORIZE_AGAIN[0].upper()
        + AUTHORIZE_AGAIN[1:],
    ),
    70008: Rule(
        REAUTHORIZE,
        "the refresh token expired because it was not used for too long. "
        + AUTHORIZE_AGAIN[0].upper()
        + AUTHORIZE_AGAIN[1:],
    ),
    70043: Rule(
        REAUTHORIZE,
        "a Conditional Access sign-in frequency policy requires the user to sign in again: "
        + AUTHORIZE_AGAIN,
    ),
    53003: Rule(
        ERROR,
        "a Conditional Access policy of the tenant blocks this sign-in (location, device, "
        "application or flow). Ask the Entra administrator to check the sign-in logs"
        "{correlation_hint} and allow it.",
    ),
    530035: Rule(
        ERROR,
        "the tenant's Security Defaults block this sign-in. An administrator must allow it "
        "or use another grant type.",
    ),
    53000: Rule(
        ERROR,
        "Conditional Access requires a compliant device, which an unattended "
        "connector cannot satisfy. Ask the administrator to exclude this application "
        "or use client_credentials.",
    ),
    53001: Rule(
        ERROR,
        "Conditional Access requires a domain-joined device, which an unattended "
        "connector cannot satisfy. Ask the administrator to exclude this application "
        "or use client_credentials.",
    ),
    53002: Rule(
        ERROR,
        "Conditional Access requires an approved client application. Ask the "
        "administrator to exclude this application or use client_credentials.",
    ),
    65001: Rule(
        ERROR,
        "the application {client_id} has no consent for the requested permissions in this "
        "tenant. An administrator can grant it: "
        "https://login.microsoftonline.com/{tenant}/adminconsent?client_id={client_id} "
        "(or sign in with authorization_code and accept the consent page), then "
        "mailintake authorize {name}.",
    ),
    65004: Rule(
        NOT_AUTHORIZED,
        "the user declined the consent page; sign in again and accept it: "
        "mailintake authorize {name}",
    ),
    90094: Rule(
        ERROR,
        "the tenant requires an administrator to approve the application "
        "{client_id}: an administrator must grant admin consent, then "
        "mailintake authorize {name}.",
    ),
    90095: Rule(
        ERROR,
        "the tenant requires an administrator to approve the application "
        "{client_id} (an admin-consent request was filed): once approved, run "
        "mailintake authorize {name}.",
    ),
    650052: Rule(
        ERROR,
        "the tenant has no subscription for the service the scopes ask for "
        "(for IMAP/POP or Graph mail: Exchange Online). Check the tenant and its "
        "licences, and the scopes.",
    ),
    650056: Rule(
        ERROR,
        "the application registration does not list the requested permission "
        "or lacks admin consent: add it under API permissions and grant consent.",
    ),
    650057: Rule(
        ERROR,
        "the requested resource is not among the application's API permissions: "
        "add the permission (e.g. Office 365 Exchange Online > IMAP.AccessAsUser.All) "
        "under API permissions, or fix oauth.scopes.",
    ),
    70011: Rule(
        ERROR,
        "Microsoft rejected the scopes: check oauth.scopes (IMAP/POP scopes need "
        "the https://outlook.office.com/ prefix; client credentials take exactly one "
        "<resource>/.default; one request may not mix Graph and Exchange).",
    ),
    700022: Rule(
        ERROR,
        "one token request may not ask for several resources: keep the scopes "
        "of one resource in oauth.scopes (Graph or Exchange, not both).",
    ),
    700016: Rule(
        ERROR,
        "the application {client_id} was not found in the directory {tenant}: "
        "check oauth.client_id and oauth.tenant_id (a multi-tenant application must "
        "first be consented in this tenant).",
    ),
    7000215: Rule(
        ERROR,
        "Microsoft rejected the client secret (AADSTS7000215): it is not the "
        "secret's value. In " + APP_SECRETS + ", copy the Value column (not the "
        "Secret ID) and store it: mailintake mailboxes edit {name} --ask "
        "oauth.client_secret",
    ),
    7000222: Rule(
        ERROR,
        "the client secret has expired. Create a new client secret in "
        + APP_SECRETS
        + " and store its Value: mailintake mailboxes edit {name} "
        "--ask oauth.client_secret",
    ),
    700025: Rule(
        ERROR,
        "the application is a public client (redirect URI under 'Mobile and "
        "desktop applications', or 'Allow public client flows'), so no client "
        "secret may be sent: remove oauth.client_secret (mailintake mailboxes edit "
        "{name} --unset oauth.client_secret).",
    ),
    700024: Rule(
        ERROR,
        "the client assertion is outside its valid time range: the clock of "
        "this machine is wrong; synchronise it (NTP) and try again.",
    ),
    700027: Rule(
        ERROR,
        "the client assertion's signature did not validate: the certificate in "
        "oauth.client_certificate is not the one uploaded to the application ("
        + APP_SECRETS
        + "), or its key does not match.",
    ),
    700021: Rule(
        ERROR, "the client assertion was made for another application: check oauth.client_id."
    ),
    700023: Rule(
        ERROR,
        "the client assertion's audience is not this token endpoint: check "
        "oauth.token_endpoint and oauth.tenant_id.",
    ),
    90002: Rule(
        ERROR,
        "the tenant '{tenant}' does not exist (or belongs to another Microsoft "
        "cloud): check oauth.tenant_id (the Directory (tenant) ID or a verified domain).",
    ),
    9001023: Rule(
        ERROR,
        "this grant type cannot use the /common or /consumers endpoint: set "
        "oauth.tenant_id to your tenant ID or domain (or organizations).",
    ),
    90009: Rule(
        ERROR,
        "this request cannot use the /common or /consumers endpoint: set "
        "oauth.tenant_id to your tenant ID or domain.",
    ),
    90130: Rule(
        ERROR,
        "this application cannot use the /common or /consumers endpoint: set "
        "oauth.tenant_id to your tenant ID or domain.",
    ),
    90124: Rule(
        ERROR,
        "this resource cannot be used through the /common or /consumers "
        "endpoint: set oauth.tenant_id to your tenant ID or domain.",
    ),
    50194: Rule(
        ERROR,
        "the application is single-tenant, so it cannot use /common: set "
        "oauth.tenant_id to your tenant ID or domain.",
    ),
    50011: Rule(
        ERROR,
        "the redirect URI is not registered for the application {client_id}: "
        "add oauth.redirect_uri exactly as configured under App registrations > "
        "Authentication (the port of http://localhost does not matter), or change "
        "oauth.redirect_uri to a registered one.",
    ),
    50034: Rule(
        ERROR,
        "the account {username} does not exist in the tenant {tenant}: check the "
        "mailbox's username and oauth.tenant_id (a guest must be invited first).",
    ),
    50053: Rule(
        ERROR,
        "the account {username} is locked after too many failed sign-ins (or "
        "the sign-in came from a blocked address). Wait, or ask an administrator to "
        "unlock it; mailintake will not retry until the settings change.",
    ),
    50055: Rule(
        UPDATE_PASSWORD,
        "the password of {username} has expired: the user must change "
        "it (sign in interactively once), then " + STORE_PASSWORD,
    ),
    50057: Rule(ERROR, "the account {username} is disabled in the directory."),
    54005: Rule(
        NOT_AUTHORIZED,
        "this authorization code was already used: start again with mailintake authorize {name}.",
    ),
    501481: Rule(
        NOT_AUTHORIZED,
        "the PKCE code verifier did not match: start again with mailintake authorize {name}.",
    ),
    700005: Rule(
        NOT_AUTHORIZED,
        "the code was issued for another tenant than the token "
        "endpoint's: keep oauth.tenant_id the same and authorize again.",
    ),
    500011: Rule(
        ERROR,
        "the resource the scopes name is not provisioned in the tenant (for "
        "example Exchange Online in another tenant): check oauth.tenant_id and "
        "oauth.scopes.",
    ),
    50196: Rule(
        ERROR,
        "Microsoft saw too many identical requests and stopped answering for a "
        "while; mailintake will retry later.",
        transient=True,
    ),
    90055: Rule(
        ERROR,
        "Microsoft is throttling sign-ins for this tenant; mailintake will retry later.",
        transient=True,
    ),
    7000218: Rule(ERROR, ""),  # depends on the grant: see _client_credential_missing
}


def _client_credential_missing(ctx: Context) -> str:
    if ctx.grant in (Grant.PASSWORD, Grant.DEVICE_CODE):
        return (
            "Microsoft treats the application as a confidential client and no client secret "
            "was sent. For this grant, " + PUBLIC_FLOWS + "; or, if the application really is "
            "confidential, store its client secret: mailintake mailboxes edit {name} --ask "
            "oauth.client_secret"
        )
    return (
        "the redirect URI is registered under the Web platform, which needs the client "
        "secret: store it (mailintake mailboxes edit {name} --ask oauth.client_secret), or "
        "register the redirect URI under 'Mobile and desktop applications' instead"
    )


# Rules by OAuth ``error`` value, used when no known AADSTS number refines them.
def _by_error(error: ProviderError, ctx: Context) -> Rule | None:
    e = error.error
    refresh = ctx.phase == "refresh" and ctx.grant in USER_GRANTS
    google = ctx.server == "GOOGLE"
    if e == "invalid_grant":
        if refresh:
            cause = (
                "Google expired or revoked the authorization (the password changed, access "
                "was removed, it was unused for six months, or the OAuth consent screen is in "
                "Testing, where authorizations last 7 days)"
                if google
                else "the provider rejected the refresh token (revoked, expired, or the "
                "user's password changed)"
            )
            return Rule(REAUTHORIZE, cause + ". A person must sign in again: " + AUTHORIZE_AGAIN)
        if ctx.grant is Grant.PASSWORD:
            return CODES[50126]
        if ctx.grant is Grant.CLIENT_CREDENTIALS:
            return Rule(
                ERROR,
                "the provider refused the application's grant: check "
                "oauth.client_id, the credentials and the application permissions.",
            )
        return Rule(
            NOT_AUTHORIZED,
            "the sign-in answer was refused (expired or already used "
            "code); start again: mailintake authorize {name}",
        )
    if e == "invalid_client":
        if google:
            return Rule(
                ERROR,
                "Google does not know this OAuth client or its secret: check "
                "oauth.client_id and oauth.client_secret (Google Cloud console > APIs & "
                "Services > Credentials).",
            )
        return Rule(
            ERROR,
            "the provider rejected the client's credentials: check "
            "oauth.client_id and oauth.client_secret (or the certificate).",
        )
    if e == "unauthorized_client":
        return Rule(
            ERROR,
            "the application {client_id} may not use grant type "
            f"{ctx.grant.value} here (or is unknown in this directory): check "
            "oauth.client_id, oauth.tenant_id and the application's settings.",
        )
    if e == "invalid_scope":
        return CODES[70011]
    if e in ("consent_required", "interaction_required"):
        if ctx.grant is Grant.PASSWORD:
            return MFA if e == "interaction_required" else CODES[65001]
        if refresh:
            return Rule(
                REAUTHORIZE,
                "the provider requires the user to sign in again "
                "(consent or a policy): " + AUTHORIZE_AGAIN,
            )
        return (
            CODES[65001]
            if e == "consent_required"
            else Rule(
                NOT_AUTHORIZED,
                "the provider requires an interactive sign-in: mailintake authorize {name}",
            )
        )
    if e in ("access_denied", "authorization_declined"):
        return Rule(
            NOT_AUTHORIZED,
            "the sign-in was declined (or consent was refused); sign "
            "in again and accept: mailintake authorize {name}",
        )
    if e == "expired_token":
        return Rule(
            NOT_AUTHORIZED,
            "the device code expired before anyone signed in; start "
            "again: mailintake authorize {name} --device-code",
        )
    if e == "bad_verification_code":
        return Rule(
            NOT_AUTHORIZED,
            "the device code was not recognised; start again: "
            "mailintake authorize {name} --device-code",
        )
    if e == "admin_policy_enforced":
        return Rule(
            ERROR,
            "the Google Workspace administrator's API access policy blocks this "
            "client: in the Admin console > Security > API controls, trust the app.",
        )
    if e == "org_internal":
        return Rule(
            ERROR,
            "the OAuth client is restricted to its own Google organization: "
            "use an account of that organization or make the consent screen External.",
        )
    if e == "unsupported_grant_type":
        return Rule(
            ERROR,
            f"the server does not accept grant type {ctx.grant.value}: choose "
            "another grant_type for this mailbox.",
        )
    if e == "invalid_request":
        return Rule(
            ERROR,
            "the server refused the request as malformed; check the mailbox's "
            "OAuth settings (tenant, endpoints, scopes).",
        )
    if e in ("temporarily_unavailable", "server_error"):
        return Rule(
            ERROR,
            "the identity provider is temporarily unavailable; mailintake will retry later.",
            transient=True,
        )
    if e.startswith("http_"):
        status = error.status or 0
        if status == 429 or status >= 500:
            return Rule(
                ERROR,
                f"the token endpoint answered HTTP {status}; mailintake will retry later.",
                transient=True,
            )
        return Rule(
            ERROR,
            f"the token endpoint answered HTTP {status} without an OAuth error "
            "(is oauth.token_endpoint right, or is a proxy answering?).",
        )
    return None


def diagnose(error: ProviderError, ctx: Context) -> Diagnosis:
    """The state and the fix for one refusal."""
    known = next((c for c in error.codes if c in CODES), None)
    code = (
        f"AADSTS{known}"
        if known is not None
        else (f"AADSTS{error.codes[0]}" if error.codes else error.error)
    )
    rule: Rule | None = None
    if ctx.grant is Grant.PASSWORD and (ctx.federated or known in (50076, 50079, 50074)):
        rule = FEDERATED if ctx.federated else MFA
    elif known == 7000218:
        rule = Rule(ERROR, _client_credential_missing(ctx))
    elif known in (50126,) and ctx.grant is not Grant.PASSWORD:
        rule = Rule(
            NOT_AUTHORIZED,
            "the user name or password was wrong at sign-in; try "
            "again: mailintake authorize {name}",
        )
    elif known is not None:
        rule = CODES[known]
    if rule is None:
        rule = _by_error(error, ctx)
    if rule is None:
        detail = error.description[:200] or error.error
        rule = Rule(ERROR, f"the identity provider refused the request: {detail}")
    elif known is None and error.codes and error.description:
        rule = Rule(
            rule.state,
            rule.message + f" (provider said: {error.description[:200]})",
            rule.transient,
        )
    values = {
        "username": ctx.username or "the user",
        "client_id": ctx.client_id or "(client id)",
        "tenant": ctx.tenant or "organizations",
        "correlation_hint": f" (correlation ID {error.correlation_id})"
        if error.correlation_id
        else "",
        "name": "{name}",
    }
    message = rule.message.format(**values)
    if known is not None and f"AADSTS{known}" not in message:
        message += f" [AADSTS{known}]"
    return Diagnosis(
        state=rule.state,
        message=message,
        code=code,
        transient=rule.transient,
        retry_after=error.retry_after,
    )


def to_exception(found: Diagnosis, mailbox: str) -> MailintakeError:
    message = f"{mailbox}: " + found.message.replace("{name}", mailbox)
    if found.transient:
        if found.retry_after is not None:
            return RateLimited(message, retry_after=found.retry_after)
        return NetworkError(message)
    if found.state == REAUTHORIZE:
        return AuthorizationRequired(message, state=found.state, code=found.code)
    if found.state == UPDATE_PASSWORD:
        return PasswordUpdateRequired(message, state=found.state, code=found.code)
    return AuthError(message, state=found.state, code=found.code)
