"""What the store's query modules share: one transaction, the secret box, and how a named
definition and its secrets are written."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import SecretStr
from sqlalchemy import Connection, Table, select, update

from mailintake.config.models import MailboxSpec, OutputSpec
from mailintake.config.validate import REDACTED, SecretKey
from mailintake.crypto import SecretBox
from mailintake.store import secrets

Action = Literal["created", "updated", "unchanged", "deleted", "reset"]


@dataclass(frozen=True)
class Change:
    kind: str  # authorization_server | output | mailbox
    name: str
    action: Action

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: {self.action}"


def now() -> datetime:
    return datetime.now(UTC)


def dump(spec: MailboxSpec | OutputSpec) -> dict[str, Any]:
    data = spec.model_dump(mode="python", exclude_none=True)

    def plain(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return getattr(value, "value", value)  # enums to their values

    result: dict[str, Any] = plain(data)
    return result


class RepoBase:
    def __init__(self, conn: Connection, box: SecretBox) -> None:
        self.conn = conn
        self.box = box

    def _shown(self, stored: secrets.StoredSecret, reveal: bool) -> str:
        if reveal:
            return self.box.decrypt(stored.ciphertext)
        return stored.template or REDACTED

    def _upsert(
        self,
        table: Table,
        kind: str,
        name: str,
        columns: dict[str, Any],
        on_create: dict[str, Any],
        *,
        secrets_changed: bool,
    ) -> Change:
        """Insert or update the row ``name``; unchanged when its definition and secrets are."""
        row = self.conn.execute(select(table).where(table.c.name == name)).first()
        if row is None:
            self.conn.execute(
                table.insert().values(
                    name=name, created_at=now(), updated_at=now(), **columns, **on_create
                )
            )
            return Change(kind, name, "created")
        if row.definition == columns["definition"] and not secrets_changed:
            return Change(kind, name, "unchanged")
        self.conn.execute(
            update(table).where(table.c.name == name).values(updated_at=now(), **columns)
        )
        return Change(kind, name, "updated")

    def _put_secrets(
        self,
        kind: str,
        section: str,
        name: str,
        values: Mapping[str, str],
        templates: Mapping[SecretKey, str],
    ) -> bool:
        stored = secrets.read_all(self.conn, kind, name)
        changed = False
        for field, value in values.items():
            if value == REDACTED and field in stored:
                continue  # an export's placeholder: keep what is stored
            template = templates.get((section, name, field))
            changed |= secrets.write(
                self.conn, self.box, kind, name, field, value, template, stored.get(field)
            )
        for field in stored.keys() - values.keys():
            changed |= secrets.remove(self.conn, kind, name, field) > 0
        return changed
