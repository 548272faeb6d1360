"""Single-item changes (CLI ``servers``/``mailboxes``/``outputs``, REST API), validated by the
same rules as ``apply``: each change is checked as a one-item document against the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mailintake.config.models import MAILBOX_SECRET_FIELDS
from mailintake.config.resolve import effective_dict
from mailintake.config.validate import REDACTED, validate_document
from mailintake.errors import ConfigError, Conflict, NotFound
from mailintake.services.apply import apply_validated
from mailintake.services.export import redact_urls, server_dict, spec_dict
from mailintake.store.repo import Change, Repo, Store

SECTION_OF = {"server": "authorization_servers", "output": "outputs", "mailbox": "mailboxes"}


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``a.b.c`` in nested dicts, creating the intermediate ones."""
    parts = path.split(".")
    target = data
    for part in parts[:-1]:
        nxt = target.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            target[part] = nxt
        target = nxt
    target[parts[-1]] = value


def unset_path(data: dict[str, Any], path: str) -> None:
    parts = path.split(".")
    target: Any = data
    for part in parts[:-1]:
        target = target.get(part) if isinstance(target, dict) else None
    if isinstance(target, dict):
        target.pop(parts[-1], None)


def put_item(
    store: Store,
    kind: str,
    data: Mapping[str, Any],
    environ: Mapping[str, str],
    *,
    must_exist: bool | None = None,
) -> Change:
    """Create or replace one server/output/mailbox from its file-format mapping."""
    section = SECTION_OF[kind]
    with store.begin() as repo:
        name = data.get("name")
        if must_exist is not None and isinstance(name, str):
            exists = _exists(repo, kind, name)
            if must_exist and not exists:
                raise NotFound(f"no {kind.replace('_', ' ')} named '{name}'")
            if not must_exist and exists:
                raise Conflict(
                    f"a {kind} named '{name}' exists already (edit it, or delete it first)"
                )
        validated = validate_document({section: [dict(data)]}, repo.context(environ))
        (change,) = apply_validated(repo, validated, prune=False)
    return change


def _exists(repo: Repo, kind: str, name: str) -> bool:
    try:
        if kind == "server":
            repo.get_server(name)
        elif kind == "output":
            repo.get_output(name)
        else:
            repo.get_mailbox(name)
    except NotFound:
        return False
    return True


def list_items(store: Store, kind: str) -> list[dict[str, Any]]:
    """Every server/output/mailbox in file form plus what the store knows (secrets redacted)."""
    with store.read() as repo:
        if kind == "server":
            return [
                {**server_dict(s), "builtin": s.builtin, "edited": repo.server_is_edited(s.name)}
                for s in repo.list_servers()
            ]
        if kind == "output":
            names = [o.name for o in repo.list_outputs()]
        else:
            states = {r.spec.name: r for r in repo.list_mailboxes()}
            names = list(states)
    rows = [current_item(store, kind, name) for name in names]
    if kind == "mailbox":
        for row in rows:
            record = states[row["name"]]
            row["authorization_server"] = record.authorization_server
            row["output"] = record.output
            row["authorization_state"] = record.auth_state
    return rows


def current_item(store: Store, kind: str, name: str) -> dict[str, Any]:
    """The item in file form; every stored secret shows as ``<redacted>`` (= keep it)."""
    with store.read() as repo:
        if kind == "server":
            return server_dict(repo.get_server(name))
        if kind == "output":
            data = spec_dict(repo.get_output(name))
            if "headers" in data:
                data["headers"] = dict.fromkeys(data["headers"], REDACTED)
            return data
        data = spec_dict(repo.get_mailbox(name).spec)
    for path in MAILBOX_SECRET_FIELDS:
        section, _, attr = path.partition(".")
        holder = data.get(section)
        if isinstance(holder, dict) and attr in holder:
            holder[attr] = REDACTED
    return data


def effective_item(store: Store, name: str) -> dict[str, Any]:
    """A mailbox with every default filled in from its server and protocol."""
    with store.read() as repo:
        record = repo.get_mailbox(name)
        server = repo.get_server(record.authorization_server) if record.spec.oauth else None
    data = redact_urls(effective_dict(record.spec, server))
    data["authorization_state"] = record.auth_state
    return data


def edit_item(
    store: Store,
    kind: str,
    name: str,
    changes: Mapping[str, Any],
    unset: Sequence[str],
    environ: Mapping[str, str],
) -> Change:
    """Change fields (dotted paths) of an existing item, then validate and store it whole."""
    data = current_item(store, kind, name)
    for path in unset:
        if path == "name":
            raise ConfigError([f"{SECTION_OF[kind]}[{name}].name: cannot be removed"])
        unset_path(data, path)
    for path, value in changes.items():
        if path == "name" and value != name:
            raise ConfigError(
                [f"{SECTION_OF[kind]}[{name}].name: cannot be changed (add a new one instead)"]
            )
        set_path(data, path, value)
    return put_item(store, kind, data, environ)


def delete_item(store: Store, kind: str, name: str) -> Change:
    """Delete one item (``server``, ``output``, ``mailbox``); the store refuses a server or
    an output that mailboxes use (Conflict)."""
    with store.begin() as repo:
        if kind == "server":
            return repo.delete_server(name)
        if kind == "output":
            return repo.delete_output(name)
        return repo.delete_mailbox(name)
