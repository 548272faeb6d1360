"""A provider's refusal → the mailbox's authorization state and a sentence naming the fix.

Classified by the OAuth ``error`` field first and by Microsoft's AADSTS numbers second:
Microsoft says both the texts and the numbers may change (oauth-facts §1.9), so every standard
``error`` value has a diagnosis of its own (``ERRORS``), and a known AADSTS number only refines
it (``CODES``, ``CODES_BY_GRANT``). Google sends no numbers; its few well-known descriptions
refine its ``error`` values the same way (``GOOGLE``).

A fix whose ``state`` is ``None`` keeps the state the ``error`` field gives in that situation:
the same "invalid_grant" means *authorize again* when a stored refresh token is refused,
*store the new password* for the password grant and *start again* when a fresh code is refused
(the seed's password-change rule). Messages say ``mailintake authorize <mailbox>``;
``to_exception`` puts the mailbox's name in.
"""

from __future__ import annotations

import datetime as dt
import html
import http
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

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
AUTHORIZED = "authorized"
REAUTHORIZE = "reauthorization_required"
UPDATE_PASSWORD = "password_update_required"
ERROR = "error"
USER_GRANTS = frozenset({Grant.AUTHORIZATION_CODE, Grant.DEVICE_CODE})

MAILBOX = "<mailbox>"  # replaced by the mailbox's name in to_exception
DESCRIPTION_LIMIT = 200


# --- what the provider answered -------------------------------------------------------------


@dataclass(frozen=True)
class ProviderError:
    """What the token or authorize endpoint answered, without secrets."""

    error: str  # the OAuth "error", or "http_<status>" when the body is not OAuth JSON
    description: str = ""  # first line of error_description (no Trace ID ... lines)
    codes: tuple[int, ...] = ()  # Entra error_codes, or the AADSTS numbers in the description
    status: int | None = None
    correlation_id: str | None = None
    trace_id: str | None = None
    retry_after: float | None = None


_AADSTS = re.compile(r"AADSTS(\d+)")
_TRAILER = re.compile(r"\s*\b(?:Trace ID|Correlation ID|Timestamp):.*$", re.IGNORECASE)
_CORRELATION = re.compile(r"Correlation ID:\s*([0-9A-Za-z-]+)", re.IGNORECASE)
_TRACE = re.compile(r"Trace ID:\s*([0-9A-Za-z-]+)", re.IGNORECASE)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _clip(text: str, limit: int) -> str:
    """One line of printable text, at most ``limit`` characters."""
    line = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = _TRAILER.sub("", line).strip()
        if line:
            return _clip(line, 1000)
    return ""


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value if isinstance(value, str) else None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    value = (_header(headers, "retry-after") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _ids(description: str) -> tuple[str | None, str | None]:
    correlation = _CORRELATION.search(description)
    trace = _TRACE.search(description)
    return (correlation.group(1) if correlation else None, trace.group(1) if trace else None)


def _not_oauth(status: int, body: bytes, data: object) -> str:
    """A short, safe description of an answer that is not an OAuth error."""
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    head = f"HTTP {status} {phrase}".rstrip()
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return f"{head} with an empty body"
    if data is not None:
        return f"{head} with JSON that is not an OAuth error"
    if text.startswith("<") or "<html" in text[:500].lower():
        title = _TITLE.search(text)
        name = _clip(html.unescape(title.group(1)), 80) if title else ""
        return f"{head} with an HTML page" + (f" titled '{name}'" if name else "")
    return f"{head} with the text '{_clip(text.splitlines()[0], 80)}'"


def parse_token_error(status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
    """The refusal of a token (or device authorization) request. Never raises: a body that is
    not OAuth JSON (a proxy's page) becomes ``http_<status>`` with a short safe description."""
    retry = _retry_after(headers)
    try:
        data: object = json.loads(body) if body.strip() else None
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("error"), str) or not data["error"]:
        return ProviderError(
            error=f"http_{status}",
            description=_not_oauth(status, body, data),
            status=status,
            retry_after=retry,
        )
    raw = data.get("error_description")
    description = raw if isinstance(raw, str) else ""
    listed = data.get("error_codes")
    codes: tuple[int, ...] = ()
    if isinstance(listed, list):
        codes = tuple(
            int(c)
            for c in listed
            if (isinstance(c, int) and not isinstance(c, bool))
            or (isinstance(c, str) and c.isdigit())
        )
    if not codes:
        codes = tuple(int(c) for c in _AADSTS.findall(description))
    found_correlation, found_trace = _ids(description)
    correlation = data.get("correlation_id")
    trace = data.get("trace_id")
    return ProviderError(
        error=data["error"],
        description=_first_line(description),
        codes=codes,
        status=status,
        correlation_id=correlation if isinstance(correlation, str) else found_correlation,
        trace_id=trace if isinstance(trace, str) else found_trace,
        retry_after=retry,
    )


def parse_redirect_error(params: Mapping[str, str]) -> ProviderError | None:
    """An error the authorize endpoint sent back on the redirect URI, if any."""
    error = params.get("error")
    if not error:
        return None
    description = params.get("error_description") or ""
    correlation, trace = _ids(description)
    return ProviderError(
        error=error,
        description=_first_line(description),
        codes=tuple(int(c) for c in _AADSTS.findall(description)),
        correlation_id=correlation,
        trace_id=trace,
    )


# --- the situation --------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    grant: Grant
    phase: str  # "authorize" | "refresh" | "token"
    server: str = "MICROSOFT"
    username: str | None = None
    client_id: str | None = None
    tenant: str | None = None
    federated: bool | None = None  # from Microsoft's user realm lookup, when known


@dataclass(frozen=True)
class Diagnosis:
    state: str
    message: str
    code: str
    transient: bool
    retry_after: float | None = None


# --- the fixes ------------------------------------------------------------------------------
# Templates may use {provider}, {server}, {account}, {client_id}, {tenant}, {grant}, {app} (where
# the application is registered), {causes} (why a refresh token dies at this provider),
# {scope_hint}, {consent} (how to grant consent), {correlation} and {detail} (an HTTP answer).


@dataclass(frozen=True)
class Fix:
    text: str
    state: str | None = None  # None: the state the ``error`` field gives in this situation
    transient: bool = False


AUTHORIZE = f"mailintake authorize {MAILBOX}"
EDIT = f"mailintake mailboxes edit {MAILBOX}"
STORE_PASSWORD = f"{EDIT} --ask oauth.password"
STORE_SECRET = f"{EDIT} --ask oauth.client_secret"
ENTRA_APP = "Entra admin center > App registrations > your application"
SECRETS = f"{ENTRA_APP} > Certificates & secrets"
PUBLIC_FLOWS = (
    f"'Allow public client flows' ({ENTRA_APP} > Authentication > Advanced settings) "
    "and set it to Yes"
)
ADMIN_CONSENT = (
    f"an administrator grants it ({ENTRA_APP} > API permissions > Grant admin consent, or "
    "https://login.microsoftonline.com/{tenant}/adminconsent?client_id={client_id})"
)
SIGN_IN_LOGS = "Entra admin center > Monitoring & health > Sign-in logs{correlation}"
USER_GRANT_INSTEAD = (
    "use a grant where a person signs in once: "
    f"{EDIT} --set oauth.grant_type=authorization_code (or device_code), then {AUTHORIZE}; "
    "for application access use client_credentials"
)
TENANT_ALIAS = Fix(
    "This request cannot use the /common or /consumers endpoint (oauth.tenant_id is "
    "'{tenant}'): set oauth.tenant_id to your Directory (tenant) ID or a verified domain: "
    f"{EDIT} --set oauth.tenant_id=<tenant ID>.",
    ERROR,
)


def _ropc_never(why: str) -> Fix:
    return Fix(
        f"{why}, so the password grant (ROPC) can never sign it in: {USER_GRANT_INSTEAD}.",
        ERROR,
    )


FEDERATED = _ropc_never(
    "{account} is federated (its password is checked by AD FS or another identity "
    "provider, which Microsoft does not do for this grant)"
)
ROPC_MFA = _ropc_never("{account} must use multi-factor authentication")
MFA = Fix(
    "{account} must complete multi-factor authentication (a policy, a new location or a new "
    f"device requires it), which only an interactive sign-in can do: {AUTHORIZE}."
)


def _ca(requirement: str) -> Fix:
    return Fix(
        f"A Conditional Access policy requires {requirement}, which an unattended connector "
        "cannot satisfy: ask the Entra administrator to exclude this application from the "
        f"policy, or use client_credentials; the policy is named in {SIGN_IN_LOGS}.",
        ERROR,
    )


# Microsoft's AADSTS numbers (oauth-facts §1.10).
CODES: dict[int, Fix] = {
    # credentials and multi-factor authentication
    50126: Fix(
        "{provider} rejected the user name or password entered for {account}: sign in again with "
        f"the right password: {AUTHORIZE}."
    ),
    50076: MFA,
    50074: MFA,
    50079: Fix(
        "{account} must register for multi-factor authentication, which only an interactive "
        f"sign-in can do: {AUTHORIZE}."
    ),
    50055: Fix(
        f"The password of {{account}} has expired: change it while signing in: {AUTHORIZE}."
    ),
    50053: Fix(
        "{account} is locked after too many failed sign-ins (or sign-ins from this "
        "address are blocked as suspicious); mailintake will retry later, and an administrator "
        "can unlock it sooner.",
        transient=True,
    ),
    50057: Fix(
        "{account} is disabled: an administrator must enable it (Entra admin center > "
        "Users > the user > Account enabled), or use another account.",
        ERROR,
    ),
    50034: Fix(
        "{account} does not exist in tenant {tenant}: check the mailbox's username "
        f"({EDIT} --set username=...) and oauth.tenant_id; a guest must be invited first.",
        ERROR,
    ),
    50020: Fix(
        "{account} is not a member or guest of tenant {tenant}: invite it, or set "
        "oauth.tenant_id to the account's own tenant.",
        ERROR,
    ),
    50058: Fix(f"No sign-in session exists for {{account}}: a person must sign in: {AUTHORIZE}."),
    # refresh tokens that died (the seed: authorization code -> authorize again)
    50173: Fix(
        "{provider} revoked the authorization of {account}: the password was changed or reset, or "
        f"an administrator revoked its sessions. A person must sign in again: {AUTHORIZE}."
    ),
    700082: Fix(
        "The refresh token expired because it was not used for 90 days (inactivity). A person "
        f"must sign in again: {AUTHORIZE}."
    ),
    70008: Fix(
        "The refresh token expired because it was not used for too long (inactivity). A person "
        f"must sign in again: {AUTHORIZE}."
    ),
    70043: Fix(
        "A Conditional Access sign-in frequency policy requires {account} to sign in again: "
        f"{AUTHORIZE} (or ask the Entra administrator to exclude this application)."
    ),
    700084: Fix(
        "The refresh token expired after 24 hours because the redirect URI is registered as a "
        "single-page application (SPA): register it under 'Mobile and desktop applications' "
        f"({ENTRA_APP} > Authentication), then {AUTHORIZE}."
    ),
    # policies
    53003: Fix(
        "A Conditional Access policy of tenant {tenant} blocks this sign-in (location, device, "
        f"application or flow): ask the Entra administrator to find it in {SIGN_IN_LOGS} and "
        "allow this application.",
        ERROR,
    ),
    530035: Fix(
        "The tenant's Security Defaults block this sign-in as legacy authentication: "
        f"{USER_GRANT_INSTEAD}; or an administrator replaces Security Defaults with Conditional "
        "Access (Entra admin center > Overview > Properties > Manage security defaults).",
        ERROR,
    ),
    53000: _ca("a compliant (managed) device"),
    53001: _ca("a domain-joined device"),
    53002: _ca("an approved client application"),
    # consent and permissions
    65001: Fix(
        "Application {client_id} has no consent for the requested permissions in tenant "
        f"{{tenant}}: {ADMIN_CONSENT}; then {AUTHORIZE}.",
        ERROR,
    ),
    65004: Fix(
        "{account} declined the consent page: sign in again and accept the requested permissions: "
        f"{AUTHORIZE} (or an administrator grants consent for the tenant).",
        NOT_AUTHORIZED,
    ),
    90094: Fix(
        "Tenant {tenant} lets only administrators consent to application {client_id}: "
        f"{ADMIN_CONSENT}; then {AUTHORIZE}.",
        ERROR,
    ),
    90095: Fix(
        "Tenant {tenant} requires an administrator to approve application {client_id} (an "
        "admin consent request was filed): once it is approved (Entra admin center > "
        f"Enterprise applications > Admin consent requests), run {AUTHORIZE}.",
        ERROR,
    ),
    650052: Fix(
        "Tenant {tenant} has no subscription for the service the scopes ask for (for IMAP, POP "
        "or Graph mail: Exchange Online): check oauth.tenant_id, oauth.scopes and the tenant's "
        "licences.",
        ERROR,
    ),
    650056: Fix(
        "The application registration lacks the requested permission or its admin consent: "
        f"add it under {ENTRA_APP} > API permissions and grant admin consent, then {AUTHORIZE}.",
        ERROR,
    ),
    650057: Fix(
        "The requested resource is not among the application's API permissions: add it under "
        f"{ENTRA_APP} > API permissions (e.g. Office 365 Exchange Online > "
        "IMAP.AccessAsUser.All, or Microsoft Graph > Mail.ReadWrite) and grant consent, or "
        "correct oauth.scopes.",
        ERROR,
    ),
    # scopes, tenant, endpoints
    70011: Fix(
        "{provider} rejected the scopes: correct oauth.scopes ({scope_hint}; one request may "
        "not mix Graph and Exchange scopes).",
        ERROR,
    ),
    700022: Fix(
        "One token request may ask for one resource only: keep only Graph or only Exchange "
        "scopes in oauth.scopes.",
        ERROR,
    ),
    500011: Fix(
        "The resource the scopes name is not available in tenant {tenant} (e.g. Exchange "
        "Online is not provisioned there): check oauth.tenant_id and oauth.scopes.",
        ERROR,
    ),
    90002: Fix(
        "Tenant '{tenant}' was not found: set oauth.tenant_id to your Directory (tenant) ID or "
        f"a verified domain (Entra admin center > Overview): {EDIT} --set oauth.tenant_id=...",
        ERROR,
    ),
    9001023: TENANT_ALIAS,
    90009: TENANT_ALIAS,
    90130: TENANT_ALIAS,
    90124: TENANT_ALIAS,
    50194: Fix(
        "Application {client_id} is single-tenant, so it cannot use /common: set "
        "oauth.tenant_id to its Directory (tenant) ID or a verified domain.",
        ERROR,
    ),
    50011: Fix(
        "The redirect URI is not registered for application {client_id}: add oauth.redirect_uri "
        f"exactly (only a localhost port may differ) under {ENTRA_APP} > Authentication, or set "
        "oauth.redirect_uri to a registered one.",
        ERROR,
    ),
    # the application's identity and credentials
    700016: Fix(
        "Application {client_id} was not found in directory {tenant}: check oauth.client_id "
        "(the Application (client) ID) and oauth.tenant_id; a multi-tenant application must "
        "first be consented in this tenant.",
        ERROR,
    ),
    7000215: Fix(
        "The client secret is not valid: store the secret's Value, not its Secret ID (copy the "
        f"Value column in {SECRETS}; create a new secret if it is no longer shown): "
        f"{STORE_SECRET}.",
        ERROR,
    ),
    7000222: Fix(
        f"The client secret has expired: create a new client secret in {SECRETS} and store its "
        f"Value: {STORE_SECRET}.",
        ERROR,
    ),
    7000218: Fix(
        "The request carried no client credential but application {client_id} is "
        f"confidential: store its client secret ({STORE_SECRET}) or configure its certificate "
        "(oauth.client_certificate).",
        ERROR,
    ),
    700025: Fix(
        "Application {client_id} is a public client (redirect URI under 'Mobile and desktop "
        "applications', or public client flows allowed), so no client secret may be sent: "
        f"remove oauth.client_secret ({EDIT} --unset oauth.client_secret).",
        ERROR,
    ),
    700024: Fix(
        "The client assertion (certificate sign-in) is outside its valid time range: this "
        "machine's clock is wrong; synchronise it (NTP) and try again.",
        ERROR,
    ),
    700027: Fix(
        "The client assertion's signature did not validate: the certificate in "
        f"oauth.client_certificate (or its key) is not one uploaded to {SECRETS}; upload it "
        "there or configure the matching one.",
        ERROR,
    ),
    700021: Fix(
        "The client assertion names another application than oauth.client_id: check "
        "oauth.client_id.",
        ERROR,
    ),
    700023: Fix(
        "The client assertion's audience is not this token endpoint: check oauth.token_endpoint "
        "and oauth.tenant_id.",
        ERROR,
    ),
    # a code or device code that cannot be redeemed
    54005: Fix(f"This authorization code was already used: start again: {AUTHORIZE}."),
    501481: Fix(
        "The PKCE code verifier did not match (the sign-in answer belongs to another attempt): "
        f"start again: {AUTHORIZE}."
    ),
    700005: Fix(
        "The authorization code was issued for another tenant than the token endpoint's: use "
        "the same tenant in oauth.authorization_endpoint and oauth.token_endpoint (not /common "
        f"on one side only), then {AUTHORIZE}.",
        ERROR,
    ),
    70018: Fix(f"The code entered on the sign-in page was wrong: start again: {AUTHORIZE}."),
    70019: Fix(
        f"The device code expired before the sign-in was completed: start again: {AUTHORIZE}."
    ),
    # throttling
    50196: Fix(
        "{provider} saw too many identical sign-in requests and paused them; mailintake will "
        "retry later.",
        transient=True,
    ),
    90055: Fix(
        "{provider} is throttling sign-ins for tenant {tenant}; mailintake will retry later.",
        transient=True,
    ),
}

# Where the grant changes the fix (keys: a grant value, or "refresh" / "authorize").
CODES_BY_GRANT: dict[tuple[int, str], Fix] = {
    # The seed: with the password grant, a password change means storing the new password.
    (50126, "password"): Fix(
        "{provider} rejected the password stored for {account}: if it was changed, store the new "
        f"one: {STORE_PASSWORD} (retrying the old one can lock the account).",
        UPDATE_PASSWORD,
    ),
    (50055, "password"): Fix(
        "The password of {account} has expired: the user must change it (sign in once at "
        f"https://myaccount.microsoft.com), then store the new one: {STORE_PASSWORD}.",
        UPDATE_PASSWORD,
    ),
    (50053, "password"): Fix(
        "{account} is locked after too many failed sign-ins; mailintake will retry "
        f"later. If its password was changed, store the new one now ({STORE_PASSWORD}): "
        "retrying the old one keeps the account locked.",
        transient=True,
    ),
    (50076, "password"): ROPC_MFA,
    (50079, "password"): ROPC_MFA,
    (50074, "password"): ROPC_MFA,
    (50058, "password"): ROPC_MFA,
    # AADSTS7000218: which credential is missing depends on the flow (oauth-facts §1.2, §1.5).
    (7000218, "password"): Fix(
        "{provider} treats application {client_id} as a confidential client and no client "
        f"secret was sent: for grant {{grant}} open {PUBLIC_FLOWS}; or, if the application "
        f"really is confidential, store its client secret: {STORE_SECRET}.",
        ERROR,
    ),
    (7000218, "device_code"): Fix(
        "{provider} treats application {client_id} as a confidential client and no client "
        f"secret was sent: for grant {{grant}} open {PUBLIC_FLOWS}; or, if the application "
        f"really is confidential, store its client secret: {STORE_SECRET}.",
        ERROR,
    ),
    (7000218, "authorization_code"): Fix(
        "The redirect URI is registered under the Web platform, which needs the client "
        f"secret: store it ({STORE_SECRET}), or register the redirect URI under 'Mobile and "
        f"desktop applications' instead ({ENTRA_APP} > Authentication).",
        ERROR,
    ),
}

# Why a stored refresh token stops working, per provider (oauth-facts §1.7, §4.5).
CAUSES = {
    "microsoft": "the password of {account} was changed or reset, its sessions were revoked, it "
    "was unused for 90 days, or a sign-in frequency policy requires a new sign-in",
    "google": "while the app's OAuth consent screen is in Testing, authorizations last only 7 "
    "days (publish the app: Google Cloud console > APIs & Services > OAuth consent screen); "
    "otherwise the password of {account} was changed, access was removed in the Google Account, "
    "or it was unused for six months",
    "other": "it expired or was revoked, for example after a password change",
}
APP_PORTAL = {
    "microsoft": ENTRA_APP,
    "google": "Google Cloud console > APIs & Services > Credentials > your OAuth client",
    "other": "the application's registration at {server}",
}
SCOPE_HINT = {
    "microsoft": "IMAP and POP need https://outlook.office.com/IMAP.AccessAsUser.All or "
    "https://outlook.office.com/POP.AccessAsUser.All, Graph e.g. "
    "https://graph.microsoft.com/Mail.ReadWrite, client_credentials exactly one "
    "<resource>/.default",
    "google": "IMAP and POP need https://mail.google.com/",
    "other": "as {server} documents them",
}
CONSENT = {
    "microsoft": ADMIN_CONSENT,
    "google": "sign in and accept the consent page",
    "other": "sign in and accept the consent page, or have an administrator approve it",
}

_SIGN_IN_AGAIN = Fix(
    "{provider} requires {account} to sign in interactively again (multi-factor authentication, "
    f"new terms or a policy): {AUTHORIZE}.",
    REAUTHORIZE,
)
_DECLINED = Fix(
    "The sign-in was declined or consent was refused for {account}: sign in again and accept the "
    f"requested permissions: {AUTHORIZE}.",
    NOT_AUTHORIZED,
)
_APP_DENIED = Fix(
    "{provider} denied access to application {client_id}: check its API permissions and "
    "admin consent in {app}.",
    ERROR,
)
_RETRY = Fix("{provider} is temporarily unavailable; mailintake will retry later.", None, True)
_PENDING = Fix(
    "The sign-in on the other device is not finished yet; keep polling.", None, transient=True
)

# Every ``error`` value on its own, per situation: a grant value, "refresh" (a user grant
# using its stored refresh token), "authorize" (a user grant obtaining tokens), or "*".
ERRORS: dict[str, dict[str, Fix]] = {
    "invalid_grant": {
        "password": Fix(
            "{provider} rejected the user name or password stored for {account}: if the password "
            f"was changed, store the new one: {STORE_PASSWORD} (retrying the old one can lock "
            "the account).",
            UPDATE_PASSWORD,
        ),
        "refresh": Fix(
            f"{{provider}} rejected the stored refresh token: {{causes}}. A person must sign in "
            f"again: {AUTHORIZE}.",
            REAUTHORIZE,
        ),
        "authorize": Fix(
            "{provider} did not accept the authorization code or device code (expired, already "
            f"used, or from another attempt): start again: {AUTHORIZE}.",
            NOT_AUTHORIZED,
        ),
        "client_credentials": Fix(
            "{provider} refused the application's token request: check oauth.client_id, "
            "oauth.tenant_id and the client secret or certificate ({app}).",
            ERROR,
        ),
    },
    "invalid_client": {
        "*": Fix(
            "{provider} did not accept the client authentication of application {client_id}: "
            "check oauth.client_id and oauth.client_secret (or the certificate) against {app}; "
            "a confidential application needs its secret, a public one must not send any.",
            ERROR,
        )
    },
    "unauthorized_client": {
        "*": Fix(
            "Application {client_id} may not use grant {grant} here: check oauth.client_id and "
            "oauth.tenant_id, and that {app} allows this grant (password and device_code need "
            "public client flows allowed).",
            ERROR,
        )
    },
    "invalid_scope": {
        "*": Fix("{provider} rejected the scopes: correct oauth.scopes ({scope_hint}).", ERROR)
    },
    "invalid_request": {
        "*": Fix(
            "{provider} rejected the request as malformed: check oauth.tenant_id, the endpoints "
            "and oauth.scopes of the mailbox.",
            ERROR,
        )
    },
    "invalid_resource": {
        "*": Fix(
            "The resource the scopes name is unknown in tenant {tenant}: check oauth.tenant_id "
            "and oauth.scopes.",
            ERROR,
        )
    },
    "unsupported_grant_type": {
        "*": Fix(
            f"{{server}} does not support grant {{grant}}: choose another: {EDIT} --set "
            "oauth.grant_type=authorization_code (or device_code, client_credentials).",
            ERROR,
        )
    },
    "interaction_required": {
        "password": _ropc_never(
            "{provider} requires an interactive sign-in for {account} (multi-factor "
            "authentication or a policy)"
        ),
        "client_credentials": _APP_DENIED,
        "refresh": _SIGN_IN_AGAIN,
        "*": Fix(
            f"{{account}} must finish the sign-in interactively: {AUTHORIZE}.", NOT_AUTHORIZED
        ),
    },
    "consent_required": {
        "refresh": Fix(
            "The consent for application {client_id} was withdrawn or the permissions changed: "
            f"{{account}} must sign in and accept the consent page again: {AUTHORIZE}.",
            REAUTHORIZE,
        ),
        "*": Fix(
            "Application {client_id} has no consent for the requested permissions: {consent}; "
            f"then {AUTHORIZE}.",
            ERROR,
        ),
    },
    "access_denied": {"client_credentials": _APP_DENIED, "password": _APP_DENIED, "*": _DECLINED},
    "authorization_declined": {"*": _DECLINED},
    "expired_token": {
        "*": Fix(
            "The device code expired before the sign-in was completed: start again with "
            f"{AUTHORIZE} and enter the code within the time shown.",
            NOT_AUTHORIZED,
        )
    },
    "bad_verification_code": {
        "*": Fix(
            f"{{provider}} did not recognise the device code: start again: {AUTHORIZE}.",
            NOT_AUTHORIZED,
        )
    },
    "authorization_pending": {"*": _PENDING},  # the caller polls on; not a diagnosis
    "slow_down": {"*": _PENDING},
    "temporarily_unavailable": {"*": _RETRY},
    "server_error": {"*": _RETRY},
    "admin_policy_enforced": {
        "*": Fix(
            "The Google Workspace administrator's API controls block this app for {account}: in "
            "the Admin console > Security > Access and data control > API controls > Manage "
            "third-party app access, set OAuth client {client_id} to Trusted (or allow its "
            f"scopes), then {AUTHORIZE}.",
            ERROR,
        )
    },
    "org_internal": {
        "*": Fix(
            "OAuth client {client_id} is limited to its own Google organization (consent screen "
            "user type Internal): sign in with an account of that organization, or set the user "
            "type to External (Google Cloud console > APIs & Services > OAuth consent screen).",
            ERROR,
        )
    },
    # a body that is not OAuth JSON; chosen by _error_key
    "http_transient": {
        "*": Fix("The OAuth endpoint answered {detail}; mailintake will retry later.", None, True)
    },
    "http_auth": {
        "*": Fix(
            "The OAuth endpoint answered {detail}: a proxy may be refusing the request (check "
            "the proxy settings), or oauth.token_endpoint is not {provider}'s token endpoint.",
            ERROR,
        )
    },
    "http_other": {
        "*": Fix(
            "The OAuth endpoint answered {detail}: check oauth.token_endpoint (and any proxy in "
            "between).",
            ERROR,
        )
    },
    "*": {
        "*": Fix(
            "{provider} refused the request ({error}): check the mailbox's OAuth settings.",
            ERROR,
        )
    },
}
ERRORS["login_required"] = ERRORS["interaction_required"]

# Google sends no numbers; its well-known descriptions refine the error (oauth-facts §4.5).
# (error, lower-case text the description contains or "" for any, fix), most specific first.
GOOGLE: tuple[tuple[str, str, Fix], ...] = (
    (
        "invalid_grant",
        "invalid_rapt",
        Fix(
            "The Google Workspace session control (reauthentication policy) requires {account} to "
            f"sign in again: {AUTHORIZE}; a Workspace administrator can exempt trusted apps "
            "(Admin console > Security > Google Cloud session control)."
        ),
    ),
    (
        "invalid_grant",
        "expired or revoked",
        Fix(
            "Google says the authorization expired or was revoked: {causes}. A person must "
            f"sign in again: {AUTHORIZE}."
        ),
    ),
    (
        "invalid_grant",
        "bad request",
        Fix(
            "Google rejected the code or refresh token (expired, already used, issued to another "
            "OAuth client, or a redirect URI or PKCE mismatch); if oauth.client_id changed, the "
            f"old authorization cannot be used: {AUTHORIZE}."
        ),
    ),
    (
        "invalid_client",
        "not found",
        Fix(
            "Google does not know OAuth client {client_id} (wrong or deleted): check "
            "oauth.client_id in Google Cloud console > APIs & Services > Credentials.",
            ERROR,
        ),
    ),
    (
        "invalid_client",
        "unauthorized",
        Fix(
            "Google rejected the client secret of OAuth client {client_id}: copy it again from "
            "Google Cloud console > APIs & Services > Credentials > your OAuth client and store "
            f"it: {STORE_SECRET}.",
            ERROR,
        ),
    ),
    (
        "invalid_client",
        "",
        Fix(
            "Google did not accept OAuth client {client_id} or its secret: check oauth.client_id "
            "and oauth.client_secret in Google Cloud console > APIs & Services > Credentials.",
            ERROR,
        ),
    ),
    (
        "unauthorized_client",
        "",
        Fix(
            "OAuth client {client_id} may not make this request: a refresh token only works "
            f"with the client that obtained it (if oauth.client_id changed: {AUTHORIZE}), and "
            "device_code needs a client of type 'TVs and Limited Input devices'.",
            ERROR,
        ),
    ),
    (
        "access_denied",
        "",
        Fix(
            "The sign-in was declined or consent was refused; while the OAuth consent screen is "
            "in Testing only its test users may sign in (Google Cloud console > APIs & Services "
            f"> OAuth consent screen > Test users). Then {AUTHORIZE}."
        ),
    ),
)

THROTTLED = frozenset({"http_429", "AADSTS50196", "AADSTS90055", "slow_down"})


def _flavor(error: ProviderError, ctx: Context) -> str:
    server = ctx.server.upper()
    if server == "GOOGLE":
        return "google"
    return "microsoft" if server == "MICROSOFT" or error.codes else "other"


def _situation(ctx: Context) -> str:
    if ctx.grant in USER_GRANTS:
        return "refresh" if ctx.phase == "refresh" else "authorize"
    return ctx.grant.value


def _error_key(error: ProviderError) -> str:
    if error.error in ERRORS:
        return error.error
    match = re.fullmatch(r"http_(\d+)", error.error)
    if match is None:
        return "*"
    status = int(match.group(1))
    if status in (408, 425, 429) or status >= 500:
        return "http_transient"
    return "http_auth" if status in (401, 403, 407) else "http_other"


def _for(table: Mapping[str, Fix], ctx: Context) -> Fix:
    for key in (ctx.grant.value, _situation(ctx), "*"):
        if key in table:
            return table[key]
    return ERRORS["*"]["*"]


def _refine(error: ProviderError, ctx: Context, flavor: str) -> tuple[Fix | None, int | None]:
    """The fix a known AADSTS number (or Google description) gives, and that number."""
    for number in error.codes:
        for key in (ctx.grant.value, _situation(ctx)):
            if (number, key) in CODES_BY_GRANT:
                return CODES_BY_GRANT[(number, key)], number
        if number in CODES:
            return CODES[number], number
    if flavor == "google":
        text = error.description.lower()
        for name, phrase, fix in GOOGLE:
            if name == error.error and phrase in text:
                return fix, None
    return None, None


def diagnose(error: ProviderError, ctx: Context) -> Diagnosis:
    """The state and the fix for one refusal: the ``error`` field decides, numbers refine."""
    flavor = _flavor(error, ctx)
    base = _for(ERRORS[_error_key(error)], ctx)
    refined, known = _refine(error, ctx, flavor)
    if ctx.grant is Grant.PASSWORD and ctx.federated and not base.transient:
        refined = FEDERATED
    fix = refined or base
    transient = fix.transient or base.transient
    if transient:  # the authorization itself is unchanged
        state = NOT_AUTHORIZED if ctx.phase == "authorize" else AUTHORIZED
    else:
        state = fix.state or base.state or ERROR
    if known is not None:
        code = f"AADSTS{known}"
    else:
        code = f"AADSTS{error.codes[0]}" if error.codes else error.error
    provider = {"microsoft": "Microsoft", "google": "Google"}.get(flavor, ctx.server)
    correlation = f" (correlation ID {error.correlation_id})" if error.correlation_id else ""
    values = {
        "provider": provider,
        "server": ctx.server,
        "account": f"the account {ctx.username}" if ctx.username else "the account",
        "client_id": ctx.client_id or "<oauth.client_id>",
        "tenant": ctx.tenant or "organizations",
        "grant": ctx.grant.value,
        "error": error.error,
        "correlation": correlation,
        "detail": error.description or f"HTTP {error.status}",
    }
    for name, table in (
        ("app", APP_PORTAL),
        ("causes", CAUSES),
        ("scope_hint", SCOPE_HINT),
        ("consent", CONSENT),
    ):
        values[name] = table[flavor].format(**values)
    message = fix.text.format(**values)
    message = message[0].upper() + message[1:]
    if refined is None and error.description and not error.error.startswith("http_"):
        said = _clip(error.description, DESCRIPTION_LIMIT).replace('"', "'")
        message += f' {provider} said: "{said}"{correlation}'
    if code not in message:
        message += f" [{code}]"
    return Diagnosis(
        state=state,
        message=message,
        code=code,
        transient=transient,
        retry_after=error.retry_after,
    )


def to_exception(d: Diagnosis, mailbox: str) -> MailintakeError:
    """The error to raise: it says what to do, prefixed with the mailbox's name."""
    message = f"{mailbox}: " + d.message.replace(MAILBOX, mailbox)
    if d.transient:
        if d.retry_after is not None or d.code in THROTTLED:
            return RateLimited(message, retry_after=d.retry_after)
        return NetworkError(message)
    if d.state == REAUTHORIZE:
        return AuthorizationRequired(message, state=d.state, code=d.code)
    if d.state == UPDATE_PASSWORD:
        return PasswordUpdateRequired(message, state=d.state, code=d.code)
    return AuthError(message, state=d.state, code=d.code)


__all__ = [
    "CODES",
    "CODES_BY_GRANT",
    "ERRORS",
    "Context",
    "Diagnosis",
    "ProviderError",
    "diagnose",
    "parse_redirect_error",
    "parse_token_error",
    "to_exception",
]
