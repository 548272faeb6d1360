"""The ``alerts:`` section of a configuration document: where alerts go, and which.

One section per document (not a list of items): options that choose which conditions alert
and how often a reminder may follow, and ``channels``, each a webhook or an email (SMTP)
destination named like the other items. A channel's ``password`` and ``headers`` are secrets,
stored encrypted as the secret fields of mailboxes and outputs are.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mailintake.config import checks
from mailintake.config.models import NAME_PATTERN, AlertsSpec, ChannelSpec
from mailintake.config.problems import Problems

DAY = 86400
SMTP_PORTS = {"starttls": 587, "tls": 465, "none": 25}
SECTION = "alerts.channels"  # the section of a channel's secrets (validate.SecretKey)
WEBHOOK_FIELDS = ("url", "headers")
EMAIL_FIELDS = ("host", "port", "security", "username", "password", "sender", "to", "ca_file")

Parse = Callable[[type[BaseModel], Any, str, Problems], tuple[BaseModel | None, set[str]]]
Expand = Callable[[Any, str], tuple[Any, dict[str, str]]]


def channel_label(item: Any, index: int) -> str:
    name = item.get("name") if isinstance(item, dict) else None
    if isinstance(name, str) and re.match(NAME_PATTERN, name):
        return f"{SECTION}[{name}]"
    return f"{SECTION}[{index}]"


def parse_alerts(
    raw: Any,
    parse: Parse,
    expand: Expand,
    problems: Problems,
    templates: dict[tuple[str, str, str], str],
) -> AlertsSpec | None:
    """The ``alerts`` section parsed, each channel labelled by its name; ``templates``
    receives the ``${env:NAME}`` forms of the channels' values."""
    if not isinstance(raw, dict):
        problems.add("alerts", "must be a mapping (kinds, states, reminder_interval, channels)")
        return None
    options = {k: v for k, v in raw.items() if k != "channels"}
    options, _ = expand(options, "alerts")
    spec, _ = parse(AlertsSpec, options, "alerts", problems)
    items = raw.get("channels")
    if items is None:
        items = []
    if not isinstance(items, list):
        problems.add("alerts.channels", "must be a list")
        items = []
    channels: list[ChannelSpec] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        label = channel_label(item, index)
        expanded, found = expand(item, label)
        channel, _ = parse(ChannelSpec, expanded, label, problems)
        if not isinstance(channel, ChannelSpec):
            continue
        if channel.name in seen:
            problems.add(label, f"the name '{channel.name}' is used twice in alerts.channels")
        seen.add(channel.name)
        for path, template in found.items():
            templates[(SECTION, channel.name, path)] = template
        channels.append(check_channel(channel, label, problems))
    if not isinstance(spec, AlertsSpec):
        return None
    if spec.reminder_interval is not None and spec.reminder_interval < DAY:
        problems.add(
            "alerts.reminder_interval",
            f"must be at least {DAY} seconds (24 hours): a reminder is sent at most daily",
        )
    return spec.model_copy(update={"channels": channels})


def _not_applicable(spec: ChannelSpec, fields: tuple[str, ...], label: str, p: Problems) -> None:
    for field in fields:
        if getattr(spec, field) is not None:
            shown = "from" if field == "sender" else field
            p.add(f"{label}.{shown}", f"not applicable to type {spec.type} (remove it)")


def check_channel(spec: ChannelSpec, label: str, problems: Problems) -> ChannelSpec:
    if spec.type == "webhook":
        _not_applicable(spec, EMAIL_FIELDS, label, problems)
        if spec.url is None:
            problems.add(f"{label}.url", "required for type webhook")
        elif msg := checks.check_endpoint(spec.url, checks.WEBHOOK_CREDENTIALS):
            problems.add(f"{label}.url", msg)
        return spec
    _not_applicable(spec, WEBHOOK_FIELDS, label, problems)
    security = spec.security or "starttls"
    if spec.host is None:
        problems.add(f"{label}.host", "required for type email (the SMTP server)")
    elif msg := checks.check_host(spec.host):
        problems.add(f"{label}.host", msg)
    elif security == "none" and not checks.is_loopback(spec.host):
        problems.add(
            f"{label}.security",
            "none is only allowed for localhost/127.0.0.1 (a password and the alerts "
            "must not cross a network in clear): use starttls or tls",
        )
    if spec.password is not None and spec.username is None:
        problems.add(f"{label}.password", "needs username")
    if spec.sender is None:
        problems.add(f"{label}.from", "required for type email (the sender's address)")
    elif not _is_address(spec.sender):
        problems.add(f"{label}.from", f"'{spec.sender}' is not an email address")
    if not spec.to:
        problems.add(f"{label}.to", "required for type email: a list of one or more addresses")
    for index, address in enumerate(spec.to or []):
        if not _is_address(address):
            problems.add(f"{label}.to[{index}]", f"'{address}' is not an email address")
    if spec.ca_file is not None:
        file = Path(spec.ca_file).expanduser()
        if not file.is_absolute():
            problems.add(f"{label}.ca_file", f"'{spec.ca_file}' must be an absolute path")
        elif not file.is_file():
            problems.add(f"{label}.ca_file", f"no such file: {file}")
    return spec


def _is_address(value: str) -> bool:
    _, address = parseaddr(value)
    local, at, domain = address.rpartition("@")
    return bool(at and local and domain) and "\n" not in value and "\r" not in value
