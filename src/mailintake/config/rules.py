"""The rules of one item: an authorization server, an output, a mailbox (the seed's matrix,
population from the authorization server, cross-references, the value checks).

Each check adds ``PATH: message`` lines to a ``Problems``; ``validate.py`` runs them over a
whole document. The matrix comes from ``matrix.py``; value checks from ``checks.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from mailintake.config import checks, clouds, resolve
from mailintake.config.clouds import Cloud, is_microsoft_server
from mailintake.config.matrix import (
    FIELD_PATH,
    FIELDS,
    GRAPH_SERVER,
    SUPPORT,
    Grant,
    Need,
    Protocol,
    rule,
    supported_grants,
)
from mailintake.config.models import MailboxSpec, OAuthSpec, OutputSpec, ServerSpec
from mailintake.config.problems import Problems
from mailintake.config.servers import (
    BUILTIN_SERVERS,
    GOOGLE_TOKEN_HOSTS,
    NATIONAL_SERVER_NAMES,
    ServerDefinition,
    server_from_dict,
)
from mailintake.enums import AfterImport


def merged_server(spec: ServerSpec, base: ServerDefinition | None) -> ServerDefinition:
    """A file/API entry for a server: a built-in's entry edits it field by field."""
    data: dict[str, Any] = base.to_dict() if base is not None and base.builtin else {}
    given = spec.model_dump(exclude_none=True)
    for key in ("scopes", "app_scopes"):
        if key in given:
            data[key] = {**data.get(key, {}), **given.pop(key)}
    data.update(given)
    return server_from_dict(data, builtin=spec.name in BUILTIN_SERVERS)


def check_server(spec: ServerSpec, label: str, problems: Problems) -> ServerDefinition:
    server = merged_server(spec, BUILTIN_SERVERS.get(spec.name))
    if not server.token_endpoint:
        problems.add(
            f"{label}.token_endpoint",
            "required (or fill the endpoints from the issuer: mailintake servers discover)",
        )
    for key in (
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "device_authorization_endpoint",
    ):
        value = getattr(spec, key)
        if value and (msg := checks.check_endpoint(value, checks.CLIENT_CREDENTIALS)):
            problems.add(f"{label}.{key}", msg)
    for key in ("scopes", "app_scopes"):
        scopes = getattr(spec, key)
        if scopes is not None and scopes.graph is not None and not is_microsoft_server(spec.name):
            problems.warn(
                f"{label}.{key}.graph",
                f"unused: Microsoft Graph mailboxes always use the {GRAPH_SERVER} "
                "authorization server (or that of a national cloud: "
                f"{', '.join(NATIONAL_SERVER_NAMES)})",
            )
    return server


def check_output(
    spec: OutputSpec, label: str, bad: set[str], base_dir: Path | None, problems: Problems
) -> OutputSpec:
    """The output with its folder made absolute; ``bad``: the fields whose values were
    refused already (not reported again as missing)."""
    if spec.type == "folder":
        if spec.url is not None:
            problems.add(f"{label}.url", "not applicable to type folder (remove it)")
        if spec.headers is not None:
            problems.add(f"{label}.headers", "not applicable to type folder (remove it)")
        if spec.path is None:
            if "path" not in bad:
                problems.add(f"{label}.path", "required for type folder")
            return spec
        path = Path(spec.path).expanduser()
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        return spec.model_copy(update={"path": str(path.resolve())})
    if spec.path is not None:
        problems.add(f"{label}.path", "not applicable to type webhook (remove it)")
    if spec.url is None:
        if "url" not in bad:
            problems.add(f"{label}.url", "required for type webhook")
    elif msg := checks.check_endpoint(spec.url, checks.WEBHOOK_CREDENTIALS):
        problems.add(f"{label}.url", msg)
    return spec


def _given(value: Any) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    return value not in (None, "", [])


def microsoft_cloud(server: ServerDefinition, token_endpoint: str | None) -> Cloud | None:
    """The Microsoft cloud the server signs in to (by its name, else its token endpoint's
    host); None when it is not Microsoft's."""
    from urllib.parse import urlsplit

    host = urlsplit((token_endpoint or "").replace("{tenant}", "t")).hostname
    return clouds.cloud_for(server.name, host)


def _server_value(
    f: str, server: ServerDefinition, spec: MailboxSpec, grant: Grant
) -> tuple[str, ...] | str | None:
    if f == "scopes":
        assert spec.protocol is not None
        return resolve.default_scopes(
            server, spec.protocol, grant, shared=bool(spec.shared_mailbox)
        )
    if f in ("authorization_endpoint", "token_endpoint", "device_authorization_endpoint"):
        value: str | None = getattr(server, f)
        return value
    return None


def check_mailbox(
    spec: MailboxSpec,
    label: str,
    bad: set[str],
    servers: Mapping[str, ServerDefinition],
    outputs: Mapping[str, str],
    problems: Problems,
) -> None:
    p = label
    proto = spec.protocol
    if proto is None and "protocol" not in bad:
        problems.add(f"{p}.protocol", "required: imap, pop3 or graph")
    if not spec.username and "username" not in bad:
        problems.add(
            f"{p}.username", "required (the mailbox address, or the account that signs in)"
        )

    if proto is Protocol.GRAPH:
        for key in ("host", "port", "security"):
            if getattr(spec, key) is not None:
                problems.add(
                    f"{p}.{key}", "not used by protocol graph (Graph is reached at graph_url)"
                )
        if spec.graph_url and (msg := checks.check_endpoint(spec.graph_url)):
            problems.add(f"{p}.graph_url", msg)
    elif proto is not None:
        if spec.graph_url is not None:
            problems.add(f"{p}.graph_url", "only used by protocol graph (remove it)")
        host = resolve.host(spec)
        if not host:
            if "host" not in bad:
                problems.add(f"{p}.host", f"required: the {proto.value.upper()} server's host name")
        elif msg := checks.check_host(host):
            problems.add(f"{p}.host", msg)
        elif resolve.security(spec) == "none" and not checks.is_loopback(host):
            problems.add(
                f"{p}.security",
                "none sends the token in clear and is only allowed for 127.0.0.1/localhost; "
                "use ssl or starttls",
            )
    if spec.max_message_size is not None and resolve.parse_size(spec.max_message_size) is None:
        problems.add(
            f"{p}.max_message_size",
            f"'{spec.max_message_size}' is not a size: give bytes or e.g. 50MB, 1GB",
        )
    if proto is Protocol.POP3:
        if spec.folder is not None:
            problems.add(f"{p}.folder", "POP3 has no folders (remove it)")
        if spec.after_import in (AfterImport.MARK_READ, AfterImport.MOVE):
            problems.add(
                f"{p}.after_import",
                f"POP3 cannot {spec.after_import.replace('_', ' ')}: use delete or keep",
            )
    if resolve.after_import(spec) is AfterImport.MOVE and proto is not Protocol.POP3:
        if not spec.move_to and "move_to" not in bad:
            problems.add(f"{p}.move_to", "required with after_import: move")
    elif spec.move_to is not None:
        problems.add(f"{p}.move_to", "only used with after_import: move (remove it)")
    out = spec.output or resolve.DEFAULT_OUTPUT
    if out not in outputs and "output" not in bad:
        known = ", ".join(sorted(outputs)) or "none"
        problems.add(f"{p}.output", f"unknown output '{out}' (known: {known})")
    _check_proxy(spec, p, problems)
    if proto is not None:
        _check_oauth(spec, p, bad, servers, problems)


def _check_proxy(spec: MailboxSpec, p: str, problems: Problems) -> None:
    proxy = spec.proxy
    if proxy is None:
        return
    if not proxy.address:
        problems.add(f"{p}.proxy.address", "required when a proxy is configured")
    elif msg := checks.check_proxy_address(proxy.address):
        problems.add(f"{p}.proxy.address", msg)
    if _given(proxy.password) and not proxy.username:
        problems.add(f"{p}.proxy.username", "required with proxy.password")


def _check_oauth(
    spec: MailboxSpec,
    p: str,
    bad: set[str],
    servers: Mapping[str, ServerDefinition],
    problems: Problems,
) -> None:
    proto = spec.protocol
    assert proto is not None
    oauth = spec.oauth
    if oauth is None:
        if "oauth" not in bad:
            problems.add(f"{p}.oauth", "required: every mailbox signs in with OAuth 2.0")
        return
    if (
        proto is Protocol.GRAPH
        and oauth.authorization_server
        and not is_microsoft_server(oauth.authorization_server)
    ):
        problems.add(
            f"{p}.oauth.authorization_server",
            f"Microsoft Graph always uses the {GRAPH_SERVER} authorization server, or that of "
            f"a national cloud ({', '.join(NATIONAL_SERVER_NAMES)})",
        )
        return
    name = resolve.server_name(spec)
    server: ServerDefinition | None = None
    if name is None:
        if "oauth.authorization_server" not in bad:
            problems.add(
                f"{p}.oauth.authorization_server",
                "required: " + ", ".join(sorted(servers)) + " or a server you add",
            )
    elif name not in servers:
        problems.add(
            f"{p}.oauth.authorization_server",
            f"unknown authorization server '{name}' (known: {', '.join(sorted(servers))})",
        )
    else:
        server = servers[name]
    grant = oauth.grant_type
    choices = ", ".join(g.value for g in supported_grants(proto))
    if grant is None:
        if "oauth.grant_type" not in bad:
            problems.add(f"{p}.oauth.grant_type", f"required for protocol {proto.value}: {choices}")
        return
    support = SUPPORT[(grant, proto)]
    if not support.supported:
        problems.add(
            f"{p}.oauth.grant_type",
            f"{grant.value} is not supported for protocol {proto.value}: {support.note}",
        )
        return
    if server is None:
        return
    _check_matrix(spec, p, bad, server, grant, problems)
    _check_certificate(oauth, p, grant, problems)
    _check_known_ends(oauth, p, server, problems)
    _check_values(spec, p, server, grant, problems)


def _check_matrix(
    spec: MailboxSpec,
    p: str,
    bad: set[str],
    server: ServerDefinition,
    grant: Grant,
    problems: Problems,
) -> None:
    oauth = spec.oauth
    assert oauth is not None
    for f in FIELDS:
        if f == "username":
            continue  # required for every grant; checked with the mailbox
        if f == "tenant_id" and not server.uses_tenant:
            continue  # optional and unused when the server's endpoints have no {tenant}
        r = rule(grant, f)
        path = f"{p}.{FIELD_PATH[f]}"
        given = _given(getattr(oauth, f))
        if r.need is Need.NOT_APPLICABLE and given:
            problems.add(path, f"not applicable to grant_type {grant.value} (remove it)")
        elif r.need is Need.MANDATORY and not given and FIELD_PATH[f] not in bad:
            if f == "client_secret" and oauth.client_certificate:
                continue  # certificate credentials stand in for the secret
            if r.populated:
                if _server_value(f, server, spec, grant):
                    continue
                problems.add(
                    path,
                    f"required for grant_type {grant.value} (authorization server "
                    f"{server.name} has none to fill it in)",
                )
            else:
                problems.add(path, f"required for grant_type {grant.value}")


CERTIFICATE_GRANTS = frozenset({Grant.CLIENT_CREDENTIALS, Grant.AUTHORIZATION_CODE, Grant.PASSWORD})


def _check_certificate(oauth: OAuthSpec, p: str, grant: Grant, problems: Problems) -> None:
    """Certificate credentials (private_key_jwt, oauth-facts §1.4): a mailintake extension
    that replaces the client secret of a confidential client."""
    path = f"{p}.oauth.client_certificate"
    if not oauth.client_certificate:
        for extra in ("client_certificate_key", "client_certificate_password"):
            if _given(getattr(oauth, extra)):
                problems.add(f"{p}.oauth.{extra}", "only used with client_certificate (remove it)")
        return
    if grant not in CERTIFICATE_GRANTS:
        problems.add(
            path,
            f"not applicable to grant_type {grant.value} (a public client flow; remove it)",
        )
        return
    if _given(oauth.client_secret):
        problems.add(path, "give client_secret or client_certificate, not both")
    for key in ("client_certificate", "client_certificate_key"):
        value = getattr(oauth, key)
        if not value:
            continue
        file = Path(value).expanduser()
        if not file.is_absolute():
            problems.add(f"{p}.oauth.{key}", f"'{value}' must be an absolute path")
        elif not file.is_file():
            problems.add(f"{p}.oauth.{key}", f"no such file: {file}")


def _check_known_ends(
    oauth: OAuthSpec, p: str, server: ServerDefinition, problems: Problems
) -> None:
    """Settings health warns ahead of: the client secret's expiry date applies where a
    client secret is given; the publishing status to Google's apps only."""
    if oauth.client_secret_expires is not None and not _given(oauth.client_secret):
        problems.add(f"{p}.oauth.client_secret_expires", "only used with client_secret (remove it)")
    if oauth.publishing_status is not None:
        from urllib.parse import urlsplit

        endpoint = (oauth.token_endpoint or server.token_endpoint or "").replace("{tenant}", "t")
        if server.name != "GOOGLE" and urlsplit(endpoint).hostname not in GOOGLE_TOKEN_HOSTS:
            problems.add(
                f"{p}.oauth.publishing_status",
                "only used with Google's authorization server (GOOGLE; remove it)",
            )


def _check_values(
    spec: MailboxSpec,
    p: str,
    server: ServerDefinition,
    grant: Grant,
    problems: Problems,
) -> None:
    assert spec.protocol is not None
    oauth = spec.oauth
    assert oauth is not None
    for key in ("authorization_endpoint", "token_endpoint", "device_authorization_endpoint"):
        value = getattr(oauth, key)
        if value and (msg := checks.check_endpoint(value, checks.CLIENT_CREDENTIALS)):
            problems.add(f"{p}.oauth.{key}", msg)
    token_endpoint = oauth.token_endpoint or server.token_endpoint
    cloud = microsoft_cloud(server, token_endpoint)
    microsoft = cloud is not None
    if oauth.redirect_uri and (
        msg := checks.check_redirect_uri(oauth.redirect_uri, microsoft=microsoft)
    ):
        problems.add(f"{p}.oauth.redirect_uri", msg)
    if (
        server.uses_tenant
        and oauth.tenant_id
        and (msg := checks.check_tenant(oauth.tenant_id, grant))
    ):
        problems.add(f"{p}.oauth.tenant_id", msg)
    if microsoft and rule(grant, "scopes").need is not Need.NOT_APPLICABLE:
        scopes = oauth.scopes or list(_server_value("scopes", server, spec, grant) or ())
        suffix = "" if oauth.scopes else f" (filled in from authorization server {server.name})"
        for msg in checks.check_microsoft_scopes(scopes, spec.protocol, grant, cloud):
            problems.add(f"{p}.oauth.scopes", msg + suffix)
