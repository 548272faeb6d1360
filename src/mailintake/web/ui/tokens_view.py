"""Token expiry and refresh-token age, with a warning before a refresh token dies (its
limit per authorization server: mailintake.health.expiry)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mailintake.errors import MailintakeError
from mailintake.health.expiry import refresh_expiry
from mailintake.oauth.tokens import load_auth, stored_access
from mailintake.store.repo import Repo


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
        info["refresh_obtained_at"] = grant.refresh_obtained_at
        info["refresh_age_days"] = (now - grant.refresh_obtained_at).days
        end = refresh_expiry(repo, name)
        if end is not None:
            info["refresh_dies_at"] = end.ends_at
            if end.state(now):
                verb = "ended" if end.state(now) == "expired" else "ends"
                info["refresh_warning"] = (
                    f"{end.what}: it {verb} {end.ends_at:%Y-%m-%d %H:%M} UTC; {end.action}"
                )
    return info
