"""The fixes Microsoft Entra's AADSTS numbers give (oauth-facts §1.10).

A known number only refines the diagnosis the OAuth ``error`` field gives: Microsoft says both
the texts and the numbers may change (oauth-facts §1.9). ``CODES_BY_GRANT`` holds the numbers
whose fix depends on the grant.

A fix marked ``final`` is a refusal Microsoft documents as final for a stored refresh token
(reference-error-codes.md, oauth-facts §1.7, §1.10): the password was changed or reset or the
sessions revoked (50173, 50132, 50133), the token expired (700082, 70008, 700084), a sign-in
with multi-factor authentication is now required (50076, 50074, 50078, 50079, 70043), the
password expired (50055), consent is missing (65001). Any other ``invalid_grant`` — above all
AADSTS70000, which Entra sometimes answers for a refresh token that works on the next try
(https://github.com/BingAds/BingAds-Python-SDK/issues/279) — keeps the refresh token, as MSAL
does (https://github.com/AzureAD/microsoft-authentication-library-for-python/issues/314,
https://github.com/AzureAD/microsoft-authentication-library-for-android/pull/389).
"""

from __future__ import annotations

from mailintake.enums import AuthState
from mailintake.oauth.fix import (
    ADMIN_CONSENT,
    AUTHORIZE,
    EDIT,
    ENTRA_APP,
    PUBLIC_FLOWS,
    SECRETS,
    SIGN_IN_LOGS,
    STORE_PASSWORD,
    STORE_SECRET,
    USER_GRANT_INSTEAD,
    Fix,
    ropc_never,
)

TENANT_ALIAS = Fix(
    "This request cannot use the /common or /consumers endpoint (oauth.tenant_id is "
    "'{tenant}'): set oauth.tenant_id to your Directory (tenant) ID or a verified domain: "
    f"{EDIT} --set oauth.tenant_id=<tenant ID>.",
    AuthState.ERROR,
)


FEDERATED = ropc_never(
    "{account} is federated (its password is checked by AD FS or another identity "
    "provider, which Microsoft does not do for this grant)"
)
ROPC_MFA = ropc_never("{account} must use multi-factor authentication")
MFA = Fix(
    "{account} must complete multi-factor authentication (a policy, a new location or a new "
    f"device requires it), which only an interactive sign-in can do: {AUTHORIZE}.",
    final=True,
)
PASSWORD_CHANGED = Fix(
    "The sign-in session of {account} ended because its password expired or was changed. A "
    f"person must sign in again: {AUTHORIZE}.",
    final=True,
)


def _ca(requirement: str) -> Fix:
    return Fix(
        f"A Conditional Access policy requires {requirement}, which an unattended connector "
        "cannot satisfy: ask the Entra administrator to exclude this application from the "
        f"policy, or use client_credentials; the policy is named in {SIGN_IN_LOGS}.",
        AuthState.ERROR,
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
        f"sign-in can do: {AUTHORIZE}.",
        final=True,
    ),
    50078: Fix(
        "The multi-factor authentication of {account} expired under the tenant's policies, and "
        f"only an interactive sign-in can renew it: {AUTHORIZE}.",
        final=True,
    ),
    50055: Fix(
        f"The password of {{account}} has expired: change it while signing in: {AUTHORIZE}.",
        final=True,
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
        AuthState.ERROR,
    ),
    50034: Fix(
        "{account} does not exist in tenant {tenant}: check the mailbox's username "
        f"({EDIT} --set username=...) and oauth.tenant_id; a guest must be invited first.",
        AuthState.ERROR,
    ),
    50020: Fix(
        "{account} is not a member or guest of tenant {tenant}: invite it, or set "
        "oauth.tenant_id to the account's own tenant.",
        AuthState.ERROR,
    ),
    50058: Fix(f"No sign-in session exists for {{account}}: a person must sign in: {AUTHORIZE}."),
    # refresh tokens that died (the seed: authorization code -> authorize again)
    50173: Fix(
        "{provider} revoked the authorization of {account}: the password was changed or reset, or "
        f"an administrator revoked its sessions. A person must sign in again: {AUTHORIZE}.",
        final=True,
    ),
    50132: PASSWORD_CHANGED,
    50133: PASSWORD_CHANGED,
    700082: Fix(
        "The refresh token expired because it was not used for 90 days (inactivity). A person "
        f"must sign in again: {AUTHORIZE}.",
        final=True,
    ),
    70008: Fix(
        "The refresh token expired because it was not used for too long (inactivity). A person "
        f"must sign in again: {AUTHORIZE}.",
        final=True,
    ),
    70043: Fix(
        "A Conditional Access sign-in frequency policy requires {account} to sign in again: "
        f"{AUTHORIZE} (or ask the Entra administrator to exclude this application).",
        final=True,
    ),
    700084: Fix(
        "The refresh token expired after 24 hours because the redirect URI is registered as a "
        "single-page application (SPA): register it under 'Mobile and desktop applications' "
        f"({ENTRA_APP} > Authentication), then {AUTHORIZE}.",
        final=True,
    ),
    # policies
    53003: Fix(
        "A Conditional Access policy of tenant {tenant} blocks this sign-in (location, device, "
        f"application or flow): ask the Entra administrator to find it in {SIGN_IN_LOGS} and "
        "allow this application.",
        AuthState.ERROR,
    ),
    530035: Fix(
        "The tenant's Security Defaults block this sign-in as legacy authentication: "
        f"{USER_GRANT_INSTEAD}; or an administrator replaces Security Defaults with Conditional "
        "Access (Entra admin center > Overview > Properties > Manage security defaults).",
        AuthState.ERROR,
    ),
    53000: _ca("a compliant (managed) device"),
    53001: _ca("a domain-joined device"),
    53002: _ca("an approved client application"),
    # consent and permissions
    65001: Fix(
        "Application {client_id} has no consent for the requested permissions in tenant "
        f"{{tenant}}: {ADMIN_CONSENT}; then {AUTHORIZE}.",
        AuthState.ERROR,
        final=True,
    ),
    65004: Fix(
        "{account} declined the consent page: sign in again and accept the requested permissions: "
        f"{AUTHORIZE} (or an administrator grants consent for the tenant).",
        AuthState.NOT_AUTHORIZED,
    ),
    90094: Fix(
        "Tenant {tenant} lets only administrators consent to application {client_id}: "
        f"{ADMIN_CONSENT}; then {AUTHORIZE}.",
        AuthState.ERROR,
    ),
    90095: Fix(
        "Tenant {tenant} requires an administrator to approve application {client_id} (an "
        "admin consent request was filed): once it is approved (Entra admin center > "
        f"Enterprise applications > Admin consent requests), run {AUTHORIZE}.",
        AuthState.ERROR,
    ),
    650052: Fix(
        "Tenant {tenant} has no subscription for the service the scopes ask for (for IMAP, POP "
        "or Graph mail: Exchange Online): check oauth.tenant_id, oauth.scopes and the tenant's "
        "licences.",
        AuthState.ERROR,
    ),
    650056: Fix(
        "The application registration lacks the requested permission or its admin consent: "
        f"add it under {ENTRA_APP} > API permissions and grant admin consent, then {AUTHORIZE}.",
        AuthState.ERROR,
    ),
    650057: Fix(
        "The requested resource is not among the application's API permissions: add it under "
        f"{ENTRA_APP} > API permissions (e.g. Office 365 Exchange Online > "
        "IMAP.AccessAsUser.All, or Microsoft Graph > Mail.ReadWrite) and grant consent, or "
        "correct oauth.scopes.",
        AuthState.ERROR,
    ),
    # scopes, tenant, endpoints
    70011: Fix(
        "{provider} rejected the scopes: correct oauth.scopes ({scope_hint}; one request may "
        "not mix Graph and Exchange scopes).",
        AuthState.ERROR,
    ),
    700022: Fix(
        "One token request may ask for one resource only: keep only Graph or only Exchange "
        "scopes in oauth.scopes.",
        AuthState.ERROR,
    ),
    500011: Fix(
        "The resource the scopes name is not available in tenant {tenant} (e.g. Exchange "
        "Online is not provisioned there): check oauth.tenant_id and oauth.scopes.",
        AuthState.ERROR,
    ),
    90002: Fix(
        "Tenant '{tenant}' was not found: set oauth.tenant_id to your Directory (tenant) ID or "
        f"a verified domain (Entra admin center > Overview): {EDIT} --set oauth.tenant_id=...",
        AuthState.ERROR,
    ),
    9001023: TENANT_ALIAS,
    90009: TENANT_ALIAS,
    90130: TENANT_ALIAS,
    90124: TENANT_ALIAS,
    50194: Fix(
        "Application {client_id} is single-tenant, so it cannot use /common: set "
        "oauth.tenant_id to its Directory (tenant) ID or a verified domain.",
        AuthState.ERROR,
    ),
    50011: Fix(
        "The redirect URI is not registered for application {client_id}: add oauth.redirect_uri "
        f"exactly (only a localhost port may differ) under {ENTRA_APP} > Authentication, or set "
        "oauth.redirect_uri to a registered one.",
        AuthState.ERROR,
    ),
    # the application's identity and credentials
    700016: Fix(
        "Application {client_id} was not found in directory {tenant}: check oauth.client_id "
        "(the Application (client) ID) and oauth.tenant_id; a multi-tenant application must "
        "first be consented in this tenant.",
        AuthState.ERROR,
    ),
    7000215: Fix(
        "The client secret is not valid: store the secret's Value, not its Secret ID (copy the "
        f"Value column in {SECRETS}; create a new secret if it is no longer shown): "
        f"{STORE_SECRET}.",
        AuthState.ERROR,
    ),
    7000222: Fix(
        f"The client secret has expired: create a new client secret in {SECRETS} and store its "
        f"Value: {STORE_SECRET}.",
        AuthState.ERROR,
    ),
    7000218: Fix(
        "The request carried no client credential but application {client_id} is "
        f"confidential: store its client secret ({STORE_SECRET}) or configure its certificate "
        "(oauth.client_certificate).",
        AuthState.ERROR,
    ),
    700025: Fix(
        "Application {client_id} is a public client (redirect URI under 'Mobile and desktop "
        "applications', or public client flows allowed), so no client secret may be sent: "
        f"remove oauth.client_secret ({EDIT} --unset oauth.client_secret).",
        AuthState.ERROR,
    ),
    700024: Fix(
        "The client assertion (certificate sign-in) is outside its valid time range: this "
        "machine's clock is wrong; synchronise it (NTP) and try again.",
        AuthState.ERROR,
    ),
    700027: Fix(
        "The client assertion's signature did not validate: the certificate in "
        f"oauth.client_certificate (or its key) is not one uploaded to {SECRETS}; upload it "
        "there or configure the matching one.",
        AuthState.ERROR,
    ),
    700021: Fix(
        "The client assertion names another application than oauth.client_id: check "
        "oauth.client_id.",
        AuthState.ERROR,
    ),
    700023: Fix(
        "The client assertion's audience is not this token endpoint: check oauth.token_endpoint "
        "and oauth.tenant_id.",
        AuthState.ERROR,
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
        AuthState.ERROR,
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
        AuthState.PASSWORD_UPDATE_REQUIRED,
    ),
    (50055, "password"): Fix(
        "The password of {account} has expired: the user must change it (sign in once at "
        f"https://myaccount.microsoft.com), then store the new one: {STORE_PASSWORD}.",
        AuthState.PASSWORD_UPDATE_REQUIRED,
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
        AuthState.ERROR,
    ),
    (7000218, "device_code"): Fix(
        "{provider} treats application {client_id} as a confidential client and no client "
        f"secret was sent: for grant {{grant}} open {PUBLIC_FLOWS}; or, if the application "
        f"really is confidential, store its client secret: {STORE_SECRET}.",
        AuthState.ERROR,
    ),
    (7000218, "authorization_code"): Fix(
        "The redirect URI is registered under the Web platform, which needs the client "
        f"secret: store it ({STORE_SECRET}), or register the redirect URI under 'Mobile and "
        f"desktop applications' instead ({ENTRA_APP} > Authentication).",
        AuthState.ERROR,
    ),
}

__all__ = ["CODES", "CODES_BY_GRANT", "FEDERATED", "MFA", "ROPC_MFA", "TENANT_ALIAS"]
