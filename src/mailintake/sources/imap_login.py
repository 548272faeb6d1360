"""Signing in to an IMAP server with an OAuth 2.0 access token (IMAPClient): XOAUTH2, or
OAUTHBEARER (RFC 7628) where the server offers only that; and what to tell the user when
the server refuses the token, since Exchange Online says only "AUTHENTICATE failed"."""

from __future__ import annotations

from typing import Any

from imapclient.exceptions import IMAPClientError, LoginError

from mailintake.enums import AuthState
from mailintake.errors import AuthorizationRequired, NetworkError


def authenticate(client: Any, login_as: str, token: str, what: str) -> None:
    """Sign ``client`` in as ``login_as`` with ``token``. A refusal (LoginError) is the
    caller's to judge; a connection that fails is NetworkError. ``what`` names the mailbox
    and server in errors."""
    try:
        capabilities = {c.upper() for c in client.capabilities()}
        if b"AUTH=XOAUTH2" in capabilities or b"AUTH=OAUTHBEARER" not in capabilities:
            client.oauth2_login(login_as, token)
        else:
            client.oauthbearer_login(login_as, token)
    except LoginError:
        raise
    except (OSError, IMAPClientError) as exc:
        raise NetworkError(f"{what}: login failed: {exc}") from exc


def refused(what: str, username: str, login_as: str, exc: LoginError) -> AuthorizationRequired:
    """The token was refused: what to check, for a mailbox of its own or a shared one
    (``login_as`` another than the ``username`` that signs in)."""
    shared = (
        f" (as shared mailbox {login_as}: the signed-in user needs Full Access to it)"
        if login_as != username
        else ""
    )
    return AuthorizationRequired(
        f"{what}: the server refused the token for {login_as}{shared}: {exc}. "
        "Exchange Online says only 'AUTHENTICATE failed' for every cause: check that "
        "IMAP is enabled for the mailbox, the scopes carry "
        "https://outlook.office.com/, and for client credentials the service "
        "principal and mailbox permission exist",
        state=AuthState.ERROR,
    )
