"""Applying a validated document to the store: all or nothing, idempotent."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mailintake.config.servers import BUILTIN_SERVERS
from mailintake.config.validate import SECTIONS, Context, Validated, validate_document
from mailintake.errors import ConfigError, Conflict
from mailintake.observability.logging import get_logger
from mailintake.store import alert_settings
from mailintake.store.repo import Change, Repo, Store

log = get_logger(__name__)


class _DryRun(Exception):
    pass


def apply_validated(repo: Repo, validated: Validated, *, prune: bool) -> list[Change]:
    templates = validated.env_templates
    changes = [repo.put_server(s) for s in validated.servers]
    changes += [repo.put_output(o, templates) for o in validated.outputs]
    changes += [repo.put_mailbox(m, templates) for m in validated.mailboxes]
    if validated.alerts is not None:
        changes.append(alert_settings.put(repo.conn, repo.box, validated.alerts, templates))
    if prune:
        changes += _prune(repo, validated)
    for change in changes:
        if change.action != "unchanged":
            log.info("config.changed", kind=change.kind, name=change.name, action=change.action)
    return changes


def _prune(repo: Repo, validated: Validated) -> list[Change]:
    keep_mailboxes = {m.name for m in validated.mailboxes}
    keep_outputs = {o.name for o in validated.outputs}
    keep_servers = {s.name for s in validated.servers}
    changes = [
        repo.delete_mailbox(r.spec.name)
        for r in repo.list_mailboxes()
        if r.spec.name not in keep_mailboxes
    ]
    changes += [
        repo.delete_output(o.name) for o in repo.list_outputs() if o.name not in keep_outputs
    ]
    for server in repo.list_servers():
        if server.name in keep_servers:
            continue
        if server.name in BUILTIN_SERVERS:
            if repo.server_is_edited(server.name):
                changes.append(repo.reset_server(server.name))
        else:
            changes.append(repo.delete_server(server.name))
    if validated.alerts is None and (removed := alert_settings.remove(repo.conn)) is not None:
        changes.append(removed)
    return changes


EMPTY_PRUNE = (
    "(document): empty; with prune it would delete every mailbox, output and custom server. "
    "List what to keep (to delete every mailbox on purpose, give mailboxes: [])"
)


def is_empty(raw: Any) -> bool:
    """No section given (an empty file, only comments, ``null``, ``{}``, every section null):
    what a script with an empty variable sends, never a wish to delete everything."""
    if raw is None:
        return True
    return isinstance(raw, dict) and all(raw.get(section) is None for section in SECTIONS)


def refuse_empty_prune(raw: Any) -> None:
    """With prune, a document that gives nothing, or a section left empty (``mailboxes:``
    with nothing after it, a variable that came back empty), is refused."""
    if is_empty(raw):
        raise ConfigError([EMPTY_PRUNE])
    empty = [s for s in SECTIONS if isinstance(raw, dict) and s in raw and raw[s] is None]
    if empty:
        raise ConfigError(
            [
                f"{section}: empty; with prune it would delete every one of them. List what "
                f"to keep (to delete them all on purpose, give {section}: [])"
                for section in empty
            ]
        )


def apply_document(
    store: Store,
    raw: Any,
    environ: Mapping[str, str],
    *,
    base_dir: Path | None = None,
    prune: bool = False,
    dry_run: bool = False,
    warnings: list[str] | None = None,
    before_pruning: Callable[[list[str]], object] | None = None,
) -> list[Change]:
    """Validate ``raw`` against the store and apply it in one transaction. ``warnings``, if
    given, receives the document's warnings (valid but unused settings). With ``prune``,
    ``before_pruning`` is given the mailboxes about to be deleted once the document is found
    valid (not on a dry run): what is kept outside the store for them goes first."""
    changes: list[Change] = []
    try:
        with store.begin() as repo:
            validated = validate_document(raw, repo.context(environ, base_dir))
            if warnings is not None:
                warnings.extend(validated.warnings)
            if prune:
                refuse_empty_prune(raw)
                kept = {m.name for m in validated.mailboxes}
                going = [r.spec.name for r in repo.list_mailboxes() if r.spec.name not in kept]
                if going and before_pruning is not None and not dry_run:
                    before_pruning(going)
            try:
                changes = apply_validated(repo, validated, prune=prune)
            except Conflict as exc:
                raise ConfigError([f"(apply): {exc}"]) from exc
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return changes


def validate_only(
    store: Store | None, raw: Any, environ: Mapping[str, str], base_dir: Path | None
) -> Validated:
    """Validate without changing anything (against the store's servers and outputs if given)."""
    if store is None:
        return validate_document(raw, Context(environ=environ, base_dir=base_dir))
    with store.read() as repo:
        return validate_document(raw, repo.context(environ, base_dir))
