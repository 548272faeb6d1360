"""Queries on mailboxes: their definitions (secrets split off), authorization state, the
result of their last poll, and what the scheduler reads of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from mailintake.config import resolve
from mailintake.config.models import MAILBOX_SECRET_FIELDS, MailboxSpec
from mailintake.config.validate import SecretKey
from mailintake.enums import AuthState
from mailintake.errors import NotFound
from mailintake.store import graph_subscriptions, imports, secrets, tokens
from mailintake.store.base import Change, RepoBase, dump, now
from mailintake.store.tables import mailboxes

# States a change of the mailbox's secrets or OAuth settings can fix (a new password, a new
# client secret, a corrected tenant); reauthorization_required needs a person to sign in.
SETTINGS_FIXABLE_STATES = frozenset({AuthState.PASSWORD_UPDATE_REQUIRED, AuthState.ERROR})


@dataclass(frozen=True)
class MailboxRecord:
    spec: MailboxSpec
    authorization_server: str
    output: str
    auth_state: str
    auth_detail: str | None
    last_poll_at: datetime | None
    last_error: str | None
    updated_at: datetime
    last_warning: str | None = None


@dataclass(frozen=True)
class Schedule:
    """What the scheduler needs of a mailbox, read without its secrets."""

    name: str
    enabled: bool
    auth_state: str
    oauth: bool  # it signs in with OAuth (its settings have an oauth section)
    grant_type: str | None
    poll_interval: int | None


def _split(data: dict[str, Any], fields: tuple[str, ...]) -> dict[str, str]:
    """Remove the secret ``fields`` (dotted paths) from ``data``; return their values."""
    found: dict[str, str] = {}
    for path in fields:
        section, _, attr = path.partition(".")
        holder = data.get(section)
        if isinstance(holder, dict) and attr in holder:
            found[path] = str(holder.pop(attr))
    return found


def _join(data: dict[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for path, value in values.items():
        section, _, attr = path.partition(".")
        out.setdefault(section, {})[attr] = value
    return out


def schedule_of(name: str, enabled: bool, auth_state: str, definition: Any) -> Schedule:
    """What the scheduler needs of one mailbox row."""
    oauth = definition.get("oauth")
    return Schedule(
        name,
        bool(enabled),
        auth_state,
        isinstance(oauth, dict),
        oauth.get("grant_type") if isinstance(oauth, dict) else None,
        definition.get("poll_interval"),
    )


class MailboxQueries(RepoBase):
    def list_mailboxes(self, *, reveal: bool = False) -> list[MailboxRecord]:
        rows = self.conn.execute(select(mailboxes).order_by(mailboxes.c.name)).all()
        return [self._mailbox(r, reveal) for r in rows]

    def schedules(self) -> list[Schedule]:
        """Every mailbox's schedule, in one query: the scheduler reads them every second,
        and a whole record (its secrets decrypted, its settings validated) costs far more."""
        columns = (mailboxes.c.name, mailboxes.c.enabled, mailboxes.c.auth_state)
        query = select(*columns, mailboxes.c.definition).order_by(mailboxes.c.name)
        rows = self.conn.execute(query).all()
        return [schedule_of(*row) for row in rows]

    def get_mailbox(self, name: str, *, reveal: bool = False) -> MailboxRecord:
        row = self.conn.execute(select(mailboxes).where(mailboxes.c.name == name)).first()
        if row is None:
            raise NotFound(f"no mailbox named '{name}'")
        return self._mailbox(row, reveal)

    def _mailbox(self, row: Any, reveal: bool) -> MailboxRecord:
        stored = secrets.read_all(self.conn, "mailbox", row.name)
        values = {f: self._shown(s, reveal) for f, s in stored.items()}
        spec = MailboxSpec.model_validate(_join(row.definition, values))
        return MailboxRecord(
            spec=spec,
            authorization_server=row.authorization_server,
            output=row.output,
            auth_state=row.auth_state,
            auth_detail=row.auth_detail,
            last_poll_at=row.last_poll_at,
            last_error=row.last_error,
            updated_at=row.updated_at,
            last_warning=row.last_warning,
        )

    def put_mailbox(self, spec: MailboxSpec, templates: Mapping[SecretKey, str]) -> Change:
        data = dump(spec)
        values = _split(data, MAILBOX_SECRET_FIELDS)
        server = resolve.server_name(spec) or ""
        output = spec.output or resolve.DEFAULT_OUTPUT
        enabled = spec.enabled if spec.enabled is not None else True
        changed = self._put_secrets("mailbox", "mailboxes", spec.name, values, templates)
        columns = {
            "protocol": str(spec.protocol),
            "enabled": enabled,
            "authorization_server": server,
            "output": output,
            "definition": data,
        }
        initial = {"auth_state": AuthState.NOT_AUTHORIZED}
        before = self.conn.execute(
            select(mailboxes.c.definition, mailboxes.c.auth_state).where(
                mailboxes.c.name == spec.name
            )
        ).first()
        change = self._upsert(
            mailboxes, "mailbox", spec.name, columns, initial, secrets_changed=changed
        )
        if (
            change.action == "updated"
            and before is not None
            and before.auth_state in SETTINGS_FIXABLE_STATES
            and (changed or before.definition.get("oauth") != data.get("oauth"))
        ):
            # The sign-in settings changed: the refusal they caused no longer stands.
            self.set_auth_state(
                spec.name,
                AuthState.NOT_AUTHORIZED,
                "sign-in settings changed since the last refusal",
            )
        return change

    def delete_mailbox(self, name: str) -> Change:
        """Delete the mailbox and everything kept under its name, in this transaction: its
        secrets, tokens, import records, lease and Graph subscription record. A mailbox created
        later with the same name starts afresh (its messages are imported again), as the one
        deleted never existed. Its Graph subscription itself is deleted before, by whoever
        deletes the mailbox (engine.graph_push.unsubscribe): Graph needs its credentials."""
        self.get_mailbox(name)
        self.conn.execute(delete(mailboxes).where(mailboxes.c.name == name))
        secrets.remove(self.conn, "mailbox", name)
        tokens.forget(self.conn, name)
        imports.forget_mailbox(self.conn, name)
        graph_subscriptions.forget(self.conn, name)
        return Change("mailbox", name, "deleted")

    def set_auth_state(self, name: str, state: str, detail: str | None) -> None:
        """Record the mailbox's authorization state (CONTRACT §4) and the sentence behind it.
        A change of state makes the mailbox due now: one that waited for a person is polled
        as soon as that person has acted."""
        self.conn.execute(
            update(mailboxes)
            .where(mailboxes.c.name == name, mailboxes.c.auth_state != state)
            .values(next_poll_at=None)
        )
        self.conn.execute(
            update(mailboxes)
            .where(mailboxes.c.name == name)
            .values(auth_state=state, auth_detail=detail)
        )

    def set_poll_result(self, name: str, error: str | None, warning: str | None = None) -> None:
        """When the mailbox was last polled, why that poll failed (None: it did not), and
        what it warned of (None: nothing)."""
        self.conn.execute(
            update(mailboxes)
            .where(mailboxes.c.name == name)
            .values(last_poll_at=now(), last_error=error, last_warning=warning)
        )
