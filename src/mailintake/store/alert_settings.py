"""The stored ``alerts`` section: its options and channels in ``meta`` (key ``alerts``), each
channel's secrets (``password``, ``headers.<name>``) encrypted in ``secrets``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Connection, delete, select, update

from mailintake.config.models import AlertsSpec
from mailintake.config.validate import REDACTED, SecretKey
from mailintake.crypto import SecretBox
from mailintake.store import secrets
from mailintake.store.repo import Change
from mailintake.store.tables import meta

KEY = "alerts"
KIND = "alert_channel"  # secrets.owner_kind of a channel's secrets
SECTION = "alerts.channels"


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _definition(spec: AlertsSpec) -> dict[str, Any]:
    """The section without its secrets (those are stored apart)."""
    data: dict[str, Any] = spec.model_dump(mode="python", by_alias=True, exclude_none=True)
    for channel in data.get("channels", []):
        channel.pop("password", None)
        channel.pop("headers", None)
    return data


def read(conn: Connection, box: SecretBox, *, reveal: bool = False) -> AlertsSpec | None:
    """The stored section (None: none applied). Secrets are their real values only with
    ``reveal``; otherwise their ``${env:NAME}`` template or ``<redacted>``."""
    row = conn.execute(select(meta.c.value).where(meta.c.key == KEY)).first()
    if row is None:
        return None
    data = json.loads(row.value)
    for channel in data.get("channels", []):
        stored = secrets.read_all(conn, KIND, channel["name"])
        for field, secret in sorted(stored.items()):
            shown = box.decrypt(secret.ciphertext) if reveal else (secret.template or REDACTED)
            if field == "password":
                channel["password"] = shown
            else:
                channel.setdefault("headers", {})[field.partition(".")[2]] = shown
    return AlertsSpec.model_validate(data)


def put(
    conn: Connection, box: SecretBox, spec: AlertsSpec, templates: Mapping[SecretKey, str]
) -> Change:
    """Store ``spec`` in place of the section stored; unchanged when it is the same."""
    changed = False
    names = {c.name for c in spec.channels}
    for channel in spec.channels:
        values = {k: v.get_secret_value() for k, v in channel.secrets().items()}
        stored = secrets.read_all(conn, KIND, channel.name)
        for field, value in values.items():
            if value == REDACTED and field in stored:
                continue  # an export's placeholder: keep what is stored
            template = templates.get((SECTION, channel.name, field))
            changed |= secrets.write(
                conn, box, KIND, channel.name, field, value, template, stored.get(field)
            )
        for field in stored.keys() - values.keys():
            changed |= secrets.remove(conn, KIND, channel.name, field) > 0
    changed |= _remove_secrets_except(conn, names)
    text = json.dumps(_plain(_definition(spec)), sort_keys=True)
    row = conn.execute(select(meta.c.value).where(meta.c.key == KEY)).first()
    if row is None:
        conn.execute(meta.insert().values(key=KEY, value=text))
        return Change("alerts", "section", "created")
    if row.value == text and not changed:
        return Change("alerts", "section", "unchanged")
    conn.execute(update(meta).where(meta.c.key == KEY).values(value=text))
    return Change("alerts", "section", "updated")


def remove(conn: Connection) -> Change | None:
    """Forget the section and its secrets; None when none was stored."""
    _remove_secrets_except(conn, set())
    if conn.execute(delete(meta).where(meta.c.key == KEY)).rowcount == 0:
        return None
    return Change("alerts", "section", "deleted")


def _remove_secrets_except(conn: Connection, names: set[str]) -> bool:
    owners = {owner for kind, owner, _ in secrets.keys(conn) if kind == SECTION}
    return any([secrets.remove(conn, KIND, owner) > 0 for owner in owners - names])
