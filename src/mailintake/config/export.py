"""The current configuration in the file format (CONTRACT §3), secrets redacted.

A secret given as ``${env:NAME}`` is exported as that reference; any other secret as
``<redacted>``, which ``apply`` reads as "keep the stored value", so an export applies back
unchanged.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from mailintake.config.models import MailboxSpec, OutputSpec
from mailintake.store.repo import Repo


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()  # a template or <redacted>: read with reveal=False
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return getattr(value, "value", value)


def spec_dict(spec: MailboxSpec | OutputSpec) -> dict[str, Any]:
    result: dict[str, Any] = _plain(spec.model_dump(exclude_none=True))
    return result


def export_document(repo: Repo) -> dict[str, Any]:
    servers = [
        s.to_dict() for s in repo.list_servers() if not s.builtin or repo.server_is_edited(s.name)
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
    return document
