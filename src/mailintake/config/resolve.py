"""A mailbox's effective settings: what it gave, else what its server or the defaults give.

A mailbox stores only the values its administrator set; everything left out follows the
authorization server (endpoints, scopes) or the protocol's defaults (host, port, folder), so
editing a server updates every mailbox that did not override it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailintake.config import clouds
from mailintake.config.matrix import DEFAULT_TENANT, GRAPH_SERVER, Grant, Need, Protocol, rule
from mailintake.config.models import MailboxSpec
from mailintake.config.servers import ServerDefinition, fill_tenant, graph_shared_scopes
from mailintake.enums import AfterImport

DEFAULT_GRAPH_URL = clouds.GLOBAL.graph_url
DEFAULT_POLL_INTERVAL = 60
DEFAULT_OUTPUT = "default"
DEFAULT_MAX_TRIES = 5  # tries of a message the server cannot give, then it is parked
DEFAULT_MAX_MESSAGE_SIZE = 150 * 1024 * 1024  # Graph's own limit for attachments (§3.10)
_SIZE = re.compile(r"^\s*(\d+)\s*([KMG]?B?)?\s*$", re.IGNORECASE)
_UNITS = {
    "": 1,
    "B": 1,
    "K": 1024,
    "KB": 1024,
    "M": 1024**2,
    "MB": 1024**2,
    "G": 1024**3,
    "GB": 1024**3,
}


def parse_size(value: int | str) -> int | None:
    """Bytes from ``52428800``, ``"50MB"``, ``"1 GB"``; None when it cannot be read."""
    if isinstance(value, int):
        return value if value > 0 else None
    found = _SIZE.match(value)
    if not found:
        return None
    number = int(found.group(1)) * _UNITS[(found.group(2) or "").upper()]
    return number if number > 0 else None


def max_tries(spec: MailboxSpec) -> int:
    """Tries of a message the server cannot give before it is parked (engine.retries)."""
    return spec.max_tries or DEFAULT_MAX_TRIES


def max_message_size(spec: MailboxSpec) -> int:
    if spec.max_message_size is None:
        return DEFAULT_MAX_MESSAGE_SIZE
    return parse_size(spec.max_message_size) or DEFAULT_MAX_MESSAGE_SIZE


# Mail hosts of the built-in providers (oauth-facts §2.1, §4.2), and of Microsoft's national
# clouds where Microsoft documents one (config.clouds: none for China).
PROVIDER_HOSTS: dict[str, dict[Protocol, str]] = {
    **{
        c.server: {Protocol.IMAP: c.mail_host, Protocol.POP3: c.mail_host}
        for c in clouds.CLOUDS
        if c.mail_host
    },
    "GOOGLE": {Protocol.IMAP: "imap.gmail.com", Protocol.POP3: "pop.gmail.com"},
}
_PORTS = {
    (Protocol.IMAP, "ssl"): 993,
    (Protocol.IMAP, "starttls"): 143,
    (Protocol.IMAP, "none"): 143,
    (Protocol.POP3, "ssl"): 995,
    (Protocol.POP3, "starttls"): 110,
    (Protocol.POP3, "none"): 110,
}


def server_for_host(host: str | None) -> str | None:
    for server, hosts in PROVIDER_HOSTS.items():
        if host and host.lower() in hosts.values():
            return server
    return None


def server_name(spec: MailboxSpec) -> str | None:
    """The mailbox's authorization server, given or implied (Graph: always MICROSOFT)."""
    if spec.oauth is not None and spec.oauth.authorization_server:
        return spec.oauth.authorization_server
    if spec.protocol is Protocol.GRAPH:
        return GRAPH_SERVER
    return server_for_host(spec.host)


def host(spec: MailboxSpec) -> str | None:
    if spec.host or spec.protocol is None or spec.protocol is Protocol.GRAPH:
        return spec.host
    name = server_name(spec)
    return PROVIDER_HOSTS.get(name or "", {}).get(spec.protocol)


def security(spec: MailboxSpec) -> str:
    return spec.security or "ssl"


def port(spec: MailboxSpec) -> int | None:
    if spec.port or spec.protocol is None or spec.protocol is Protocol.GRAPH:
        return spec.port
    return _PORTS[(spec.protocol, security(spec))]


def folder(spec: MailboxSpec) -> str | None:
    if spec.folder or spec.protocol is Protocol.POP3:
        return spec.folder
    return "inbox" if spec.protocol is Protocol.GRAPH else "INBOX"


def after_import(spec: MailboxSpec) -> AfterImport:
    if spec.after_import:
        return spec.after_import
    return AfterImport.KEEP if spec.protocol is Protocol.POP3 else AfterImport.MARK_READ


def default_scopes(
    server: ServerDefinition, protocol: Protocol, grant: Grant, *, shared: bool
) -> tuple[str, ...]:
    if grant is Grant.CLIENT_CREDENTIALS:
        return server.app_scopes.get(protocol, ())
    cloud = clouds.of_server(server.name)
    if shared and protocol is Protocol.GRAPH and cloud is not None:
        return graph_shared_scopes(cloud)
    return server.scopes.get(protocol, ())


def app_only(spec: MailboxSpec) -> bool:
    """Whether the mailbox signs in as the application (no signed-in user)."""
    return spec.oauth is not None and spec.oauth.grant_type is Grant.CLIENT_CREDENTIALS


def graph_url(spec: MailboxSpec) -> str:
    """Where Graph is reached: the mailbox's graph_url, else its cloud's Graph root ([N2])."""
    if spec.graph_url:
        return spec.graph_url
    cloud = clouds.of_server(server_name(spec)) or clouds.GLOBAL
    return cloud.graph_url


@dataclass(frozen=True)
class EffectiveOAuth:
    server: str
    grant: Grant
    authorization_endpoint: str | None
    token_endpoint: str | None
    device_authorization_endpoint: str | None
    scopes: tuple[str, ...]
    scopes_from_server: bool
    tenant_id: str | None
    client_id: str | None
    redirect_uri: str | None


def tenant(spec: MailboxSpec, server: ServerDefinition) -> str | None:
    given = spec.oauth.tenant_id if spec.oauth else None
    if not server.uses_tenant:
        return given
    if given:
        return given
    grant = spec.oauth.grant_type if spec.oauth else None
    if grant is not None and rule(grant, "tenant_id").need is Need.OPTIONAL:
        return DEFAULT_TENANT
    return None


def effective_oauth(spec: MailboxSpec, server: ServerDefinition) -> EffectiveOAuth:
    """The OAuth settings a token request uses. ``spec`` must have passed validation."""
    oauth = spec.oauth
    assert oauth is not None
    assert oauth.grant_type is not None
    assert spec.protocol is not None
    grant = oauth.grant_type
    tenant_value = tenant(spec, server) or DEFAULT_TENANT

    def endpoint(field: str, server_value: str | None) -> str | None:
        r = rule(grant, field)
        if r.need is Need.NOT_APPLICABLE and not r.populated:
            return None
        value = getattr(oauth, field) or server_value
        return fill_tenant(value, tenant_value)

    scopes = tuple(oauth.scopes) if oauth.scopes else ()
    from_server = not scopes
    if from_server:
        scopes = default_scopes(server, spec.protocol, grant, shared=bool(spec.shared_mailbox))
    return EffectiveOAuth(
        server=server.name,
        grant=grant,
        authorization_endpoint=endpoint("authorization_endpoint", server.authorization_endpoint),
        token_endpoint=endpoint("token_endpoint", server.token_endpoint),
        device_authorization_endpoint=endpoint(
            "device_authorization_endpoint", server.device_authorization_endpoint
        ),
        scopes=scopes,
        scopes_from_server=from_server,
        tenant_id=tenant(spec, server),
        client_id=oauth.client_id,
        redirect_uri=oauth.redirect_uri,
    )


def effective_dict(spec: MailboxSpec, server: ServerDefinition | None) -> dict[str, object]:
    """What the mailbox will use, every default filled in (shown by ``show --effective``)."""
    data: dict[str, object] = {
        "name": spec.name,
        "protocol": str(spec.protocol),
        "username": spec.username,
        "shared_mailbox": spec.shared_mailbox,
        "folder": folder(spec),
        "after_import": str(after_import(spec)),
        "poll_interval": spec.poll_interval or DEFAULT_POLL_INTERVAL,
        "push": spec.push or "auto",
        "output": spec.output or DEFAULT_OUTPUT,
        "enabled": spec.enabled is not False,
    }
    if spec.protocol is Protocol.GRAPH:
        data["graph_url"] = graph_url(spec)
    else:
        data.update(host=host(spec), port=port(spec), security=security(spec))
    if spec.oauth is not None and server is not None:
        oauth = effective_oauth(spec, server)
        data["oauth"] = {
            "authorization_server": oauth.server,
            "grant_type": str(oauth.grant),
            "authorization_endpoint": oauth.authorization_endpoint,
            "token_endpoint": oauth.token_endpoint,
            "device_authorization_endpoint": oauth.device_authorization_endpoint,
            "scopes": list(oauth.scopes),
            "scopes_from_server": oauth.scopes_from_server,
            "tenant_id": oauth.tenant_id,
            "client_id": oauth.client_id,
            "redirect_uri": oauth.redirect_uri,
        }
    return {k: v for k, v in data.items() if v is not None}
