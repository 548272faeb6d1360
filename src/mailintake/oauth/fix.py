"""A fix, and the phrases fixes are written with (commands, portal paths, consent).

Templates may use {provider}, {server}, {account}, {client_id}, {tenant}, {grant}, {app} (where
the application is registered), {causes} (why a refresh token dies at this provider),
{scope_hint}, {consent} (how to grant consent), {correlation} and {detail} (an HTTP answer);
Microsoft's phrases use {login_host}, {exchange} and {graph}: the sign-in host and the
resources of the mailbox's cloud (``config.clouds``).
Messages say ``mailintake authorize <mailbox>``; ``to_exception`` puts the mailbox's name in.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailintake.enums import AuthState

MAILBOX = "<mailbox>"  # replaced by the mailbox's name in to_exception


@dataclass(frozen=True)
class Fix:
    text: str
    state: str | None = None  # None: the state the ``error`` field gives in this situation
    transient: bool = False
    # Documented as final for a stored refresh token (revoked, expired, a new sign-in or
    # consent needed): the grant is given up at once. A refusal not marked final may be a
    # momentary fault of the provider; the refresh token is kept and tried again.
    final: bool = False


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
    "https://{login_host}/{tenant}/adminconsent?client_id={client_id})"
)
SIGN_IN_LOGS = "Entra admin center > Monitoring & health > Sign-in logs{correlation}"
USER_GRANT_INSTEAD = (
    "use a grant where a person signs in once: "
    f"{EDIT} --set oauth.grant_type=authorization_code (or device_code), then {AUTHORIZE}; "
    "for application access use client_credentials"
)


def ropc_never(why: str) -> Fix:
    return Fix(
        f"{why}, so the password grant (ROPC) can never sign it in: {USER_GRANT_INSTEAD}.",
        AuthState.ERROR,
    )


__all__ = [
    "ADMIN_CONSENT",
    "AUTHORIZE",
    "EDIT",
    "ENTRA_APP",
    "MAILBOX",
    "PUBLIC_FLOWS",
    "SECRETS",
    "SIGN_IN_LOGS",
    "STORE_PASSWORD",
    "STORE_SECRET",
    "USER_GRANT_INSTEAD",
    "Fix",
    "ropc_never",
]
