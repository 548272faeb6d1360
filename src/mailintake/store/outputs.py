"""Queries on outputs; their header values are secrets, kept encrypted in ``secrets``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select

from mailintake.config.models import OutputSpec
from mailintake.config.validate import SecretKey
from mailintake.errors import Conflict, NotFound
from mailintake.store import secrets
from mailintake.store.base import Change, RepoBase, dump
from mailintake.store.tables import mailboxes, outputs


class OutputQueries(RepoBase):
    def list_outputs(self, *, reveal: bool = False) -> list[OutputSpec]:
        rows = self.conn.execute(select(outputs).order_by(outputs.c.name)).all()
        return [self._output(r.name, r.definition, reveal) for r in rows]

    def get_output(self, name: str, *, reveal: bool = False) -> OutputSpec:
        row = self.conn.execute(select(outputs).where(outputs.c.name == name)).first()
        if row is None:
            raise NotFound(f"no output named '{name}'")
        return self._output(name, row.definition, reveal)

    def _output(self, name: str, definition: dict[str, Any], reveal: bool) -> OutputSpec:
        stored = secrets.read_all(self.conn, "output", name)
        data = dict(definition)
        if stored:
            data["headers"] = {
                f.partition(".")[2]: self._shown(s, reveal) for f, s in stored.items()
            }
        return OutputSpec.model_validate(data)

    def put_output(self, spec: OutputSpec, templates: Mapping[SecretKey, str]) -> Change:
        data = dump(spec)
        headers: dict[str, str] = data.pop("headers", None) or {}
        values = {f"headers.{k}": v for k, v in headers.items()}
        changed = self._put_secrets("output", "outputs", spec.name, values, templates)
        columns = {"type": spec.type, "definition": data}
        return self._upsert(outputs, "output", spec.name, columns, {}, secrets_changed=changed)

    def delete_output(self, name: str) -> Change:
        self.get_output(name)
        users = [
            r.name
            for r in self.conn.execute(
                select(mailboxes.c.name)
                .where(mailboxes.c.output == name)
                .order_by(mailboxes.c.name)
            )
        ]
        if users:
            raise Conflict(f"output {name} is used by mailbox(es) {', '.join(users)}")
        self.conn.execute(delete(outputs).where(outputs.c.name == name))
        secrets.remove(self.conn, "output", name)
        return Change("output", name, "deleted")
