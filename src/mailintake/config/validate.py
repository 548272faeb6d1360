"""Validation of a configuration document: every problem, one a line, as ``PATH: message``.

Used by ``validate``/``apply`` (whole files), by the CLI's ``servers``/``mailboxes`` commands
and by the REST API (one item at a time) so that every entry point applies the same rules.
The matrix rules come from ``matrix.py``; value checks from ``checks.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError

from mailintake.config import checks, resolve
from mailintake.config.loader import check_shape
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
from mailintake.config.models import (
    MAILBOX_SECRET_FIELDS,
    NAME_PATTERN,
    ConfigDocument,
    MailboxSpec,
    OAuthSpec,
    OutputSpec,
    ServerSpec,
)
from mailintake.errors import ConfigError
from mailintake.oauth.servers import (
    BUILTIN_SERVERS,
    MICROSOFT_LOGIN_HOSTS,
    ServerDefinition,
    server_from_dict,
)

REDACTED = "<redacted>"
_ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
SECTIONS = ("authorization_servers", "outputs", "mailboxes")
MAILBOX_SECRETS = MAILBOX_SECRET_FIELDS

SecretKey = tuple[str, str, str]  # (section, item name, field path)
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Context:
    """What the document is validated against: what exists already, and the environment."""

    servers: Mapping[str, ServerDefinition] = field(default_factory=lambda: dict(BUILTIN_SERVERS))
    outputs: Mapping[str, str] = field(default_factory=dict)  # name -> type
    stored_secrets: frozenset[SecretKey] = frozenset()
    environ: Mapping[str, str] = field(default_factory=dict)
    base_dir: Path | None = None


@dataclass(frozen=True)
class Validated:
    servers: tuple[ServerSpec, ...]
    outputs: tuple[OutputSpec, ...]
    mailboxes: tuple[MailboxSpec, ...]
    # secrets written as ${env:NAME} (or with such references inside): their template
    env_templates: Mapping[SecretKey, str]
    # PATH: message lines about what is valid but has no effect
    warnings: tuple[str, ...] = ()


class Problems:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.warnings: list[str] = []

    def add(self, path: str, message: str) -> None:
        line = f"{path}: {message}"
        if line not in self.items:
            self.items.append(line)

    def warn(self, path: str, message: str) -> None:
        """Something that does not make the document invalid, but that users should know."""
        line = f"{path}: {message}"
        if line not in self.warnings:
            self.warnings.append(line)

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)


# --- parsing -------------------------------------------------------------------------------


def _loc_path(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required"
    if kind == "string_pattern_mismatch":
        return name_problem(error.get("input"))
    return str(error["msg"]).replace("Input should be", "must be")


def name_problem(value: Any) -> str:
    """Why ``value`` is not a name (servers, outputs, mailboxes)."""
    if isinstance(value, str) and value.startswith(".") and len(value) <= 64:
        if value in (".", ".."):
            return f"'{value}' is not a name: it means a folder ('.' this one, '..' its parent)"
        return "must not start with '.' (a name is also a folder name, which would be hidden)"
    return "must be 1 to 64 letters, digits, '.', '_' or '-', not starting with '.'"


def _drop(data: Any, loc: tuple[int | str, ...]) -> bool:
    """Remove the value at ``loc`` from nested dicts/lists; False if it cannot be removed."""
    if not loc:
        return False
    target = data
    for part in loc[:-1]:
        try:
            target = target[part]
        except (KeyError, IndexError, TypeError):
            return False
    last = loc[-1]
    if isinstance(target, dict) and last in target:
        del target[last]
        return True
    if isinstance(target, list) and isinstance(last, int) and last < len(target):
        del target[last]
        return True
    return False


def _copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy(v) for v in data]
    return data


def parse_item(
    model: type[M], data: Any, label: str, problems: Problems
) -> tuple[M | None, set[str]]:
    """Parse one entry, reporting every field error; drops bad values to check the rest.

    Returns the model (``None`` if even that fails) and the dotted paths that had errors.
    """
    if not isinstance(data, dict):
        problems.add(label, "must be a mapping of fields")
        return None, set()
    work = _copy(data)
    bad: set[str] = set()
    for _ in range(8):
        try:
            return model.model_validate(work), bad
        except ValidationError as exc:
            dropped = False
            for error in exc.errors():
                loc = tuple(error["loc"])
                dotted = ".".join(str(p) for p in loc if isinstance(p, str))
                if error["type"] == "missing" and dotted in bad:
                    continue  # its value was dropped above: its problem is reported
                problems.add(label + _loc_path(loc), _message(error))
                bad.add(dotted)
                dropped = _drop(work, loc) or dropped
            if not dropped:
                return None, bad
    return None, bad


def _expand_env(
    value: Any,
    path: str,
    environ: Mapping[str, str],
    problems: Problems,
    found: dict[str, str],
) -> Any:
    """Replace ``${env:NAME}`` references; ``found`` maps field paths to their template."""
    if isinstance(value, dict):
        return {
            k: _expand_env(v, f"{path}.{k}" if path else str(k), environ, problems, found)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_expand_env(v, path, environ, problems, found) for v in value]
    if not isinstance(value, str) or "${env:" not in value:
        return value
    missing = [n for n in _ENV_REF.findall(value) if n not in environ]
    for name in missing:
        problems.add(path, f"environment variable {name} is not set")
    if missing:
        return value
    found[path] = value
    return _ENV_REF.sub(lambda m: environ[m.group(1)], value)


def _item_label(section: str, data: Any, index: int) -> str:
    name = data.get("name") if isinstance(data, dict) else None
    if isinstance(name, str) and re.match(NAME_PATTERN, name):
        return f"{section}[{name}]"
    return f"{section}[{index}]"


# --- semantic checks -------------------------------------------------------------------------


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
        if scopes is not None and scopes.graph is not None and spec.name != GRAPH_SERVER:
            problems.warn(
                f"{label}.{key}.graph",
                f"unused: Microsoft Graph mailboxes always use the {GRAPH_SERVER} "
                "authorization server",
            )
    return server


def check_output(spec: OutputSpec, label: str, ctx: Context, problems: Problems) -> OutputSpec:
    if spec.type == "folder":
        if spec.url is not None:
            problems.add(f"{label}.url", "not applicable to type folder (remove it)")
        if spec.headers is not None:
            problems.add(f"{label}.headers", "not applicable to type folder (remove it)")
        if spec.path is None:
            problems.add(f"{label}.path", "required for type folder")
            return spec
        path = Path(spec.path).expanduser()
        if not path.is_absolute():
            path = (ctx.base_dir or Path.cwd()) / path
        return spec.model_copy(update={"path": str(path.resolve())})
    if spec.path is not None:
        problems.add(f"{label}.path", "not applicable to type webhook (remove it)")
    if spec.url is None:
        problems.add(f"{label}.url", "required for type webhook")
    elif msg := checks.check_endpoint(spec.url, checks.WEBHOOK_CREDENTIALS):
        problems.add(f"{label}.url", msg)
    return spec


def _given(value: Any) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    return value not in (None, "", [])


def is_microsoft(server: ServerDefinition, token_endpoint: str | None) -> bool:
    if server.name == GRAPH_SERVER:
        return True
    from urllib.parse import urlsplit

    host = urlsplit((token_endpoint or "").replace("{tenant}", "t")).hostname
    return host in MICROSOFT_LOGIN_HOSTS


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
        if spec.after_import in ("mark_read", "move"):
            problems.add(
                f"{p}.after_import",
                f"POP3 cannot {spec.after_import.replace('_', ' ')}: use delete or keep",
            )
    if resolve.after_import(spec) == "move" and proto is not Protocol.POP3:
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
        and oauth.authorization_server != GRAPH_SERVER
    ):
        problems.add(
            f"{p}.oauth.authorization_server",
            f"Microsoft Graph always uses the {GRAPH_SERVER} authorization server",
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


def _check_values(
    spec: MailboxSpec,
    p: str,
    server: ServerDefinition,
    grant: Grant,
    problems: Problems,
) -> None:
    oauth = spec.oauth
    assert oauth is not None
    assert spec.protocol is not None
    for key in ("authorization_endpoint", "token_endpoint", "device_authorization_endpoint"):
        value = getattr(oauth, key)
        if value and (msg := checks.check_endpoint(value, checks.CLIENT_CREDENTIALS)):
            problems.add(f"{p}.oauth.{key}", msg)
    token_endpoint = oauth.token_endpoint or server.token_endpoint
    microsoft = is_microsoft(server, token_endpoint)
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
        for msg in checks.check_microsoft_scopes(scopes, spec.protocol, grant):
            problems.add(f"{p}.oauth.scopes", msg + suffix)


# --- the document ----------------------------------------------------------------------------


def _section_items(
    raw: Mapping[str, Any], section: str, problems: Problems
) -> list[tuple[str, Any]]:
    value = raw.get(section)
    if value is None:
        return []
    if not isinstance(value, list):
        problems.add(section, "must be a list")
        return []
    labelled = [(_item_label(section, item, i), item) for i, item in enumerate(value)]
    seen: set[str] = set()
    for label, item in labelled:
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str):
            if name in seen:
                problems.add(label, f"the name '{name}' is used twice in {section}")
            seen.add(name)
    return labelled


def _check_redacted(
    key: SecretKey, value: SecretStr | None, path: str, ctx: Context, problems: Problems
) -> None:
    if value is not None and value.get_secret_value() == REDACTED and key not in ctx.stored_secrets:
        problems.add(
            path,
            "is <redacted> (from an export) but no value is stored: give the value or ${env:NAME}",
        )


def validate_document(raw: Any, ctx: Context) -> Validated:
    """Validate a whole document; raises ConfigError listing every problem."""
    check_shape(raw, "(document)")
    problems = Problems()
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(["(document): must be a mapping with " + ", ".join(SECTIONS)])
    for key in raw:
        if key not in SECTIONS:
            problems.add(str(key), "unknown section (expected " + ", ".join(SECTIONS) + ")")

    templates: dict[SecretKey, str] = {}

    def parse(section: str, model: type[M]) -> list[tuple[str, M, set[str]]]:
        parsed: list[tuple[str, M, set[str]]] = []
        for label, item in _section_items(raw, section, problems):
            found: dict[str, str] = {}
            expanded = _expand_env(item, "", ctx.environ, ProblemsAt(problems, label), found)
            spec, bad = parse_item(model, expanded, label, problems)
            if spec is not None:
                name = getattr(spec, "name")  # noqa: B009
                for path, template in found.items():
                    templates[(section, name, path)] = template
                parsed.append((label, spec, bad))
        return parsed

    server_items = parse("authorization_servers", ServerSpec)
    output_items = parse("outputs", OutputSpec)
    mailbox_items = parse("mailboxes", MailboxSpec)

    servers = dict(ctx.servers)
    for label, s, _ in server_items:
        servers[s.name] = check_server(s, label, problems)
    outputs = {resolve.DEFAULT_OUTPUT: "folder", **ctx.outputs}
    checked_outputs: list[OutputSpec] = []
    for label, o, _ in output_items:
        checked_outputs.append(check_output(o, label, ctx, problems))
        outputs[o.name] = o.type
        for header, value in (o.headers or {}).items():
            key = ("outputs", o.name, f"headers.{header}")
            _check_redacted(key, value, f"{label}.headers.{header}", ctx, problems)
    for label, m, bad in mailbox_items:
        check_mailbox(m, label, bad, servers, outputs, problems)
        for path in MAILBOX_SECRETS:
            section, _, attr = path.partition(".")
            holder = getattr(m, section)
            secret = getattr(holder, attr) if holder is not None else None
            _check_redacted(("mailboxes", m.name, path), secret, f"{label}.{path}", ctx, problems)
    problems.raise_if_any()
    return Validated(
        servers=tuple(s for _, s, _ in server_items),
        outputs=tuple(checked_outputs),
        mailboxes=tuple(m for _, m, _ in mailbox_items),
        env_templates=templates,
        warnings=tuple(problems.warnings),
    )


class ProblemsAt(Problems):
    """Problems whose paths are relative to an item's label."""

    def __init__(self, parent: Problems, label: str) -> None:
        super().__init__()
        self._parent = parent
        self._label = label

    def add(self, path: str, message: str) -> None:
        self._parent.add(f"{self._label}.{path}" if path else self._label, message)


def document_of(validated: Validated) -> ConfigDocument:
    return ConfigDocument(
        authorization_servers=list(validated.servers),
        outputs=list(validated.outputs),
        mailboxes=list(validated.mailboxes),
    )
