"""Bearer-token validation against the sandbox identity provider, and Graph's mail permission
rules (api/user-list-messages.md, api/message-get.md, api/message-update.md "Permissions";
concepts/outlook-share-messages-folders.md for other users' mailboxes; oauth-facts §3.2, §3.4).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sandbox.graph.errors import GraphError, access_denied, invalid_token
from sandbox.graph.faults import Faults, folder_not_found, no_rights, odata_disabled
from sandbox.graph.model import Mailbox
from sandbox.idp import IdentityProvider

GRAPH = "https://graph.microsoft.com"
READ = frozenset({"Mail.ReadBasic", "Mail.Read", "Mail.ReadWrite"})
READ_BODY = frozenset({"Mail.Read", "Mail.ReadWrite"})
WRITE = frozenset({"Mail.ReadWrite"})
# Delegated permissions for mail the user can reach besides their own ("Mail.Read.Shared:
# read mail that the user can access, including the user's own and shared mail").
SHARED_READ = frozenset({"Mail.Read.Shared", "Mail.ReadWrite.Shared"})
SHARED_WRITE = frozenset({"Mail.ReadWrite.Shared"})
APP_READ = frozenset({"Mail.ReadBasic.All", "Mail.Read", "Mail.ReadWrite"})
# The sandbox IdP keeps no per-permission consent record: a delegated token requested with
# `https://graph.microsoft.com/.default` is taken to carry what a mail connector is consented.
DEFAULT_DELEGATED = frozenset({"Mail.ReadWrite", "Mail.ReadWrite.Shared"})


@dataclass(frozen=True)
class Principal:
    client_id: str
    username: str | None  # None: an app-only token
    permissions: frozenset[str]  # delegated scopes or application roles

    @property
    def app_only(self) -> bool:
        return self.username is None


def authenticate(idp: IdentityProvider, header: str | None, resource: str = GRAPH) -> Principal:
    """The principal of a bearer token meant for ``resource``: the Graph root this emulator
    stands in for (a national cloud's accepts only its own tokens: concepts/deployments.md
    "Access tokens acquired for a national cloud deployment are not interchangeable")."""
    authorize_uri = f"{idp.base_url or 'https://login.microsoftonline.com'}/common/oauth2/authorize"
    scheme, _, token = (header or "").strip().partition(" ")
    token = token.strip()
    if not header or scheme.lower() != "bearer" or not token:
        raise invalid_token("Access token is empty.", authorize_uri)
    with idp.lock:
        record = idp.access_tokens.get(token)
    if record is None:
        raise invalid_token(
            "IDX14100: JWT is not well formed, there are no dots (.).", authorize_uri
        )
    if record.expires_at <= time.time():
        raise invalid_token("Lifetime validation failed, the token is expired.", authorize_uri)
    if record.resource.rstrip("/") != resource:
        raise invalid_token("Access token validation failure. Invalid audience.", authorize_uri)
    if record.username is None:
        return Principal(record.client_id, None, frozenset(record.roles))
    scopes = {s.removeprefix(f"{resource}/") for s in record.scope.split()}
    if ".default" in scopes:
        scopes |= DEFAULT_DELEGATED
    return Principal(record.client_id, record.username, frozenset(scopes))


def authorize(
    principal: Principal,
    box: Mailbox,
    *,
    write: bool,
    body: bool,
    faults: Faults | None = None,
) -> None:
    """Raises 403 ErrorAccessDenied unless the token may do this in this mailbox (or the
    answers ``faults`` puts in its place)."""
    have = principal.permissions
    if principal.app_only:
        needed = WRITE if write else (READ_BODY if body else APP_READ)
        if not have & needed:
            raise access_denied()
        if faults is not None and not faults.allowed(principal.client_id, box.address):
            raise odata_disabled()
        return
    assert principal.username is not None
    own = principal.username.lower() == box.address.lower()
    if own:
        needed = (WRITE | SHARED_WRITE) if write else ((READ_BODY if body else READ) | SHARED_READ)
        if not have & needed:
            raise access_denied()
        return
    # Another user's (or a shared) mailbox: Exchange access and a .Shared permission.
    user = principal.username.lower()
    if user not in box.delegates:
        if faults is not None and faults.no_rights_as:
            raise no_rights(faults.no_rights_as)
        raise access_denied()
    if not have & (SHARED_WRITE if write else SHARED_READ):
        raise access_denied()
    if user in box.no_folder_rights:
        raise folder_not_found()
    if write and user in box.read_only:
        raise access_denied()


def me_without_user() -> GraphError:
    return GraphError(
        400, "BadRequest", "/me request is only valid with delegated authentication flow."
    )
