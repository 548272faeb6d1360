"""Validation of a configuration document: every problem, one a line, as ``PATH: message``.

Used by ``validate``/``apply`` (whole files), by the CLI's ``servers``/``mailboxes`` commands
and by the REST API (one item at a time) so that every entry point applies the same rules.
Reading a document (YAML, JSON, the limits) is ``loader.py``; this module parses its items
into the models and runs the rules of ``rules.py`` over them, and the document's own checks
(sections, names used twice, ``${env:NAME}``, ``<redacted>``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError

from mailintake.config import resolve
from mailintake.config.alerts import SECTION as ALERT_SECTION
from mailintake.config.alerts import parse_alerts
from mailintake.config.loader import check_shape
from mailintake.config.models import (
    MAILBOX_SECRET_FIELDS,
    NAME_PATTERN,
    AlertsSpec,
    ConfigDocument,
    MailboxSpec,
    OutputSpec,
    ServerSpec,
)
from mailintake.config.problems import Problems, ProblemsAt
from mailintake.config.rules import check_mailbox, check_output, check_server, merged_server
from mailintake.config.servers import BUILTIN_SERVERS, ServerDefinition
from mailintake.errors import ConfigError

__all__ = [
    "REDACTED",
    "SECTIONS",
    "Context",
    "Problems",
    "SecretKey",
    "Validated",
    "document_of",
    "merged_server",
    "parse_item",
    "validate_document",
]

REDACTED = "<redacted>"
_ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
SECTIONS = ("authorization_servers", "outputs", "mailboxes", "alerts")
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
    # the alerts section; None when the document does not give one
    alerts: AlertsSpec | None = None


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
    for label, o, bad in output_items:
        checked_outputs.append(check_output(o, label, bad, ctx.base_dir, problems))
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
    alerts = _alerts(raw, ctx, problems, templates) if raw.get("alerts") is not None else None
    problems.raise_if_any()
    return Validated(
        servers=tuple(s for _, s, _ in server_items),
        outputs=tuple(checked_outputs),
        mailboxes=tuple(m for _, m, _ in mailbox_items),
        env_templates=templates,
        warnings=tuple(problems.warnings),
        alerts=alerts,
    )


def _alerts(
    raw: Mapping[str, Any], ctx: Context, problems: Problems, templates: dict[SecretKey, str]
) -> AlertsSpec | None:
    def expand(value: Any, label: str) -> tuple[Any, dict[str, str]]:
        found: dict[str, str] = {}
        return _expand_env(value, "", ctx.environ, ProblemsAt(problems, label), found), found

    alerts = parse_alerts(raw["alerts"], parse_item, expand, problems, templates)
    for channel in alerts.channels if alerts is not None else []:
        label = f"{ALERT_SECTION}[{channel.name}]"
        for path, value in channel.secrets().items():
            key = (ALERT_SECTION, channel.name, path)
            _check_redacted(key, value, f"{label}.{path}", ctx, problems)
    return alerts


def document_of(validated: Validated) -> ConfigDocument:
    return ConfigDocument(
        authorization_servers=list(validated.servers),
        outputs=list(validated.outputs),
        mailboxes=list(validated.mailboxes),
        alerts=validated.alerts,
    )
