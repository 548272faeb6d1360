"""Why a mail server may have refused a token: it was for another resource.

Exchange Online answers an IMAP or POP3 token for the wrong resource (a Graph token, or a bare
scope name that Microsoft reads as a Graph permission) with a bare "AUTHENTICATE failed."
(oauth-facts §0 items 1-2, §1.8, §2.3), so the refusal itself never says so. Given the scopes
the token was requested with, this names the resource the token was for and the scope to
configure instead.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from mailintake.config import checks
from mailintake.config.matrix import Grant, Protocol

MICROSOFT_RESOURCES = frozenset({checks.GRAPH_RESOURCE, *checks.EXCHANGE_RESOURCES})
_USER_SCOPE = {
    Protocol.IMAP: "https://outlook.office.com/IMAP.AccessAsUser.All",
    Protocol.POP3: "https://outlook.office.com/POP.AccessAsUser.All",
}
APP_SCOPE = "https://outlook.office365.com/.default"


def _microsoft(scopes: tuple[str, ...], microsoft_server: bool) -> bool:
    if microsoft_server:
        return True
    for scope in scopes:
        if "://" in scope:
            parts = urlsplit(scope)
            if f"{parts.scheme}://{parts.netloc}".lower() in MICROSOFT_RESOURCES:
                return True
    return False


def right_scopes(protocol: Protocol, grant: Grant) -> str:
    """The scopes an IMAP or POP3 token of Exchange Online is requested with."""
    if grant is Grant.CLIENT_CREDENTIALS:
        return APP_SCOPE
    return f"{_USER_SCOPE[protocol]} offline_access"


def wrong_audience(
    scopes: tuple[str, ...], protocol: Protocol, grant: Grant, *, microsoft_server: bool
) -> str | None:
    """A sentence naming the resource the token was for and the scopes to set, when the
    scopes do not ask Microsoft for an Exchange Online token for ``protocol``; else None."""
    if protocol not in _USER_SCOPE or not _microsoft(scopes, microsoft_server):
        return None
    resources = {checks.scope_resource(scope) for scope in scopes} - {None}
    if resources == {checks.EXCHANGE}:
        return None
    named = ", ".join(sorted(r for r in resources if r)) or "no resource"
    return (
        f"The token was requested for {named} (oauth.scopes: {' '.join(scopes)}), but the "
        f"{protocol.value.upper()} server accepts only tokens for {checks.EXCHANGE}: set "
        f"oauth.scopes to {right_scopes(protocol, grant)}."
    )
