"""What the mailbox form shows for its OAuth settings, read from the seed's matrix: which
grants a protocol offers, and each field's need for the chosen grant."""

from __future__ import annotations

from dataclasses import dataclass

from mailintake.config import clouds, resolve
from mailintake.config.clouds import is_microsoft_server
from mailintake.config.matrix import (
    FIELD_PATH,
    FIELDS,
    GRANTS,
    GRAPH_SERVER,
    Grant,
    Need,
    Protocol,
    rule,
    supported_grants,
)
from mailintake.config.servers import ServerDefinition

LABELS = {
    "authorization_endpoint": "Authorization endpoint URL",
    "token_endpoint": "Token endpoint URL",
    "device_authorization_endpoint": "Device authorization endpoint URL",
    "scopes": "Scopes",
    "tenant_id": "Tenant ID",
    "client_id": "Client ID (Application ID)",
    "client_secret": "Client secret",
    "redirect_uri": "Redirect URI",
    "password": "Password",
}
SECRETS = ("client_secret", "password")
NEED_LABELS = {Need.MANDATORY: "required", Need.OPTIONAL: "optional", Need.NOT_APPLICABLE: "n/a"}


@dataclass(frozen=True)
class FieldView:
    key: str  # the form field's name: the dotted path in the configuration file
    label: str
    need: str
    need_label: str
    note: str
    secret: bool
    populated: bool


def protocol_of(value: str | None) -> Protocol:
    try:
        return Protocol(value or "imap")
    except ValueError:
        return Protocol.IMAP


def grants_for(protocol: Protocol) -> list[tuple[str, str]]:
    """(value, label) of the grants the protocol supports; the others are not offered."""
    return [(g.value, GRANTS[g].label) for g in supported_grants(protocol)]


def grant_of(value: str | None, protocol: Protocol) -> Grant:
    offered = supported_grants(protocol)
    try:
        chosen = Grant(value or "")
    except ValueError:
        chosen = Grant.AUTHORIZATION_CODE
    return chosen if chosen in offered else offered[0]


def server_of(
    value: str | None, protocol: Protocol, servers: dict[str, ServerDefinition]
) -> ServerDefinition:
    if protocol is Protocol.GRAPH and not is_microsoft_server(value):
        return servers[GRAPH_SERVER]  # Graph signs in to a Microsoft cloud
    return servers.get(value or "") or servers[GRAPH_SERVER]


def graph_servers(servers: dict[str, ServerDefinition]) -> list[str]:
    """The servers a Graph mailbox may pick: Microsoft's, one per cloud (config.clouds)."""
    return [c.server for c in clouds.CLOUDS if c.server in servers]


def graph_url_default(server: ServerDefinition) -> str:
    return (clouds.of_server(server.name) or clouds.GLOBAL).graph_url


def fields(grant: Grant, server: ServerDefinition) -> list[FieldView]:
    views = []
    for f in FIELDS:
        if f == "username":
            continue  # asked for with the mailbox settings
        r = rule(grant, f)
        need, note = r.need, r.note
        if f == "tenant_id" and not server.uses_tenant and need is Need.MANDATORY:
            need = Need.OPTIONAL
            note = f"optional and unused: {server.name}'s endpoints have no {{tenant}}"
        if need is Need.NOT_APPLICABLE:
            note = f"not applicable to {GRANTS[grant].label}"
        views.append(
            FieldView(
                key=FIELD_PATH[f],
                label=LABELS[f],
                need=need.value,
                need_label=NEED_LABELS[need],
                note=note,
                secret=f in SECRETS,
                populated=r.populated and need is not Need.NOT_APPLICABLE,
            )
        )
    return views


def populated_values(
    server: ServerDefinition, protocol: Protocol, grant: Grant, *, shared: bool
) -> dict[str, str]:
    """What the authorization server fills in, by form field."""
    out: dict[str, str] = {}
    for f in ("authorization_endpoint", "token_endpoint", "device_authorization_endpoint"):
        r = rule(grant, f)
        value = getattr(server, f)
        if r.populated and r.need is not Need.NOT_APPLICABLE and value:
            out[FIELD_PATH[f]] = value
    r = rule(grant, "scopes")
    if r.populated and r.need is not Need.NOT_APPLICABLE:
        scopes = resolve.default_scopes(server, protocol, grant, shared=shared)
        if scopes:
            out[FIELD_PATH["scopes"]] = " ".join(scopes)
    return out
