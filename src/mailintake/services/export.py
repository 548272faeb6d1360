"""The current configuration in the file format (CONTRACT §3), secrets redacted.

A secret given as ``${env:NAME}`` is exported as that reference; any other secret as
``<redacted>``, which ``apply`` reads as "keep the stored value", so an export applies back
unchanged. A password inside a URL, stored by earlier versions, is shown as ``<redacted>``.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from mailintake.config import checks
from mailintake.config.models import MailboxSpec, OutputSpec
from mailintake.config.servers import ServerDefinition
from mailintake.store import alert_settings
from mailintake.store.repo import Repo


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()  # a template or <redacted>: read with reveal=False
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return getattr(value, "value", value)


def redact_urls(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (an item, or a mailbox's effective settings) with the password of any URL
    redacted: earlier versions accepted ``http://user:password@host`` and stored it."""
    result = dict(data)
    for path in checks.URL_FIELDS:
        section, _, attr = path.rpartition(".")
        holder = result.get(section) if section else result
        if not isinstance(holder, dict) or not isinstance(holder.get(attr), str):
            continue
        if section:
            holder = result[section] = dict(holder)
        holder[attr] = checks.redact_password(holder[attr])
    return result


def spec_dict(spec: MailboxSpec | OutputSpec) -> dict[str, Any]:
    return redact_urls(_plain(spec.model_dump(exclude_none=True)))


def server_dict(server: ServerDefinition) -> dict[str, Any]:
    return redact_urls(server.to_dict())


def export_document(repo: Repo) -> dict[str, Any]:
    servers = [
        server_dict(s)
        for s in repo.list_servers()
        if not s.builtin or repo.server_is_edited(s.name)
    ]
    document: dict[str, Any] = {}
    if servers:
        document["authorization_servers"] = servers
    outputs = [spec_dict(o) for o in repo.list_outputs(reveal=False)]
    if outputs:
        document["outputs"] = outputs
    mailboxes = [spec_dict(r.spec) for r in repo.list_mailboxes(reveal=False)]
    if mailboxes:
        document["mailboxes"] = mailboxes
    alerts = alert_settings.read(repo.conn, repo.box, reveal=False)
    if alerts is not None:
        document["alerts"] = redact_urls_of_channels(
            _plain(alerts.model_dump(by_alias=True, exclude_none=True))
        )
    return document


def redact_urls_of_channels(alerts: dict[str, Any]) -> dict[str, Any]:
    alerts["channels"] = [redact_urls(c) for c in alerts.get("channels", [])]
    return alerts
