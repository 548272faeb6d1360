"""The accounts a sandbox Dovecot knows: a tenant's users and apps at the sandbox identity
provider, whose tokens Dovecot accepts (it asks the identity provider by introspection)."""

from __future__ import annotations

from sandbox.idp import IdentityProvider, User, daemon_app, desktop_app

DOMAIN = "contoso.onmicrosoft.com"
MAIL_APP = "b0000000-0000-4000-8000-0000000000b1"  # public client (password grant, device code)
DAEMON_APP = "b0000000-0000-4000-8000-0000000000b2"  # confidential, app-only IMAP/POP
DAEMON_SECRET = "daemon-app-secret~Value-1"
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
SHARED = f"invoices@{DOMAIN}"  # a shared mailbox: nobody signs in as it
USER_PASSWORD = "User-Password-9!"  # of users added later with the same consent
PASSWORDS = {ALICE: "Alice-Password-1!", BOB: "Bob-Password-2!", SHARED: "Shared-Unused-3!"}
OUTLOOK_SCOPES = (
    "https://outlook.office365.com/IMAP.AccessAsUser.All "
    "https://outlook.office365.com/POP.AccessAsUser.All offline_access"
)
OUTLOOK_APP_SCOPE = "https://outlook.office365.com/.default"


def build_mail_idp(*, access_token_lifetime: int = 3599) -> IdentityProvider:
    """An identity provider (open introspection) with ALICE, BOB and the SHARED mailbox's
    account, a public client app they consented to, and an app-only daemon app."""
    idp = IdentityProvider(
        introspection_open=True, domain=DOMAIN, access_token_lifetime=access_token_lifetime
    )
    idp.add_app(desktop_app(MAIL_APP, "mail intake (desktop)"))
    idp.add_app(
        daemon_app(
            DAEMON_APP,
            "mail intake (daemon)",
            DAEMON_SECRET,
            {"https://outlook.office365.com": ["IMAP.AccessAsApp", "POP.AccessAsApp"]},
        )
    )
    for username, password in PASSWORDS.items():
        idp.add_user(User(username=username, password=password, consented_apps={MAIL_APP}))
    return idp
