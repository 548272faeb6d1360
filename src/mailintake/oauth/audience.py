"""Why a mail server may have refused a token: it was for another resource.

Exchange Online answers an IMAP or POP3 token for the wrong resource (a Graph token, or a bare
scope name that Microsoft reads as a Graph permission) with a bare "AUTHENTICATE failed."
(oauth-facts §0 items 1-2, §1.8, §2.3), so the refusal itself never says so. Given the scopes
the token was requested with, this names the resource the token was for and the scope to
configure instead.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from mailintake.config import checks, clouds
from mailintake.config.clouds import Cloud
from mailintake.config.matrix import Grant, Protocol


def _microsoft(scopes: tuple[str, ...], cloud: Cloud | None) -> Cloud | None:
    """The cloud the token was asked of: the server's, else the one its scopes name."""
    if cloud is not None:
        return cloud
    for scope in scopes:
        if "://" in scope:
            parts = urlsplit(scope)
            base = f"{parts.scheme}://{parts.netloc}".lower()
            for candidate in clouds.CLOUDS:
                if base in (candidate.graph_resource, *candidate.exchange_resources):
                    return candidate
    return None


def right_scopes(protocol: Protocol, grant: Grant, cloud: Cloud = clouds.GLOBAL) -> str:
    """The scopes an IMAP or POP3 token of Exchange Online is requested with."""
    if grant is Grant.CLIENT_CREDENTIALS:
        return f"{cloud.exchange_app_resource}/.default"
    word = "IMAP" if protocol is Protocol.IMAP else "POP"
    return f"{cloud.exchange_user_resource}/{word}.AccessAsUser.All offline_access"


def wrong_audience(
    scopes: tuple[str, ...], protocol: Protocol, grant: Grant, *, cloud: Cloud | None
) -> str | None:
    """A sentence naming the resource the token was for and the scopes to set, when the
    scopes do not ask Microsoft for an Exchange Online token for ``protocol``; else None.
    ``cloud``: the Microsoft cloud of the mailbox's server (None when it is not Microsoft's)."""
    if protocol not in (Protocol.IMAP, Protocol.POP3):
        return None
    found = _microsoft(scopes, cloud)
    if found is None:
        return None
    exchange = f"Exchange Online ({found.exchange_user_resource})"
    resources = {checks.scope_resource(scope, found) for scope in scopes} - {None}
    if resources == {exchange}:
        return None
    named = ", ".join(sorted(r for r in resources if r)) or "no resource"
    return (
        f"The token was requested for {named} (oauth.scopes: {' '.join(scopes)}), but the "
        f"{protocol.value.upper()} server accepts only tokens for {exchange}: set "
        f"oauth.scopes to {right_scopes(protocol, grant, found)}."
    )
