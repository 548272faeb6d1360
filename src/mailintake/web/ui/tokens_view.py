"""Token expiry and refresh-token age, with a warning before a refresh token dies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from mailintake.errors import MailintakeError
from mailintake.oauth.tokens import load_auth, stored_access
from mailintake.store.repo import Repo

# Microsoft refresh tokens expire after 90 days without use (oauth-facts §1.7; AADSTS700082);
# a mailbox that polls renews its refresh token at least once an hour, so an old one means
# polling stopped. Warn two weeks before.
REFRESH_TOKEN_INACTIVITY = timedelta(days=90)
REFRESH_TOKEN_WARNING = timedelta(days=76)


def token_info(repo: Repo, name: str, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    grant = repo.grant(name)
    info: dict[str, Any] = {
        "account": grant.account if grant else None,
        "authorized_at": grant.authorized_at if grant else None,
        "access_expires_at": None,
        "access_expired": False,
        "refresh_obtained_at": None,
        "refresh_age_days": None,
        "refresh_dies_at": None,
        "refresh_warning": None,
    }
    try:
        token = stored_access(repo, load_auth(repo, name))
    except MailintakeError:
        token = None
    if token is not None:
        info["access_expires_at"] = token.expires_at
        info["access_expired"] = token.expires_at <= now
    if grant is not None and grant.refresh_obtained_at is not None:
        age = now - grant.refresh_obtained_at
        info["refresh_obtained_at"] = grant.refresh_obtained_at
        info["refresh_age_days"] = age.days
        info["refresh_dies_at"] = grant.refresh_obtained_at + REFRESH_TOKEN_INACTIVITY
        if age >= REFRESH_TOKEN_WARNING:
            info["refresh_warning"] = (
                f"the refresh token is {age.days} days old and expires after 90 days without "
                "use: poll this mailbox, or authorize again"
            )
    return info
