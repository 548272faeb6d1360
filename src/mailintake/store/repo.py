"""Every query on servers, outputs and mailboxes. No SQL lives anywhere else.

``Store.begin()`` yields a ``Repo`` bound to one transaction, so a whole ``apply`` commits or
changes nothing. Secrets are split off every definition and kept encrypted in ``secrets``;
read back, they are the real values only when asked for with ``reveal=True``, otherwise
their ``${env:NAME}`` template or ``<redacted>``.
"""

from __future__ import annotations

import fcntl
import hashlib
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import SecretStr
from sqlalchemy import Connection, Engine, Table, delete, select, text, update

from mailintake.config import resolve
from mailintake.config.models import MAILBOX_SECRET_FIELDS, MailboxSpec, OutputSpec, ServerSpec
from mailintake.config.validate import REDACTED, Context, SecretKey, merged_server
from mailintake.crypto import SecretBox
from mailintake.enums import AuthState
from mailintake.errors import Conflict, NotFound
from mailintake.oauth.servers import BUILTIN_SERVERS, ServerDefinition, server_from_dict
from mailintake.store import imports, secrets, tokens
from mailintake.store.tables import authorization_servers, mailboxes, meta, outputs

Action = Literal["created", "updated", "unchanged", "deleted", "reset"]
# States a change of the mailbox's secrets or OAuth settings can fix (a new password, a new
# client secret, a corrected tenant); reauthorization_required needs a person to sign in.
SETTINGS_FIXABLE_STATES = frozenset({AuthState.PASSWORD_UPDATE_REQUIRED, AuthState.ERROR})


@dataclass(frozen=True)
class Change:
    kind: str  # authorization_server | output | mailbox
    name: str
    action: Action

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: {self.action}"


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


def _now() -> datetime:
    return datetime.now(UTC)


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


def _dump(spec: MailboxSpec | OutputSpec) -> dict[str, Any]:
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


class Repo:
    def __init__(self, conn: Connection, box: SecretBox) -> None:
        self.conn = conn
        self.box = box

    # --- validation context -------------------------------------------------------------

    def context(self, environ: Mapping[str, str], base_dir: Any = None) -> Context:
        return Context(
            servers={s.name: s for s in self.list_servers()},
            outputs={o.name: o.type for o in self.list_outputs()},
            stored_secrets=secrets.keys(self.conn),
            environ=dict(environ),
            base_dir=base_dir,
        )

    # --- authorization servers ----------------------------------------------------------

    def list_servers(self) -> list[ServerDefinition]:
        stored = {
            r.name: server_from_dict(r.definition, builtin=r.name in BUILTIN_SERVERS)
            for r in self.conn.execute(select(authorization_servers))
        }
        merged = {**BUILTIN_SERVERS, **stored}
        builtins = [merged[n] for n in BUILTIN_SERVERS]
        return builtins + sorted(
            (s for n, s in merged.items() if n not in BUILTIN_SERVERS), key=lambda s: s.name
        )

    def get_server(self, name: str) -> ServerDefinition:
        for server in self.list_servers():
            if server.name == name:
                return server
        raise NotFound(f"no authorization server named '{name}'")

    def server_is_edited(self, name: str) -> bool:
        row = self.conn.execute(
            select(authorization_servers.c.id).where(authorization_servers.c.name == name)
        ).first()
        return row is not None and name in BUILTIN_SERVERS

    def put_server(self, spec: ServerSpec) -> Change:
        server = merged_server(spec, BUILTIN_SERVERS.get(spec.name))
        return self.put_server_definition(server)

    def put_server_definition(self, server: ServerDefinition) -> Change:
        definition = server.to_dict()
        row = self.conn.execute(
            select(authorization_servers).where(authorization_servers.c.name == server.name)
        ).first()
        builtin = BUILTIN_SERVERS.get(server.name)
        if builtin is not None and definition == builtin.to_dict():
            if row is None:
                return Change("authorization_server", server.name, "unchanged")
            self.conn.execute(
                delete(authorization_servers).where(authorization_servers.c.name == server.name)
            )
            return Change("authorization_server", server.name, "reset")
        if row is None:
            self.conn.execute(
                authorization_servers.insert().values(
                    name=server.name, definition=definition, created_at=_now(), updated_at=_now()
                )
            )
            action: Action = "updated" if builtin is not None else "created"
            return Change("authorization_server", server.name, action)
        if row.definition == definition:
            return Change("authorization_server", server.name, "unchanged")
        self.conn.execute(
            update(authorization_servers)
            .where(authorization_servers.c.name == server.name)
            .values(definition=definition, updated_at=_now())
        )
        return Change("authorization_server", server.name, "updated")

    def servers_in_use(self, name: str) -> list[str]:
        rows = self.conn.execute(
            select(mailboxes.c.name)
            .where(mailboxes.c.authorization_server == name)
            .order_by(mailboxes.c.name)
        )
        return [r.name for r in rows]

    def delete_server(self, name: str) -> Change:
        if name in BUILTIN_SERVERS:
            raise Conflict(
                f"authorization server {name} is built in: it can be edited and reset "
                "(mailintake servers reset), not deleted"
            )
        self.get_server(name)
        users = self.servers_in_use(name)
        if users:
            raise Conflict(
                f"authorization server {name} is used by mailbox(es) {', '.join(users)}: "
                "point them at another server or delete them first"
            )
        self.conn.execute(delete(authorization_servers).where(authorization_servers.c.name == name))
        return Change("authorization_server", name, "deleted")

    def reset_server(self, name: str) -> Change:
        if name not in BUILTIN_SERVERS:
            raise Conflict(f"only built-in servers can be reset; {name} is not built in")
        return self.put_server_definition(BUILTIN_SERVERS[name])

    # --- outputs ------------------------------------------------------------------------

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

    def _shown(self, stored: secrets.StoredSecret, reveal: bool) -> str:
        if reveal:
            return self.box.decrypt(stored.ciphertext)
        return stored.template or REDACTED

    def put_output(self, spec: OutputSpec, templates: Mapping[SecretKey, str]) -> Change:
        data = _dump(spec)
        headers: dict[str, str] = data.pop("headers", None) or {}
        values = {f"headers.{k}": v for k, v in headers.items()}
        changed = self._put_secrets("output", "outputs", spec.name, values, templates)
        columns = {"type": spec.type, "definition": data}
        return self._upsert(outputs, "output", spec.name, columns, {}, secrets_changed=changed)

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
                    name=name, created_at=_now(), updated_at=_now(), **columns, **on_create
                )
            )
            return Change(kind, name, "created")
        if row.definition == columns["definition"] and not secrets_changed:
            return Change(kind, name, "unchanged")
        self.conn.execute(
            update(table).where(table.c.name == name).values(updated_at=_now(), **columns)
        )
        return Change(kind, name, "updated")

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

    # --- secrets ------------------------------------------------------------------------

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

    # --- mailboxes ----------------------------------------------------------------------

    def list_mailboxes(self, *, reveal: bool = False) -> list[MailboxRecord]:
        rows = self.conn.execute(select(mailboxes).order_by(mailboxes.c.name)).all()
        return [self._mailbox(r, reveal) for r in rows]

    def schedules(self) -> list[Schedule]:
        """Every mailbox's schedule, in one query: the scheduler reads them every second,
        and a whole record (its secrets decrypted, its settings validated) costs far more."""
        columns = (mailboxes.c.name, mailboxes.c.enabled, mailboxes.c.auth_state)
        query = select(*columns, mailboxes.c.definition).order_by(mailboxes.c.name)
        rows = self.conn.execute(query).all()
        found = []
        for name, enabled, auth_state, definition in rows:
            oauth = definition.get("oauth")
            found.append(
                Schedule(
                    name,
                    bool(enabled),
                    auth_state,
                    isinstance(oauth, dict),
                    oauth.get("grant_type") if isinstance(oauth, dict) else None,
                    definition.get("poll_interval"),
                )
            )
        return found

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
        data = _dump(spec)
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
        secrets, tokens, import records and lease. A mailbox created later with the same name
        starts afresh (its messages are imported again), as the one deleted never existed."""
        self.get_mailbox(name)
        self.conn.execute(delete(mailboxes).where(mailboxes.c.name == name))
        secrets.remove(self.conn, "mailbox", name)
        tokens.forget(self.conn, name)
        imports.forget_mailbox(self.conn, name)
        return Change("mailbox", name, "deleted")

    def set_auth_state(self, name: str, state: str, detail: str | None) -> None:
        """Record the mailbox's authorization state (CONTRACT §4) and the sentence behind it."""
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
            .values(last_poll_at=_now(), last_error=error, last_warning=warning)
        )

    # --- tokens -------------------------------------------------------------------------

    def grant(self, mailbox: str) -> tokens.GrantRecord | None:
        return tokens.read_grant(self.conn, self.box, mailbox)

    def access_token(self, mailbox: str, resource: str) -> tokens.AccessToken | None:
        return tokens.read_access(self.conn, self.box, mailbox, resource)

    # --- key management -----------------------------------------------------------------

    def write_key_check(self) -> None:
        value = self.box.encrypt("mailintake key check")
        row = self.conn.execute(select(meta.c.value).where(meta.c.key == "key_check")).first()
        if row is None:
            self.conn.execute(meta.insert().values(key="key_check", value=value))
        else:
            self.conn.execute(update(meta).where(meta.c.key == "key_check").values(value=value))

    def rotate_secrets(self) -> int:
        count = secrets.rotate_all(self.conn, self.box)
        count += tokens.rotate_all(self.conn, self.box)
        self.write_key_check()
        return count


def read_key_check(engine: Engine) -> str | None:
    with engine.connect() as conn:
        row = conn.execute(select(meta.c.value).where(meta.c.key == "key_check")).first()
    return None if row is None else str(row.value)


class Store:
    def __init__(self, engine: Engine, box: SecretBox) -> None:
        self.engine = engine
        self.box = box

    @contextmanager
    def begin(self) -> Iterator[Repo]:
        with self.engine.begin() as conn:
            yield Repo(conn, self.box)

    @contextmanager
    def read(self) -> Iterator[Repo]:
        with self.engine.connect() as conn:
            yield Repo(conn, self.box)

    @contextmanager
    def exclusive(self, key: str) -> Iterator[Repo]:
        """A transaction holding the lock ``key`` against every other thread and process
        using this database (PostgreSQL: an advisory lock; SQLite: a lock file beside it)."""
        digest = hashlib.sha256(key.encode()).digest()
        with _thread_lock(self.engine.url.render_as_string(), key):
            if self.engine.dialect.name == "postgresql":
                number = int.from_bytes(digest[:8], "big", signed=True)
                with self.engine.begin() as conn:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": number})
                    yield Repo(conn, self.box)
                return
            database = self.engine.url.database or ""
            if not database or database == ":memory:":
                with self.begin() as repo:
                    yield repo
                return
            with open(f"{database}.lock-{digest.hex()[:16]}", "a+b") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                try:
                    with self.begin() as repo:
                        yield repo
                finally:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


_THREAD_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


@contextmanager
def _thread_lock(database: str, key: str) -> Iterator[None]:
    with _THREAD_LOCKS_GUARD:
        lock = _THREAD_LOCKS.setdefault((database, key), threading.Lock())
    with lock:
        yield
