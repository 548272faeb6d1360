"""The fixes for every standard OAuth ``error`` value, and Google's well-known descriptions.

``ERRORS`` gives each ``error`` value a fix per situation; Google sends no numbers, so its
descriptions refine its ``error`` values (``GOOGLE``). ``CAUSES``, ``APP_PORTAL``,
``SCOPE_HINT`` and ``CONSENT`` fill a fix's per-provider placeholders.
"""

from __future__ import annotations

from mailintake.enums import AuthState
from mailintake.oauth.fix import (
    ADMIN_CONSENT,
    AUTHORIZE,
    EDIT,
    ENTRA_APP,
    STORE_PASSWORD,
    STORE_SECRET,
    Fix,
    ropc_never,
)

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
    "microsoft": "IMAP and POP need {exchange}/IMAP.AccessAsUser.All or "
    "{exchange}/POP.AccessAsUser.All, Graph e.g. "
    "{graph}/Mail.ReadWrite, client_credentials exactly one "
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
    AuthState.REAUTHORIZATION_REQUIRED,
    final=True,
)
_DECLINED = Fix(
    "The sign-in was declined or consent was refused for {account}: sign in again and accept the "
    f"requested permissions: {AUTHORIZE}.",
    AuthState.NOT_AUTHORIZED,
)
_APP_DENIED = Fix(
    "{provider} denied access to application {client_id}: check its API permissions and "
    "admin consent in {app}.",
    AuthState.ERROR,
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
            AuthState.PASSWORD_UPDATE_REQUIRED,
        ),
        "refresh": Fix(
            f"{{provider}} rejected the stored refresh token: {{causes}}. A person must sign in "
            f"again: {AUTHORIZE}.",
            AuthState.REAUTHORIZATION_REQUIRED,
        ),
        "authorize": Fix(
            "{provider} did not accept the authorization code or device code (expired, already "
            f"used, or from another attempt): start again: {AUTHORIZE}.",
            AuthState.NOT_AUTHORIZED,
        ),
        "client_credentials": Fix(
            "{provider} refused the application's token request: check oauth.client_id, "
            "oauth.tenant_id and the client secret or certificate ({app}).",
            AuthState.ERROR,
        ),
    },
    "invalid_client": {
        "*": Fix(
            "{provider} did not accept the client authentication of application {client_id}: "
            "check oauth.client_id and oauth.client_secret (or the certificate) against {app}; "
            "a confidential application needs its secret, a public one must not send any.",
            AuthState.ERROR,
        )
    },
    "unauthorized_client": {
        "*": Fix(
            "Application {client_id} may not use grant {grant} here: check oauth.client_id and "
            "oauth.tenant_id, and that {app} allows this grant (password and device_code need "
            "public client flows allowed).",
            AuthState.ERROR,
        )
    },
    "invalid_scope": {
        "*": Fix(
            "{provider} rejected the scopes: correct oauth.scopes ({scope_hint}).", AuthState.ERROR
        )
    },
    "invalid_request": {
        "*": Fix(
            "{provider} rejected the request as malformed: check oauth.tenant_id, the endpoints "
            "and oauth.scopes of the mailbox.",
            AuthState.ERROR,
        )
    },
    "invalid_resource": {
        "*": Fix(
            "The resource the scopes name is unknown in tenant {tenant}: check oauth.tenant_id "
            "and oauth.scopes.",
            AuthState.ERROR,
        )
    },
    "unsupported_grant_type": {
        "*": Fix(
            f"{{server}} does not support grant {{grant}}: choose another: {EDIT} --set "
            "oauth.grant_type=authorization_code (or device_code, client_credentials).",
            AuthState.ERROR,
        )
    },
    "interaction_required": {
        "password": ropc_never(
            "{provider} requires an interactive sign-in for {account} (multi-factor "
            "authentication or a policy)"
        ),
        "client_credentials": _APP_DENIED,
        "refresh": _SIGN_IN_AGAIN,
        "*": Fix(
            f"{{account}} must finish the sign-in interactively: {AUTHORIZE}.",
            AuthState.NOT_AUTHORIZED,
        ),
    },
    "consent_required": {
        "refresh": Fix(
            "The consent for application {client_id} was withdrawn or the permissions changed: "
            f"{{account}} must sign in and accept the consent page again: {AUTHORIZE}.",
            AuthState.REAUTHORIZATION_REQUIRED,
            final=True,
        ),
        "*": Fix(
            "Application {client_id} has no consent for the requested permissions: {consent}; "
            f"then {AUTHORIZE}.",
            AuthState.ERROR,
        ),
    },
    "access_denied": {"client_credentials": _APP_DENIED, "password": _APP_DENIED, "*": _DECLINED},
    "authorization_declined": {"*": _DECLINED},
    "expired_token": {
        "*": Fix(
            "The device code expired before the sign-in was completed: start again with "
            f"{AUTHORIZE} and enter the code within the time shown.",
            AuthState.NOT_AUTHORIZED,
        )
    },
    "bad_verification_code": {
        "*": Fix(
            f"{{provider}} did not recognise the device code: start again: {AUTHORIZE}.",
            AuthState.NOT_AUTHORIZED,
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
            AuthState.ERROR,
        )
    },
    "org_internal": {
        "*": Fix(
            "OAuth client {client_id} is limited to its own Google organization (consent screen "
            "user type Internal): sign in with an account of that organization, or set the user "
            "type to External (Google Cloud console > APIs & Services > OAuth consent screen).",
            AuthState.ERROR,
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
            AuthState.ERROR,
        )
    },
    "http_other": {
        "*": Fix(
            "The OAuth endpoint answered {detail}: check oauth.token_endpoint (and any proxy in "
            "between).",
            AuthState.ERROR,
        )
    },
    "*": {
        "*": Fix(
            "{provider} refused the request ({error}): check the mailbox's OAuth settings.",
            AuthState.ERROR,
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
            "(Admin console > Security > Google Cloud session control).",
            final=True,
        ),
    ),
    (
        "invalid_grant",
        "expired or revoked",
        Fix(
            "Google says the authorization expired or was revoked: {causes}. A person must "
            f"sign in again: {AUTHORIZE}.",
            final=True,
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
            AuthState.ERROR,
        ),
    ),
    (
        "invalid_client",
        "unauthorized",
        Fix(
            "Google rejected the client secret of OAuth client {client_id}: copy it again from "
            "Google Cloud console > APIs & Services > Credentials > your OAuth client and store "
            f"it: {STORE_SECRET}.",
            AuthState.ERROR,
        ),
    ),
    (
        "invalid_client",
        "",
        Fix(
            "Google did not accept OAuth client {client_id} or its secret: check oauth.client_id "
            "and oauth.client_secret in Google Cloud console > APIs & Services > Credentials.",
            AuthState.ERROR,
        ),
    ),
    (
        "unauthorized_client",
        "",
        Fix(
            "OAuth client {client_id} may not make this request: a refresh token only works "
            f"with the client that obtained it (if oauth.client_id changed: {AUTHORIZE}), and "
            "device_code needs a client of type 'TVs and Limited Input devices'.",
            AuthState.ERROR,
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

__all__ = ["APP_PORTAL", "CAUSES", "CONSENT", "ERRORS", "GOOGLE", "SCOPE_HINT"]
